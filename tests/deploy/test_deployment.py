"""The deployment's own configuration, run on this machine (issue 20's "done when").

The local-test overlay is rendered and every workload started from its rendered command,
args, env and volumes (tests/support/deploy_world.py), against real PostgreSQL, Redis,
Temporal and the Pub/Sub emulator, without the launcher. A builder's day then passes
through the rendered edge: a project and its API key, a provider app and a webhook
destination, a manifest deployed, a connection made through the sandbox's OAuth consent
(redirected to the callback URL the overlay renders), an installation whose backfill
reaches a verifying receiver in this process; one api replica and the token-manager
shard owning the connection are killed (-9) mid-backfill and restarted by the harness's
"kubelet", and nothing is lost.

What "loses nothing" checks: every record the provider holds reaches the receiver, each
in exactly one webhook message (a message id, svix-id, is a page); a page may arrive
again under the same message id (a redelivery after a kill, which a receiver
de-duplicates by that id), never a record under two message ids; every signature
verifies; the operation ends in success and its logs are readable through the edge.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from typing import Any

import httpx
import orjson
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.token.v1 import token_manager_pb2_grpc as tm_grpc
from google.protobuf import duration_pb2

from services.runtime.channels import mesh_channel, token_manager_channel
from tests.support.deploy_world import World
from tests.support.oauth_popup import follow_consent
from tests.support.sandbox import CLIENT_ID, CLIENT_SECRET, password_tokens
from tests.support.webhooks import HOOK, Receiver, serve

pytestmark = pytest.mark.e2e

RECORDS = 4_000
# Each record page waits this long at the provider, so the backfill (40 pages) lasts long
# enough for the kills to land in its middle on any machine.
PAGE_DELAY = duration_pb2.Duration(nanos=400_000_000)
# Kill once this many records arrived (of RECORDS).
KILL_AFTER = 600
PATIENCE = 180.0
DESTINATION = "crmHook"


class PageReceiver(Receiver):
    """A Receiver that also keeps which message (svix-id) carried which records."""

    def __init__(self) -> None:
        super().__init__(both_libraries=True)
        self.pages: dict[str, list[str]] = {}
        self.deliveries: defaultdict[str, int] = defaultdict(int)
        # Message ids delivered again with other records than the first time (a page
        # redelivered must be the same page).
        self.changed: list[str] = []

    def _tally(self, headers: dict[str, str], body: bytes) -> None:
        super()._tally(headers, body)
        message_id = headers.get("svix-id", "")
        self.deliveries[message_id] += 1
        records = [str(r.get("id")) for r in orjson.loads(body).get("result") or ()]
        if self.pages.setdefault(message_id, records) != records:
            self.changed.append(message_id)


def manifest(object_name: str) -> str:
    return "\n".join(
        [
            "specVersion: 1.0.0",
            "integrations:",
            "  - name: crm-reads",
            "    provider: hubspot",
            "    read:",
            "      objects:",
            f"        - objectName: {object_name}",
            f"          destination: {DESTINATION}",
            "          requiredFields:",
            "            - fieldName: name",
            "              mapToName: title",
            "          optionalFields:",
            "            - fieldName: amount",
            "          backfill:",
            "            defaultPeriod:",
            "              fullHistory: true",
            "",
        ]
    )


async def provider_ids(sandbox_http: str, object_name: str) -> set[str]:
    """Every id the sandbox's HubSpot list API pages through (before the slow fault)."""
    async with httpx.AsyncClient(base_url=sandbox_http, timeout=30) as sandbox:
        token = (await password_tokens(sandbox))["access_token"]
        ids: set[str] = set()
        after = ""
        while True:
            params = {"limit": "100", **({"after": after} if after else {})}
            page = await sandbox.get(
                f"/hubspot/crm/v3/objects/{object_name}",
                params=params,
                headers={"authorization": f"Bearer {token}"},
            )
            assert page.status_code == 200, page.text
            body = page.json()
            ids.update(r["id"] for r in body["results"])
            after = body.get("paging", {}).get("next", {}).get("after", "")
            if not after:
                return ids


