"""AMPMESH_SANDBOX_STATE_FILE: a sandbox process stopped and started again finds its seeded
records and the tokens it issued (what `ampmesh up --sandbox --keep-sandbox-state` uses)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from services.runtime.channels import mesh_channel
from services.runtime.tls import ServiceCredentials
from tests.support.sandbox import CONTACTS, HS, bearer, password_tokens, seed_records


@contextmanager
def sandbox(cert_dir: Path, log_path: Path, state_file: Path) -> Iterator[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPMESH_")}
    env.update(
        {
            "AMPMESH_CERT_DIR": str(cert_dir),
            "AMPMESH_IDENTITY": "sandbox",
            "AMPMESH_LISTEN_HOST": "127.0.0.1",
            "AMPMESH_LISTEN_PORT": "0",
            "AMPMESH_LOG_FORMAT": "json",
            "AMPMESH_SANDBOX_HTTP_PORT": "0",
            "AMPMESH_SANDBOX_STATE_FILE": str(state_file),
        }
    )
    offset = log_path.stat().st_size if log_path.exists() else 0
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.sandbox"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        found: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while len(found) < 2:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the sandbox did not start:\n{log_path.read_text()[-3000:]}")
            with log_path.open() as lines:
                lines.seek(offset)
                for line in lines:
                    if line.startswith("{"):
                        entry = json.loads(line)
                        if entry.get("event") in {"serving", "sandbox serving"}:
                            found[entry["event"]] = entry
            time.sleep(0.05)
        yield {
            "grpc": f"127.0.0.1:{found['serving']['port']}",
            "http": found["sandbox serving"]["url"],
            "process": process,
        }
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


async def add_one(address: str, credentials: ServiceCredentials) -> int:
    """Records the object holds, counting one more added now."""
    async with mesh_channel(address, credentials, server_identity="sandbox") as channel:
        control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
        added = await control.SeedRecords(
            sandbox_pb2.SeedRecordsRequest(
                provider=HS, object_name="contacts", count=1, seed=9, replace=False
            )
        )
    return int(added.total)


async def test_records_and_tokens_survive_a_stop_and_a_kill(
    tmp_path: Path, cert_dir: Path, creds_for: Callable[[str], ServiceCredentials]
) -> None:
    state_file = tmp_path / "sandbox" / "state.json"
    log_path = tmp_path / "sandbox.log"
    credentials = creds_for("tests")
    with sandbox(cert_dir, log_path, state_file) as first:
        async with mesh_channel(first["grpc"], credentials, server_identity="sandbox") as channel:
            control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
            await seed_records(control, HS, "contacts", 20_000)
        async with httpx.AsyncClient(base_url=first["http"], timeout=10) as http:
            tokens = await password_tokens(http)
            page = await http.get(CONTACTS, headers=bearer(tokens["access_token"]))
            assert page.status_code == 200
            first_page = page.json()["results"]
    # A clean stop (SIGTERM) writes the state last.
    assert state_file.exists()
    assert state_file.stat().st_mode & 0o077 == 0  # it holds tokens

    with sandbox(cert_dir, log_path, state_file) as second:
        async with httpx.AsyncClient(base_url=second["http"], timeout=10) as http:
            page = await http.get(CONTACTS, headers=bearer(tokens["access_token"]))
            assert page.status_code == 200, page.text  # the token it issued still works
            assert page.json()["results"] == first_page  # the same records, same order
            refreshed = await http.post(
                "/hubspot/oauth/v1/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                auth=("sandbox-client", "sandbox-secret"),
            )
            assert refreshed.status_code == 200, refreshed.text
        assert await add_one(second["grpc"], credentials) == 20_001
        # Written within its debounce period, then killed: no clean stop this time.
        await asyncio.sleep(3)
        second["process"].kill()
        second["process"].wait()

    with sandbox(cert_dir, log_path, state_file) as third:
        assert await add_one(third["grpc"], credentials) == 20_002
        async with httpx.AsyncClient(base_url=third["http"], timeout=10) as http:
            # The refresh revoked the first refresh token, and that was kept too.
            again = await http.post(
                "/hubspot/oauth/v1/token",
                data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                auth=("sandbox-client", "sandbox-secret"),
            )
            assert again.status_code == 400, again.text


async def test_tombstones_and_subscriptions_survive_a_restart(
    tmp_path: Path, cert_dir: Path, creds_for: Callable[[str], ServiceCredentials]
) -> None:
    state_file = tmp_path / "state.json"
    log_path = tmp_path / "sandbox.log"
    credentials = creds_for("tests")
    with sandbox(cert_dir, log_path, state_file) as first:
        async with mesh_channel(first["grpc"], credentials, server_identity="sandbox") as channel:
            control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
            info = await control.GetSandboxInfo(sandbox_pb2.GetSandboxInfoRequest())
            app, key = info.clients[0].app_id, info.clients[0].developer_api_key
            await seed_records(control, HS, "contacts", 5)
            deleted = await control.DeleteRecords(
                sandbox_pb2.DeleteRecordsRequest(provider=HS, object_name="contacts", count=2)
            )
        async with httpx.AsyncClient(base_url=first["http"], timeout=10) as http:
            hooks, params = f"/hubspot/webhooks/v3/{app}", {"hapikey": key}
            put = await http.put(
                f"{hooks}/settings", params=params, json={"targetUrl": "https://example.test/h"}
            )
            assert put.status_code == 200
            made = await http.post(
                f"{hooks}/subscriptions", params=params, json={"eventType": "contact.creation"}
            )
            assert made.status_code == 201
            tokens = await password_tokens(http, "/salesforce/services/oauth2/token")
            member = await http.post(
                "/salesforce/services/data/v59.0/tooling/sobjects/PlatformEventChannelMember",
                json={
                    "FullName": "ChangeEvents_AccountChangeEvent",
                    "Metadata": {
                        "eventChannel": "ChangeEvents",
                        "selectedEntity": "AccountChangeEvent",
                    },
                },
                headers=bearer(tokens["access_token"]),
            )
            assert member.status_code == 201

    with sandbox(cert_dir, log_path, state_file) as second:
        async with httpx.AsyncClient(base_url=second["http"], timeout=10) as http:
            archived = await http.get(
                CONTACTS,
                params={"archived": "true"},
                headers=bearer((await password_tokens(http))["access_token"]),
            )
            assert sorted(r["id"] for r in archived.json()["results"]) == sorted(deleted.ids)
            listed = await http.get(f"{hooks}/subscriptions", params=params)
            assert [s["id"] for s in listed.json()["results"]] == [made.json()["id"]]
            settings = await http.get(f"{hooks}/settings", params=params)
            assert settings.json()["targetUrl"] == "https://example.test/h"
            # Ids go on after a restart: a new subscription never reuses an old id.
            other = await http.post(
                f"{hooks}/subscriptions", params=params, json={"eventType": "contact.deletion"}
            )
            assert int(other.json()["id"]) > int(made.json()["id"])
        async with mesh_channel(second["grpc"], credentials, server_identity="sandbox") as channel:
            control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
            kept = await control.ListWebhookSubscriptions(
                sandbox_pb2.ListWebhookSubscriptionsRequest(
                    provider=sandbox_pb2.PROVIDER_SALESFORCE
                )
            )
            assert [s.id for s in kept.subscriptions] == [member.json()["id"]]
