"""`ampmesh up --observability` as an operator uses it: a real Prometheus, started and
supervised by the launcher, scrapes every service and Envoy, loads the alerting rules,
and shows the application metrics move when a builder connects, backfills to a receiver
that fails, and a connection's token refresh is refused. Every exposition passes
`promtool check metrics`."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc

from services.launcher import observability
from services.launcher.mesh import MeshOptions, running_mesh
from services.launcher.state import status
from services.runtime.channels import CONNECTION_ID_HEADER, token_manager_channel
from tests.e2e.reads_world import CLIENT_ID, CLIENT_SECRET, make_world, seed
from tests.support.sandbox import controlling, sandbox_connection
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, serve

pytestmark = pytest.mark.e2e

# Generous for a busy 2-core machine (not a timing claim): how long a series may take to
# show a change (metrics refresh each second, Prometheus scrapes each second).
PATIENCE = 120.0


@pytest.fixture(scope="module")
async def stack() -> AsyncIterator[Stack]:
    """A mesh of its own, started as `ampmesh up --sandbox --observability` starts it,
    with figures refreshed and scraped every second."""
    home = Path(tempfile.mkdtemp(prefix="ampmesh-test-observability-"))
    home.chmod(0o755)  # PostgreSQL runs as an unprivileged user when tests run as root
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AMPMESH_METRICS_INTERVAL", "1")
        env.setenv(observability.INTERVAL_VARIABLE, "1")
        options = MeshOptions(sandbox=True, observability=True)
        async with running_mesh(home, options) as mesh:
            yield Stack(mesh, mesh.endpoints())
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
async def prometheus(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.endpoints["prometheus"], timeout=10) as http:
        yield http


async def query(prometheus: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    """The instant vector of expr, from Prometheus's HTTP API."""
    answer = await prometheus.get("/api/v1/query", params={"query": expr})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def until_present(prometheus: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    """Wait until expr (a filter such as `x > 0`) returns a series; return them."""
    deadline = time.monotonic() + PATIENCE
    while True:
        found = await query(prometheus, expr)
        if found:
            return found
        assert time.monotonic() < deadline, f"Prometheus never showed {expr}"
        await asyncio.sleep(1)


def scraped_processes(stack: Stack) -> set[tuple[str, str]]:
    """(job, instance) of every process Prometheus should scrape."""
    expected = {
        (observability._job(s.name), s.name)
        for s in stack.mesh.services
        if s.extra.get(f"{s.name}-metrics")
    }
    return expected | {("envoy", "envoy"), ("prometheus", "prometheus")}


async def test_every_service_is_scraped_with_its_name_and_the_rules_are_loaded(
    stack: Stack, prometheus: httpx.AsyncClient
) -> None:
    expected = scraped_processes(stack)
    # Every service of the mesh exports metrics: none is missing from the scrape.
    assert {name for _, name in expected} >= {s.name for s in stack.mesh.services}
    assert ("token-manager", "token-manager-1") in expected  # shards share their job

    async def all_up() -> set[tuple[str, str]]:
        series = await query(prometheus, "up == 1")
        return {(s["metric"]["job"], s["metric"]["instance"]) for s in series}

    deadline = time.monotonic() + PATIENCE
    while (up := await all_up()) != expected:
        assert time.monotonic() < deadline, f"up: {sorted(up)}, expected {sorted(expected)}"
        await asyncio.sleep(1)

    rules = (await prometheus.get("/api/v1/rules")).json()["data"]["groups"]
    alerts = {r["name"] for g in rules for r in g["rules"] if r["type"] == "alerting"}
    assert alerts == {
        "AmpmeshUndeliveredBacklog",
        "AmpmeshTokenRefreshFailures",
        "AmpmeshDeadLetters",
        "AmpmeshServiceDown",
        "AmpmeshMetricsStale",
    }
    assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules
    # A mesh whose services all answer fires nothing about them.
    assert await query(prometheus, 'ALERTS{alertname="AmpmeshServiceDown"}') == []


async def test_prometheus_is_a_supervised_process_of_the_mesh(stack: Stack) -> None:
    described = stack.mesh.describe()
    assert described["endpoints"]["prometheus"] == stack.endpoints["prometheus"]
    assert stack.endpoints["prometheus"].startswith("http://127.0.0.1:")
    [entry] = [p for p in described["processes"] if p["name"] == "prometheus"]
    assert entry["kind"] == "infrastructure"
    # Its data and its rendered config live under the mesh home.
    assert (stack.home / "prometheus" / "data").is_dir()
    assert (stack.home / "prometheus" / "rules.yml").read_text() == (
        observability.RULES_FILE.read_text()
    )
    # `ampmesh status` probes it like the rest.
    checked = await status(stack.home)
    assert checked is not None
    [probed] = [p for p in checked["processes"] if p["name"] == "prometheus"]
    assert probed["healthy"] is True
    # Killed, it comes back on the same URL.
    before = stack.mesh.restarts("prometheus")
    record = await stack.mesh.restart_process("prometheus")
    assert record.pid != entry["pid"]
    assert stack.mesh.restarts("prometheus") == before + 1
    assert stack.mesh.endpoints()["prometheus"] == stack.endpoints["prometheus"]
    assert await observability.probe(stack.endpoints["prometheus"])


async def test_a_restarted_service_is_scraped_again_at_the_same_url(
    stack: Stack, prometheus: httpx.AsyncClient
) -> None:
    # The config is static: it holds because a service's metrics port is booked.
    before = stack.mesh.endpoints()["scribe-metrics"]
    await stack.mesh.restart("scribe")
    assert stack.mesh.endpoints()["scribe-metrics"] == before
    started = time.time()
    deadline = time.monotonic() + PATIENCE
    while True:
        [scribe] = await query(prometheus, 'up{job="scribe"}')
        # A scrape made after the restart found it up.
        if float(scribe["value"][1]) == 1 and float(scribe["value"][0]) > started + 2:
            break
        assert time.monotonic() < deadline, f"scribe not scraped again: {scribe}"
        await asyncio.sleep(1)


async def check_metrics(exposition: str) -> str:
    """promtool check metrics's findings on an exposition ("" when it passes)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run scripts/install_observability.sh"
    checked = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "" if checked.returncode == 0 else (checked.stdout + checked.stderr).strip()


# promtool's lint findings on Envoy's own stat names (counters without _total, no HELP,
# _ms units, ...): Envoy's naming, not ours to change. Its exposition must still parse: a
# parse error ("error while linting: ...") fails the check.
ENVOY_LINT = re.compile(r"^envoy_[a-zA-Z0-9_:]+ [a-z]")


async def test_every_exposition_passes_promtool_check_metrics(stack: Stack) -> None:
    urls = {
        name.removesuffix("-metrics"): url
        for name, url in stack.mesh.endpoints().items()
        if name.endswith("-metrics")
    }
    # Every service, the MCP servers and the sandbox included.
    assert set(urls) == {s.name for s in stack.mesh.services}
    findings: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for name, url in sorted(urls.items()):
            page = await http.get(url)
            assert page.status_code == 200, f"{name}: {page.status_code}"
            assert "# TYPE" in page.text, f"{name} exports nothing"
            if found := await check_metrics(page.text):
                findings[name] = found
        assert not findings, "\n".join(f"{name}: {text}" for name, text in findings.items())

        envoy = await http.get(f"{stack.endpoints['envoy-admin']}/stats/prometheus")
    assert envoy.status_code == 200
    others = [
        line
        for line in (await check_metrics(envoy.text)).splitlines()
        if not ENVOY_LINT.match(line)
    ]
    assert others == [], others


async def test_a_connect_a_failing_backfill_and_a_refused_refresh_move_the_metrics(
    stack: Stack, prometheus: httpx.AsyncClient
) -> None:
    async with serve(Receiver()) as receiver, controlling(stack) as sandbox:
        # The receiver answers 500 to everything: each page is retried, none delivered.
        receiver.fail(500, seconds=3600)
        world = await make_world(stack, receiver.url(), f"gauges_{uuid.uuid4().hex[:8]}")
        receiver.secrets[HOOK] = world.signing_key
        project = world.project_id
        await seed(sandbox, world.object_name, 120)
        installation = await world.install("acme")
        assert installation["id"]

        # A second customer's connection whose access token expired and whose refresh
        # token the customer revoked: the next token request's refresh is refused.
        connection, tokens = await sandbox_connection(
            stack, world.http, "hubspot", "revoker", expires_in=-60
        )
        async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as http:
            revoked = await http.post(
                "/hubspot/oauth/v1/revoke",
                data={
                    "token": tokens["refresh_token"],
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                },
            )
        assert revoked.status_code == 200, revoked.text
        await refused_refresh(stack, project, connection["id"])

        selector = f'project="{project}"'
        for expr in (
            f"sum(ampmesh_app_connections{{{selector}}}) >= 2",
            f"ampmesh_app_installations{{{selector}}} >= 1",
            f"ampmesh_app_operations{{{selector}}} > 0",
            f'ampmesh_app_records{{{selector},kind="read"}} > 0',
            f'ampmesh_app_deliveries{{{selector},status=~"failed|outstanding"}} > 0',
            f"ampmesh_app_oldest_undelivered_seconds{{{selector}}} > 0",
            f'ampmesh_app_token_refreshes{{{selector},outcome="failed"}} > 0',
        ):
            await until_present(prometheus, expr)
        assert receiver.received.refused > 0, "the receiver was never sent a page"

        # The recording rules see the same figures.
        assert await until_present(prometheus, "ampmesh:oldest_undelivered_seconds:max > 0")
        failures = await until_present(
            prometheus, f"ampmesh:token_refresh_failures:by_project{{{selector}}} >= 1"
        )
        assert float(failures[0]["value"][1]) >= 1
        # And every service still answers its scrape.
        down = await query(prometheus, "up == 0")
        assert down == [], down


async def refused_refresh(stack: Stack, project_id: str, connection_id: str) -> None:
    """Ask the token-manager (through the edge, as the api does) for the connection's
    token: its refresh is refused by the provider."""
    async with token_manager_channel(
        stack.endpoints["token-manager"], stack.credentials("api")
    ) as channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetToken(
                tm.GetTokenRequest(connection_id=connection_id, project_id=project_id),
                metadata=((CONNECTION_ID_HEADER, connection_id),),
            )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value