async def until(check: Any, what: str, patience: float = PATIENCE) -> None:
    deadline = time.monotonic() + patience
    while not await check():
        assert time.monotonic() < deadline, f"did not {what} within {patience:.0f} s"
        await asyncio.sleep(0.2)


def test_every_workload_runs_from_its_rendered_command(world: World) -> None:
    """The process table: what the overlay declares, started from its own commands."""
    # The long-running containers (the release Job's ran to its end, checked below).
    mains = {
        p.name: p
        for p in world.processes()
        if not p.container.init and p.pod.workload.kind != "Job"
    }
    pods = sorted(world.pods)
    print(world.table())
    modules: defaultdict[str, list[str]] = defaultdict(list)
    for name, process in mains.items():
        # As rendered, but for the image's paths: its interpreter and Envoy are this
        # machine's, and a mounted volume's path is the pod's directory here.
        mounts = process.pod.volumes
        for rendered, ran in zip(process.container.argv[1:], process.argv[1:], strict=True):
            assert ran == rendered or any(
                rendered.startswith(m) and ran == str(mounts[m]) + rendered.removeprefix(m)
                for m in mounts
            ), (name, rendered, ran)
        modules[" ".join(process.container.argv[:3])].append(name.split("/")[0])
    assert sorted(modules["python -m services.api"]) == [
        "api-0",
        "api-1",
        "api-proxy-0",
        "api-read-0",
        "api-write-0",
    ]
    assert sorted(modules["python -m services.token_manager"]) == [
        "token-manager-0",
        "token-manager-1",
        "token-manager-2",
    ]
    for pod in ("scribe-0", "messenger-0", "metrics-0", "builder-mcp-0", "sandbox-0"):
        assert pod in pods
    assert "mcpanda-0" not in pods  # off by default
    queues = {
        mains[f"{pod}/service"].env["AMPMESH_TEMPORAL_TASK_QUEUES"]
        for pod in pods
        if pod.startswith("temporal-worker-")
    }
    assert queues == {"connections", "reads", "writes", "subscribe"}
    # The shards name themselves after their pods (the edge's ring keys on those names).
    for i in range(3):
        assert mains[f"token-manager-{i}/service"].env["AMPMESH_SHARD_NAME"] == (
            f"token-manager-{i}"
        )
    # Route groups per api workload, as rendered.
    groups = {
        pod: {
            k.removeprefix("AMPMESH_ENABLE_").removesuffix("_ROUTES").lower()
            for k, v in mains[f"{pod}/service"].env.items()
            if k.startswith("AMPMESH_ENABLE_") and v == "true"
        }
        for pod in ("api-0", "api-read-0", "api-write-0", "api-proxy-0")
    }
    assert groups["api-read-0"] == {"read"}
    assert groups["api-write-0"] == {"write"}
    assert groups["api-proxy-0"] == {"proxy"}
    assert {"platform", "read", "write", "proxy"} <= groups["api-0"]
    # Two edges, each rendered by its init container, and every pod waited for the schema.
    edges = [p for p in world.processes() if p.container.name == "envoy"]
    assert len(edges) == 2
    assert all(world.process(e.pod.name, "edge-config").exits == [0] for e in edges)
    # Applied all at once onto an empty database: the release Job migrated it while every
    # pod's wait-for-schema held its service, and no service crashed for want of a table.
    release = world.process("ampmesh-release-0", "release")
    assert release.exits == [0]
    waits = [p for p in world.processes() if p.container.name == "wait-for-schema"]
    database_users = {p.pod.name for p in mains.values() if "AMPMESH_DATABASE_URL" in p.env}
    assert database_users == {w.pod.name for w in waits}
    assert all(w.exits == [0] for w in waits)
    assert all(w.started_at < release.ended_at for w in waits)
    assert all(
        mains[f"{w.pod.name}/service"].started_at >= w.ended_at >= release.started_at for w in waits
    )
    assert all(p.exits == [] for p in mains.values()), world.table()
    assert all(p.process is not None for p in mains.values())


