"""builder-mcp as a builder's assistant uses it: through a real MCP client, with the
builder's project key, against the whole mesh and the provider sandbox.

The project, its key, its HubSpot app (the sandbox's OAuth client) and its webhook
destination are made over REST, as the builder's console would; everything after that
is MCP alone: deploy the manifest, connect the customer over OAuth (following the consent
URL is the customer's click), install, read, follow the operations, call the provider
through the proxy, list the deliveries and replay one, which the receiver gets again.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2

from tests.support.control_plane import create_api_key, create_project, create_provider_app
from tests.support.mcp_client import ToolFailed, call, call_failing, mcp_session
from tests.support.oauth_popup import connect_in_popup
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, serve

pytestmark = pytest.mark.e2e

BuilderMcp = Callable[..., AbstractAsyncContextManager[str]]

DESTINATION = "mcpHook"
INTEGRATION = "mcp-reads"
RECORDS = 5
PATIENCE = 90.0


def manifest(object_name: str) -> str:
    return "\n".join(
        [
            "specVersion: 1.0.0",
            "integrations:",
            f"  - name: {INTEGRATION}",
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
            "    write:",
            "      objects:",
            "        - objectName: companies",
            "    proxy:",
            "      enabled: true",
            "",
        ]
    )


def config(object_name: str) -> dict[str, Any]:
    return {
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
            },
            "write": {"objects": {"companies": {"objectName": "companies"}}},
            "proxy": {"enabled": True},
        }
    }


async def until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """check()'s first truthy answer, or the test fails saying what never happened."""
    deadline = time.monotonic() + PATIENCE
    while True:
        answer = await check()
        if answer:
            return answer
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.5)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve(Receiver()) as running:
        yield running


async def test_builder_mcp_offers_at_least_15_documented_tools(stack: Stack) -> None:
    url = stack.mesh.service("builder-mcp").extra["builder-mcp-http"]
    async with mcp_session(url) as client:
        tools = (await client.list_tools()).tools
    assert len(tools) >= 15, [t.name for t in tools]
    names = {t.name for t in tools}
    assert {
        "validate_manifest",
        "deploy_manifest",
        "list_providers",
        "get_provider",
        "start_oauth_connect",
        "check_connection",
        "create_installation",
        "check_installation",
        "list_installations",
        "get_installation",
        "trigger_read",
        "get_operation",
        "list_operations",
        "list_operation_logs",
        "send_request",
        "send_read_only_request",
        "create_record",
        "update_record",
        "list_deliveries",
        "replay_delivery",
    } <= names
    for tool in tools:
        assert tool.description, tool.name
        assert tool.output_schema is not None, tool.name
        properties = tool.input_schema.get("properties", {})
        undocumented = [p for p, schema in properties.items() if not schema.get("description")]
        assert not undocumented, f"{tool.name}: {undocumented}"
    send = next(t for t in tools if t.name == "send_request")
    assert send.input_schema["properties"]["method"]["enum"] == [
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
    ]
    assert set(send.input_schema["required"]) == {"project", "method", "path"}


