"""mcpanda as a test agent uses it, against the whole mesh: the mesh's own mcpanda process
(acting with the local org admin key, as it does on loopback), every public RPC as a tool
with a JSON Schema, errors carrying the api's field violations, the sandbox's control API,
and a scenario from an OAuth connection to a backfill delivered to a receiver, its
deliveries listed through messenger and its Temporal history read."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped, unused-ignore]
import pytest

from services.domain.routes import ROUTE_GROUPS
from services.mcpanda.rpc_tools import comments_from, describe
from tests.sandbox.receiver import receiving
from tests.support.control_plane import admin_client, create_api_key, create_project, unique
from tests.support.mcp_client import call, call_failing, mcp_session
from tests.support.stack import Stack

pytestmark = pytest.mark.timeout(600)


def url(stack: Stack) -> str:
    return stack.endpoints["mcpanda-http"]


async def new_project(session: Any) -> dict[str, Any]:
    created = await call(
        session,
        "platform_create_project",
        {"project": {"name": unique("mcpanda"), "appName": "mcpanda"}},
    )
    assert isinstance(created, dict), created
    return created


async def test_every_public_rpc_is_a_tool_with_a_valid_schema(stack: Stack) -> None:
    async with mcp_session(url(stack)) as session:
        tools = (await session.list_tools()).tools
    by_name = {tool.name: tool for tool in tools}
    assert len(by_name) == len(tools), "tool names are unique"
    assert len(tools) >= 80
    for tool in tools:
        assert re.fullmatch(r"[a-z][a-z0-9_]{0,63}", tool.name), tool.name
        jsonschema.Draft202012Validator.check_schema(tool.input_schema)
        assert tool.description, tool.name
    # Each public RPC has its tool, but the providers' raw webhooks and unbuilt services.
    for group, services in ROUTE_GROUPS.items():
        for service in services:
            for method in service.methods:
                name = f"{group}_{re.sub(r'(?<!^)(?=[A-Z])', '_', method.name).lower()}"
                offered = group != "subscribe" and service.name not in (
                    "OrgService",
                    "ProxyService",
                )
                assert (name in by_name) == offered, name
    create = by_name["platform_create_project"]
    assert "POST /v1/projects" in (create.description or "")
    project = create.input_schema["properties"]["project"]
    assert project["required"] == ["name", "appName", "orgId"]
    assert "id" not in project["properties"], "output-only fields are not arguments"
    deliveries = by_name["messenger_list_deliveries"].input_schema
    assert "projectId" in deliveries["required"]
    assert "DELIVERY_STATUS_FAILED" in deliveries["properties"]["status"]["enum"]
    assert deliveries["properties"]["startTime"]["format"] == "date-time"
    # A map of messages: the installation config's objects.
    assert {
        "sandbox_seed_records",
        "scribe_list_dead_letters",
        "metrics_get_project_metrics",
    } <= set(by_name)
    for scenario in (
        "scenario_connect_sandbox_account",
        "scenario_backfill_to_receiver",
        "scenario_wait_for_operation",
        "temporal_operation_workflow",
    ):
        assert scenario in by_name


ROOT = Path(__file__).resolve().parents[2]


def test_tool_descriptions_carry_the_contracts_comments_when_the_descriptor_set_has_them(
    tmp_path: Path,
) -> None:
    """gen.sh builds ampmesh.binpb without source info (Envoy loads it); a descriptor set
    with it (what mcpanda looks for as ampmesh.docs.binpb) gives each tool its RPC's
    comment."""
    # grpcio-tools (a dev pin, gen.sh's protoc) ships no type information.
    import grpc_tools  # type: ignore[import-untyped, unused-ignore]
    from ampmesh.platform.v1 import projects_pb2
    from google.api import annotations_pb2
    from grpc_tools import protoc  # type: ignore[import-untyped, unused-ignore]

    out = tmp_path / "ampmesh.docs.binpb"
    files = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    includes = [
        ROOT / "proto",
        ROOT / "proto" / "third_party",
        Path(grpc_tools.__file__).parent / "_proto",
        Path(annotations_pb2.__file__).parents[2],  # googleapis' google/api/*.proto
    ]
    code = protoc.main(
        [
            "protoc",
            *(f"-I{path}" for path in includes),
            "--include_source_info",
            "--include_imports",
            f"--descriptor_set_out={out}",
            *(f for f in files if f.startswith("ampmesh/")),
        ]
    )
    assert code == 0
    comments = comments_from(out)
    create = projects_pb2.DESCRIPTOR.services_by_name["ProjectService"].methods_by_name[
        "CreateProject"
    ]
    described = describe(create, comments)
    assert described.startswith("Creates a project in an organisation"), described
    assert "(REST: POST /v1/projects)" in described
    # Without comments, the binding and the messages remain.
    assert describe(create, {}).startswith("RPC ampmesh.platform.v1.ProjectService/CreateProject")


INSPECTOR = Path(__file__).parent / "node_modules" / ".bin" / "mcp-inspector"


async def test_the_mcp_inspector_lists_the_same_tools_without_schema_warnings(
    stack: Stack,
) -> None:
    """A third-party client (the MCP inspector's CLI, pinned in tests/mcp/package.json)
    lists the tools, and its strict schema-portability check finds nothing to warn of."""
    if not INSPECTOR.exists():
        pytest.fail(f"{INSPECTOR} is missing: run scripts/install_ui.sh", pytrace=False)
    process = await asyncio.create_subprocess_exec(
        str(INSPECTOR),
        "--cli",
        url(stack),
        "--method",
        "tools/list",
        "--strict",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert "Warning" not in err.decode(), err.decode()
    listed = {tool["name"] for tool in json.loads(out)["tools"]}
    async with mcp_session(url(stack)) as session:
        tools = (await session.list_tools()).tools
    assert listed == {tool.name for tool in tools}


async def test_a_generated_tool_creates_and_gets_a_project(stack: Stack) -> None:
    async with mcp_session(url(stack)) as session:
        created = await new_project(session)
        got = await call(session, "platform_get_project", {"projectIdOrName": created["name"]})
    assert got["id"] == created["id"]
    assert got["appName"] == "mcpanda"


async def test_an_rpc_error_carries_its_code_and_field_violations(stack: Stack) -> None:
    async with mcp_session(url(stack)) as session:
        result = await session.call_tool(
            "platform_create_project", {"project": {"name": "not a name!", "appName": "x"}}
        )
        unknown = await call_failing(session, "platform_get_project", {"projectIdOrNme": "x"})
    assert result.is_error
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    assert "INVALID_ARGUMENT" in text
    assert "field violation: body.name:" in text
    assert result.structured_content is not None
    assert result.structured_content["code"] == "INVALID_ARGUMENT"
    (bad_request,) = [
        d for d in result.structured_content["details"] if d["@type"].endswith("BadRequest")
    ]
    assert bad_request["fieldViolations"][0]["field"] == "body.name"
    # A misspelt argument is refused by name before any call.
    assert "projectIdOrNme" in unknown


async def test_sandbox_tools_seed_records_and_count_requests(stack: Stack) -> None:
    object_name = f"mcpseed{unique('x')[-6:]}".replace("-", "")
    async with mcp_session(url(stack)) as session:
        seeded = await call(
            session,
            "sandbox_seed_records",
            {"provider": "PROVIDER_HUBSPOT", "objectName": object_name, "count": 5, "seed": 3},
        )
        token = await call(session, "sandbox_get_sandbox_info", {})
        before = await call(session, "sandbox_get_counters", {})
        async with httpx.AsyncClient() as http:
            provider = next(p for p in token["providers"] if p["catalogName"] == "hubspot")
            answered = await http.get(f"{provider['baseUrl']}/crm/v3/objects/{object_name}")
        after = await call(session, "sandbox_get_counters", {})
    assert seeded["created"] == 5
    # The unauthenticated read is counted under the status it was answered.
    status = str(answered.status_code)
    counted = after.get("apiRequestsByStatus", {})
    assert (
        int(counted.get(status, 0)) == int(before.get("apiRequestsByStatus", {}).get(status, 0)) + 1
    )


async def test_operator_tools_ask_the_api_about_the_project_first(stack: Stack) -> None:
    async with mcp_session(url(stack)) as session:
        missing = await call_failing(
            session, "messenger_list_deliveries", {"projectId": "no-such-project"}
        )
        unscoped = await call_failing(session, "scribe_get_ingestion_status", {})
        project = await new_project(session)
        # By name: resolved to the id the operator services know.
        status = await call(session, "scribe_get_ingestion_status", {"projectId": project["name"]})
        metrics = await call(session, "metrics_get_project_metrics", {"projectId": project["id"]})
    assert "NOT_FOUND" in missing
    assert "projectId is required" in unscoped
    assert status["projectId"] == project["id"]
    assert isinstance(metrics, dict)


async def test_operator_tools_act_only_on_the_callers_project(stack: Stack) -> None:
    """With a project's key, the operator-side services answer for that project only: the
    api is asked before messenger, scribe or metrics is."""
    async with admin_client(stack) as admin:
        mine = await create_project(admin, "mcpmine", "Mine")
        theirs = await create_project(admin, "mcptheirs", "Theirs")
        key = await create_api_key(admin, mine["name"], ["full"], label="mcpanda")
    async with mcp_session(url(stack), bearer=key) as session:
        own = await call(session, "scribe_get_ingestion_status", {"projectId": mine["id"]})
        refused = {
            tool: await call_failing(session, tool, {"projectId": theirs["id"]})
            for tool in (
                "messenger_list_deliveries",
                "scribe_list_dead_letters",
                "metrics_get_project_metrics",
            )
        }
        # Dead letters retried by id must be the project's own (scribe takes ids alone).
        foreign = await call_failing(
            session,
            "scribe_retry_dead_letters",
            {"projectId": mine["id"], "ids": ["00000000-0000-4000-8000-000000000000"]},
        )
    assert own["projectId"] == mine["id"]
    for tool, text in refused.items():
        assert re.search(r"NOT_FOUND|PERMISSION_DENIED", text), (tool, text)
    assert "are not dead letters of project" in foreign


async def test_scenario_connect_backfill_wait_deliveries_and_history(stack: Stack) -> None:
    object_name = f"mcpread{unique('x')[-6:]}".replace("-", "")
    async with receiving() as receiver, mcp_session(url(stack)) as session:
        project = await new_project(session)
        connected = await call(
            session,
            "scenario_connect_sandbox_account",
            {"project": project["id"], "group_ref": "acme"},
        )
        assert connected["connection"]["group"]["groupRef"] == "acme"
        assert connected["provider_app_created"] is True
        backfill = await call(
            session,
            "scenario_backfill_to_receiver",
            {
                "project": project["id"],
                "group_ref": "acme",
                "receiver_url": receiver.url + "/hook",
                "object_name": object_name,
                "count": 12,
            },
        )
        assert backfill["records_seeded"] == 12
        operation_id = backfill["operation"]["id"]
        finished = await call(
            session,
            "scenario_wait_for_operation",
            {"project": project["id"], "operation_id": operation_id, "timeout_seconds": 180},
        )
        assert finished["operation"]["status"] == "success", finished
        deliveries = await call(
            session,
            "messenger_list_deliveries",
            {"projectId": project["id"], "operationId": operation_id},
        )
        history = await call(
            session,
            "temporal_operation_workflow",
            {"project": project["id"], "operation_id": operation_id},
        )
    delivered = deliveries.get("deliveries", [])
    assert delivered, deliveries
    assert all(d["status"] == "DELIVERY_STATUS_SUCCEEDED" for d in delivered), delivered
    # At least once: a page may arrive twice, each record is in some page.
    ids = {r["id"] for request in receiver.requests for r in request.json().get("result", [])}
    assert len(ids) == 12, [request.json() for request in receiver.requests]
    assert history["workflow_id"] == f"read-backfill/{backfill['installation_id']}/{object_name}"
    assert history["status"] == "COMPLETED"
    kinds = [event["event_type"] for event in history["events"]]
    assert kinds[0] == "WORKFLOW_EXECUTION_STARTED"
    assert kinds[-1] == "WORKFLOW_EXECUTION_COMPLETED"


async def test_a_restarted_mcp_server_serves_the_same_url(stack: Stack) -> None:
    """An assistant is configured with the URL once: when the supervisor (or an operator)
    restarts mcpanda, the URL it serves stays the same."""
    before = url(stack)
    await stack.mesh.restart("mcpanda")
    assert stack.mesh.endpoints()["mcpanda-http"] == before
    async with mcp_session(before) as session:
        assert len((await session.list_tools()).tools) >= 80