async def test_a_builders_day_survives_a_killed_api_replica_and_shard(world: World) -> None:
    api = world.url("edge", 8080)
    admin = httpx.AsyncClient(base_url=api, headers={"x-api-key": world.admin_api_key}, timeout=30)
    sandbox_http = world.url("sandbox", 8099)
    async with admin, serve(PageReceiver()) as receiver:
        assert isinstance(receiver, PageReceiver)
        # The project and its own key: the rest of the day uses that key, not the admin's.
        created = await admin.post(
            "/v1/projects", json={"name": f"deploy-{uuid.uuid4().hex[:8]}", "appName": "Deploy"}
        )
        assert created.status_code == 201, created.text
        project = created.json()
        key = await admin.post(
            f"/v1/projects/{project['id']}/api-keys", json={"label": "builder", "scopes": ["full"]}
        )
        assert key.status_code == 201, key.text
        http = httpx.AsyncClient(
            base_url=f"{api}/v1/projects/{project['id']}",
            headers={"x-api-key": key.json()["key"]},
            timeout=30,
        )
        async with http:
            await day(world, http, receiver, sandbox_http)


async def day(
    world: World, http: httpx.AsyncClient, receiver: PageReceiver, sandbox_http: str
) -> None:
    object_name = f"deploy_{uuid.uuid4().hex[:8]}"
    app = await http.post(
        "/provider-apps",
        json={
            "provider": "hubspot",
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
            "scopes": ["crm.objects.contacts.read"],
        },
    )
    assert app.status_code == 200, app.text
    destination = await http.post(
        "/destinations",
        json={"name": DESTINATION, "type": "webhook", "metadata": {"url": receiver.url()}},
    )
    assert destination.status_code == 201, destination.text
    revealed = await http.get(f"/destinations/{DESTINATION}", params={"includeSecrets": "true"})
    assert revealed.status_code == 200, revealed.text
    receiver.secrets[HOOK] = revealed.json()["secrets"]["webhookSigningKey"]
    deployed = await http.put("/integrations:batch", json={"sourceYaml": manifest(object_name)})
    assert deployed.status_code == 200, deployed.text
    (integration,) = deployed.json()

    channel = mesh_channel(
        world.address("sandbox", 50051), world.credentials("tests"), server_identity="sandbox"
    )
    async with channel:
        control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
        seeded = await control.SeedRecords(
            sandbox_pb2.SeedRecordsRequest(
                provider=sandbox_pb2.PROVIDER_HUBSPOT,
                object_name=object_name,
                count=RECORDS,
                seed=uuid.uuid4().int % 2**31,
                replace=True,
            ),
            timeout=60,
        )
        assert seeded.created == RECORDS
        ids = await provider_ids(sandbox_http, object_name)
        assert len(ids) == RECORDS
        await control.InjectFault(
            sandbox_pb2.InjectFaultRequest(
                fault=sandbox_pb2.Fault(
                    kind=sandbox_pb2.FAULT_KIND_SLOW_RESPONSE,
                    endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
                    object_name=object_name,
                    delay=PAGE_DELAY,
                )
            )
        )
        try:
            await backfill(world, http, receiver, sandbox_http, integration, object_name, ids)
        finally:
            await control.ClearFaults(sandbox_pb2.ClearFaultsRequest())