async def test_a_builders_day_through_mcp(
    stack: Stack,
    admin: httpx.AsyncClient,
    sandbox: Any,
    receiver: Receiver,
) -> None:
    # The console part: a project, its key, its HubSpot app and its webhook destination.
    project = await create_project(admin, "mcp-day", "MCP Day")
    name = project["name"]
    key = await create_api_key(admin, name, ["full"], label="assistant")
    await create_provider_app(admin, name, "hubspot", ["crm.objects.contacts.read"])
    made = await admin.post(
        f"/v1/projects/{name}/destinations",
        json={"name": DESTINATION, "type": "webhook", "metadata": {"url": receiver.url(HOOK)}},
    )
    assert made.status_code == 201, made.text
    revealed = await admin.get(
        f"/v1/projects/{name}/destinations/{DESTINATION}", params={"includeSecrets": "true"}
    )
    receiver.secrets[HOOK] = revealed.json()["secrets"]["webhookSigningKey"]
    object_name = f"mcp_{uuid.uuid4().hex[:8]}"
    seeded = await sandbox.SeedRecords(
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

    # The rest is the assistant's, over MCP with the project key, on the launcher's
    # builder-mcp process.
    url = stack.mesh.service("builder-mcp").extra["builder-mcp-http"]
    async with mcp_session(url, bearer=key) as client:
        checked = await call(client, "validate_manifest", {"source_yaml": manifest(object_name)})
        assert checked == {"valid": True, "integrations": [INTEGRATION], "issues": []}
        deployed = await call(
            client, "deploy_manifest", {"project": name, "source_yaml": manifest(object_name)}
        )
        [integration] = deployed["result"]["integrations"]
        assert integration["name"] == INTEGRATION

        # A manifest the api refuses: the error names the field and the problem.
        bad = await call_failing(
            client,
            "deploy_manifest",
            {"project": name, "source_yaml": manifest(object_name).replace("provider", "provder")},
        )
        assert "INVALID_ARGUMENT" in bad and "provder" in bad, bad

        hubspot = await call(client, "get_provider", {"provider": "hubspot"})
        assert hubspot["result"]["authType"] == "oauth2"

        # The customer connects: the consent URL, then their click on it.
        started = await call(
            client,
            "start_oauth_connect",
            {"project": name, "provider": "hubspot", "group_ref": "acme", "consumer_ref": "alice"},
        )
        assert started["url"].startswith(f"{stack.endpoints['sandbox-http']}/hubspot/")
        connection_id = await connect_in_popup(stack, started["url"])
        connection = await call(
            client,
            "check_connection",
            {"project": name, "provider": "hubspot", "group_ref": "acme"},
        )
        assert connection["connected"] is True
        assert [c["id"] for c in connection["connections"]] == [connection_id]
        nobody = await call(
            client, "check_connection", {"project": name, "provider": "hubspot", "group_ref": "x"}
        )
        assert nobody == {"connected": False, "connections": []}

        # Installing starts the backfill to the receiver.
        installed = await call(
            client,
            "create_installation",
            {
                "project": name,
                "integration": INTEGRATION,
                "group_ref": "acme",
                "config": config(object_name),
            },
        )
        installation = installed["result"]
        assert installation["group"]["groupRef"] == "acme"
        assert installation["connection"]["id"] == connection_id
        check = await call(
            client,
            "check_installation",
            {"project": name, "integration": INTEGRATION, "group_ref": "acme"},
        )
        assert check["installed"] is True and check["installation"]["id"] == installation["id"]
        got = await call(
            client,
            "get_installation",
            {"project": name, "integration": INTEGRATION, "installation_id": installation["id"]},
        )
        assert got["result"]["id"] == installation["id"]

        async def backfill_ended() -> dict[str, Any] | None:
            listed = await call(
                client,
                "list_operations",
                {
                    "project": name,
                    "integration": integration["id"],
                    "installation_id": installation["id"],
                },
            )
            ended = [o for o in listed["result"].get("results", []) if o["status"] != "in_progress"]
            return ended[0] if ended else None

        backfill = await until(backfill_ended, "the backfill's operation ended")
        assert backfill["status"] == "success", backfill
        assert backfill["actionType"] == "read"
        await receiver.wait_for(HOOK, 1, patience=PATIENCE)
        assert len(receiver.received.records) == RECORDS
        assert receiver.received.bad_signatures == 0

        # A read on demand, followed to its end, with its logs.
        triggered = await call(
            client,
            "trigger_read",
            {
                "project": name,
                "integration": INTEGRATION,
                "object_name": object_name,
                "group_ref": "acme",
            },
        )
        operation_id = triggered["result"]["operationId"]

        async def read_ended() -> dict[str, Any] | None:
            try:
                got = await call(
                    client, "get_operation", {"project": name, "operation_id": operation_id}
                )
            except ToolFailed as failed:
                # Scribe records the operation a moment after the read starts.
                assert "NOT_FOUND" in failed.text, failed.text
                return None
            operation: dict[str, Any] = got["result"]
            return operation if operation["status"] != "in_progress" else None

        operation = await until(read_ended, "the triggered read ended")
        assert operation["status"] == "success", operation
        logs = await call(
            client, "list_operation_logs", {"project": name, "operation_id": operation_id}
        )
        assert logs["result"], logs

        # The deliveries of both reads, and one replayed: the receiver gets it again.
        async def both_delivered() -> list[dict[str, Any]] | None:
            listed = await call(
                client,
                "list_deliveries",
                {"project": name, "destination": DESTINATION, "status": "succeeded"},
            )
            found: list[dict[str, Any]] = listed["result"].get("deliveries", [])
            operations = {d.get("operationId") for d in found}
            return found if {backfill["id"], operation_id} <= operations else None

        deliveries = await until(both_delivered, "both reads' deliveries succeeded")
        first = next(d for d in deliveries if d["operationId"] == operation_id)
        arrived = len(receiver.at(HOOK))
        replayed = await call(
            client,
            "replay_delivery",
            {"project": name, "destination": DESTINATION, "delivery_id": first["id"]},
        )
        assert replayed["result"]["id"] == first["id"]
        again = (await receiver.wait_for(HOOK, arrived + 1, patience=PATIENCE))[arrived:]
        assert [r.headers["svix-id"] for r in again] == [first["id"]]
        assert again[0].verified

        # A failed call carries the api's problem detail.
        missing = await call_failing(
            client,
            "get_installation",
            {"project": name, "integration": "no-such-integration", "installation_id": "x"},
        )
        assert "NOT_FOUND" in missing and "no-such-integration" in missing

        # Records written into the customer's HubSpot through the write API.
        written = {"project": name, "integration": INTEGRATION, "group_ref": "acme"}
        created = await call(
            client,
            "create_record",
            {**written, "object_name": "companies", "record": {"name": "Acme", "domain": "a.io"}},
        )
        record_id = created["result"]["result"]["recordId"]
        assert created["result"]["result"]["success"] is True
        updated = await call(
            client,
            "update_record",
            {**written, "object_name": "companies", "record": {"id": record_id, "name": "Acme 2"}},
        )
        assert updated["result"]["result"]["recordId"] == record_id
        unwritable = await call_failing(
            client,
            "create_record",
            {**written, "object_name": object_name, "record": {"name": "x"}},
        )
        assert "INVALID_ARGUMENT" in unwritable or "FAILED_PRECONDITION" in unwritable

        # The proxy: a GET-only call and any method, with the customer's credentials.
        echoed = await call(
            client,
            "send_read_only_request",
            {
                "project": name,
                "path": "/sandbox/echo/crm/v3/objects/contacts",
                "integration": INTEGRATION,
                "group_ref": "acme",
            },
        )
        assert echoed["status"] == 200, echoed
        assert echoed["headers"]["x-amp-proxy-origin"] == "provider"
        assert echoed["body"]["method"] == "GET"
        # The provider sees the connection's credentials, never the builder's key.
        assert key not in json.dumps(echoed["body"])
        posted = await call(
            client,
            "send_request",
            {
                "project": name,
                "method": "POST",
                "path": "/sandbox/echo/anything",
                "installation_id": installation["id"],
                "body": {"hello": "world"},
            },
        )
        assert posted["status"] == 200, posted
        assert posted["body"]["method"] == "POST"
        refused = await call_failing(
            client,
            "send_read_only_request",
            {"project": name, "path": "/sandbox/echo/x", "integration": "nope", "group_ref": "a"},
        )
        assert "proxy refused" in refused


# The MCP inspector's CLI (pinned in tests/mcp/package.json, installed by scripts/install_ui.sh).
INSPECTOR = Path(__file__).parent / "node_modules" / ".bin" / "mcp-inspector"


async def inspector(*args: str) -> Any:
    process = await asyncio.create_subprocess_exec(
        str(INSPECTOR),
        "--cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert "Warning" not in err.decode(), err.decode()
    return json.loads(out)


async def test_the_mcp_inspector_uses_builder_mcp_with_a_bearer_key(
    builder_mcp: BuilderMcp, admin: httpx.AsyncClient
) -> None:
    """A third-party client: lists the tools (its strict schema check warns of nothing)
    and calls one, sending the key as a header to a server that requires one."""
    if not INSPECTOR.exists():
        pytest.fail(f"{INSPECTOR} is missing: run scripts/install_ui.sh", pytrace=False)
    project = await create_project(admin, "mcp-inspector", "Inspector")
    key = await create_api_key(admin, project["name"], ["full"], label="inspector")
    async with builder_mcp(mcp_require_credential=True) as url:
        header = f"Authorization: Bearer {key}"
        listed = await inspector(url, "--method", "tools/list", "--strict", "--header", header)
        async with mcp_session(url, bearer=key) as client:
            tools = (await client.list_tools()).tools
        assert {t["name"] for t in listed["tools"]} == {t.name for t in tools}
        called = await inspector(
            url,
            "--method",
            "tools/call",
            "--tool-name",
            "list_integrations",
            "--tool-arg",
            f"project={project['name']}",
            "--header",
            header,
        )
        assert called["structuredContent"] == {"result": {}}, called