async def backfill(
    world: World,
    http: httpx.AsyncClient,
    receiver: PageReceiver,
    sandbox_http: str,
    integration: dict[str, Any],
    object_name: str,
    ids: set[str],
) -> None:
    connection_id = await consent(world, http)
    created = await http.post(
        f"/integrations/{integration['id']}/installations",
        json={
            "groupRef": "acme",
            "config": {
                "content": {
                    "read": {
                        "objects": {
                            object_name: {
                                "objectName": object_name,
                                "destination": DESTINATION,
                                "selectedFields": {"name": True, "amount": True},
                                "selectedFieldMappings": {"title": "name"},
                                "backfill": {"defaultPeriod": {"fullHistory": True}},
                            }
                        }
                    }
                }
            },
        },
    )
    assert created.status_code == 201, created.text
    installation = created.json()

    # Mid-backfill: some pages arrived, most have not.
    async def started() -> bool:
        return len(receiver.received.records) >= KILL_AFTER

    await until(started, "deliver the first pages")
    shard = await owning_shard(world, connection_id)
    api_replica = world.process("api-0")
    shard_process = world.process(shard)
    before = {p.name: p.restarts for p in (api_replica, shard_process)}
    arrived_at_kill = len(receiver.received.records)
    api_replica.kill()
    shard_process.kill()
    print(f"killed api-0 and {shard} (the connection's shard) at {arrived_at_kill} of {len(ids)}")
    assert arrived_at_kill < len(ids), "the backfill ended before the kills"

    # While api-0 is down, the platform API answers through the edge from the other
    # replica (kube-proxy's stand-in sends new connections only to ready pods). A request
    # in flight at the very kill may fail (the public routes are not retried), so asking
    # starts once the edge has had a moment to see the connection close.
    await asyncio.sleep(0.5)
    answers: list[int] = []

    async def restarted() -> bool:
        if not api_replica.pod.ready:
            answers.append((await http.get("/integrations")).status_code)
        return all(
            p.restarts > before[p.name] and p.pod.ready for p in (api_replica, shard_process)
        )

    await until(restarted, "restart the killed api replica and shard")
    print(f"answers while api-0 was down: {answers}")
    assert answers and set(answers) == {200}, answers

    missing = await receiver.wait_for_records(ids, PATIENCE)
    received = receiver.received
    print(
        f"records={len(ids)} messages={len(receiver.pages)} "
        f"redelivered={sum(n - 1 for n in receiver.deliveries.values())} "
        f"refused={received.refused}"
    )
    assert not missing, f"{len(missing)} of {len(ids)} records never arrived"
    assert received.bad_signatures == 0
    assert set(received.records) <= ids
    # Each record in exactly one message: a second copy only as the same message again.
    carriers: defaultdict[str, set[str]] = defaultdict(set)
    for message_id, records in receiver.pages.items():
        for record in records:
            carriers[record].add(message_id)
    twice = {r: m for r, m in carriers.items() if len(m) > 1}
    assert not twice, f"{len(twice)} records came in two different messages"
    assert not receiver.changed, f"messages redelivered with other records: {receiver.changed}"

    # The operation and its logs, through the edge.
    path = f"/integrations/{integration['id']}/installations/{installation['id']}/operations"
    operation: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal operation
        listed = await http.get(path)
        assert listed.status_code == 200, listed.text
        done = [o for o in listed.json()["results"] if o["status"] in ("success", "failure")]
        operation = done[0] if done else {}
        return bool(done)

    await until(ended, "end the read operation", 60)
    assert operation["status"] == "success", operation
    logs = await http.get(f"/operations/{operation['id']}/logs")
    assert logs.status_code == 200, logs.text
    assert isinstance(logs.json(), list)
    assert logs.json(), "the operation has no logs"


async def consent(world: World, http: httpx.AsyncClient) -> str:
    """The customer connects in the OAuth popup: oauth-connect hands out the sandbox's
    consent URL, which approves at once and redirects to the callback URL the overlay
    renders (the edge's public api host), whose page names the connection made."""
    project_id = http.base_url.path.rstrip("/").rsplit("/", 1)[-1]
    asked = await http.post(
        f"{world.url('edge', 8080)}/v1/oauth-connect",
        json={
            "projectIdOrName": project_id,
            "provider": "hubspot",
            "groupRef": "acme",
            "consumerRef": "acme-user",
        },
    )
    assert asked.status_code == 200, asked.text
    return await follow_consent(world.url("edge", 8080), asked.text)


async def owning_shard(world: World, connection_id: str) -> str:
    """The token-manager pod the edge's ring hash sends the connection to."""
    channel = token_manager_channel(world.address("edge-internal", 50061), world.credentials("api"))
    async with channel:
        stub = tm_grpc.TokenManagerServiceStub(channel)
        described = await stub.DescribeShard(tm.DescribeShardRequest(connection_id=connection_id))
    shard: str = described.shard
    assert shard in world.pods, f"shard {shard!r} is not a rendered pod"
    return shard
