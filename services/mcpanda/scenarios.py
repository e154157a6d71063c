"""Scenario tools: the steps a test agent would otherwise chain by hand, each made of the
same RPCs the generated tools call (as the MCP caller on the api, as mcpanda on the
sandbox), plus a Temporal tool that finds an operation's workflow and reads its history.

- scenario_connect_sandbox_account: OAuth-connect a group to a sandbox provider the way a
  customer's browser would (the sandbox's consent approves at once and redirects; the
  redirect's code and state go to the api's OAuth callback).
- scenario_backfill_to_receiver: seed sandbox records, point a webhook destination at a
  receiver, deploy a one-object integration and install it for a connected group (which
  starts the backfill); answers the operation to wait for.
- scenario_wait_for_operation: poll an operation until it ends, or the timeout passes.
- temporal_operation_workflow: the Temporal workflow an operation ran as, its status and
  its event history.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
from ampmesh.platform.v1 import (
    connections_pb2,
    destinations_pb2,
    installations_pb2,
    integrations_pb2,
    operations_pb2,
    provider_apps_pb2,
)
from ampmesh.sandbox.v1 import sandbox_pb2
from google.protobuf.descriptor import MethodDescriptor
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.service import RPCError

from services.domain.read_workflows import backfill_workflow_id, triggered_workflow_id
from services.domain.temporal_client import TemporalSettingError, connect_temporal
from services.domain.write_workflows import async_write_workflow_id

if TYPE_CHECKING:
    from services.mcpanda.tools import Mesh

# Sandbox providers by catalog name (the sandbox stands in for these two).
SANDBOX_PROVIDERS = {
    "hubspot": sandbox_pb2.PROVIDER_HUBSPOT,
    "salesforce": sandbox_pb2.PROVIDER_SALESFORCE,
}
# An operation that has not ended.
IN_PROGRESS = "in_progress"
# Between two polls of an operation.
POLL_SECONDS = 0.5
# The longest a wait may be asked for: a tool call should not outlive a client's patience.
MAX_WAIT_SECONDS = 600.0
# History events a tool answers at most (a long backfill has thousands).
MAX_EVENTS = 500


def _method(service: Any, name: str) -> MethodDescriptor:
    descriptor: MethodDescriptor = service.methods_by_name[name]
    return descriptor


_CONNECTIONS = connections_pb2.DESCRIPTOR.services_by_name["ConnectionService"]
_APPS = provider_apps_pb2.DESCRIPTOR.services_by_name["ProviderAppService"]
_DESTINATIONS = destinations_pb2.DESCRIPTOR.services_by_name["DestinationService"]
_INTEGRATIONS = integrations_pb2.DESCRIPTOR.services_by_name["IntegrationService"]
_INSTALLATIONS = installations_pb2.DESCRIPTOR.services_by_name["InstallationService"]
_OPERATIONS = operations_pb2.DESCRIPTOR.services_by_name["OperationService"]
_SANDBOX = sandbox_pb2.DESCRIPTOR.services_by_name["SandboxControlService"]


class ConnectedAccount(BaseModel):
    """The connection the OAuth flow made."""

    connection: dict[str, Any]
    provider_app_created: bool = Field(
        description="true when the project had no app for the provider and one was made "
        "with the sandbox's OAuth client"
    )


class Backfill(BaseModel):
    """What the scenario set up, and the backfill's operation."""

    project_id: str
    integration_id: str
    installation_id: str
    destination: str
    object_name: str
    records_seeded: int
    operation: dict[str, Any]


class FinishedOperation(BaseModel):
    """An operation that ended (status success or failure)."""

    operation: dict[str, Any]
    waited_seconds: float


class WorkflowEvent(BaseModel):
    event_id: int
    event_type: str
    event_time: str


class OperationWorkflow(BaseModel):
    """The Temporal workflow an operation ran as."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    task_queue: str
    start_time: str
    close_time: str
    history_length: int
    events: list[WorkflowEvent]
    events_truncated: bool


def _provider(name: str) -> int:
    if name not in SANDBOX_PROVIDERS:
        raise ToolError(
            f"provider: {name!r} is not sandboxed; use one of {sorted(SANDBOX_PROVIDERS)}"
        )
    return SANDBOX_PROVIDERS[name]


def _manifest(
    integration: str, provider: str, object_name: str, destination: str, fields: list[str]
) -> str:
    lines = [
        "specVersion: 1.0.0",
        "integrations:",
        f"  - name: {integration}",
        f"    provider: {provider}",
        "    read:",
        "      objects:",
        f"        - objectName: {object_name}",
        f"          destination: {destination}",
        "          requiredFields:",
        f"            - fieldName: {fields[0]}",
    ]
    if fields[1:]:
        lines.append("          optionalFields:")
        lines += [f"            - fieldName: {name}" for name in fields[1:]]
    lines += [
        "          backfill:",
        "            defaultPeriod:",
        "              fullHistory: true",
    ]
    return "\n".join(lines) + "\n"


def _name_part(value: str, field: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,60}", value):
        raise ToolError(f"{field}: {value!r} must be letters, digits and underscores")
    return value


def register(server: MCPServer, mesh: Mesh) -> None:
    """Adds the scenario and Temporal tools to server."""

    async def sandbox(name: str, request: dict[str, Any]) -> dict[str, Any]:
        return await mesh.operator("sandbox", _method(_SANDBOX, name), request)

    async def ensure_provider_app(project: str, provider: str) -> bool:
        apps = await mesh.api(_method(_APPS, "ListProviderApps"), {"projectIdOrName": project})
        if any(app.get("provider") == provider for app in apps.get("providerApps", [])):
            return False
        info = await sandbox("GetSandboxInfo", {})
        clients = info.get("clients", [])
        if not clients:
            raise ToolError("the sandbox names no OAuth client to make a provider app with")
        await mesh.api(
            _method(_APPS, "CreateProviderApp"),
            {
                "projectIdOrName": project,
                "providerApp": {
                    "provider": provider,
                    "clientId": clients[0]["clientId"],
                    "clientSecret": clients[0]["clientSecret"],
                },
            },
        )
        return True

    @server.tool()
    async def scenario_connect_sandbox_account(
        project: str, group_ref: str, provider: str = "hubspot", consumer_ref: str = ""
    ) -> ConnectedAccount:
        """Connect group_ref's account at a sandbox provider (hubspot or salesforce) to the
        project (id or name) through the real OAuth flow: oauth-connect, the sandbox's
        consent (approved at once), then the api's OAuth callback with the code. Makes the
        project's provider app from the sandbox's OAuth client when it has none."""
        _provider(provider)
        project_id = await mesh.project_id(project)
        created = await ensure_provider_app(project_id, provider)
        started = await mesh.api(
            _method(_CONNECTIONS, "OauthConnect"),
            {
                "projectIdOrName": project_id,
                "provider": provider,
                "groupRef": group_ref,
                "consumerRef": consumer_ref or f"{group_ref}-user",
            },
        )
        authorization_url = str(started.get("text", "")).strip()
        if not authorization_url.startswith("http"):
            raise ToolError(f"oauth-connect answered no authorization URL: {started}")
        async with httpx.AsyncClient(follow_redirects=False, timeout=30) as browser:
            consent = await browser.get(authorization_url)
        location = consent.headers.get("location", "")
        if consent.status_code not in (302, 303) or not location:
            raise ToolError(
                f"the sandbox's consent answered {consent.status_code}, not a redirect: "
                f"{consent.text[:300]}"
            )
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        page = await mesh.api(
            _method(_CONNECTIONS, "OauthCallback"),
            {k: query[k] for k in ("code", "state", "error", "errorDescription") if k in query},
        )
        made = re.search(r'"connection":\s*"([0-9a-f-]{36})"', str(page.get("text", "")))
        if made is None:
            raise ToolError(f"the OAuth callback made no connection: {str(page.get('text'))[:500]}")
        connection = await mesh.api(
            _method(_CONNECTIONS, "GetConnection"),
            {"projectIdOrName": project_id, "connectionId": made.group(1)},
        )
        return ConnectedAccount(connection=connection, provider_app_created=created)

    @server.tool()
    async def scenario_backfill_to_receiver(
        project: str,
        group_ref: str,
        receiver_url: str,
        object_name: str,
        count: int = 10,
        provider: str = "hubspot",
        fields: list[str] | None = None,
        seed: int = 7,
    ) -> Backfill:
        """Seed `count` sandbox records of object_name (replacing its records), make a
        webhook destination to receiver_url, deploy an integration reading object_name with
        a full-history backfill to it, and install it for group_ref (which must be connected,
        e.g. by scenario_connect_sandbox_account): the installation starts the backfill.
        fields: provider field names to read (default name, amount; the sandbox gives every
        object but contacts and companies those). Answers the backfill's operation."""
        sandboxed = _provider(provider)
        _name_part(object_name, "object_name")
        if not 0 < count <= 100_000:
            raise ToolError("count: must be between 1 and 100000")
        wanted = fields or ["name", "amount"]
        for name in wanted:
            _name_part(name, "fields")
        project_id = await mesh.project_id(project)
        seeded = await sandbox(
            "SeedRecords",
            {
                "provider": sandbox_pb2.Provider.Name(sandboxed),
                "objectName": object_name,
                "count": count,
                "seed": seed,
                "replace": True,
            },
        )
        suffix = uuid.uuid4().hex[:8]
        destination = f"mcpanda{suffix}"
        integration_name = f"mcpanda-{object_name.lower()}-{suffix}".replace("_", "-")
        await mesh.api(
            _method(_DESTINATIONS, "CreateDestination"),
            {
                "projectIdOrName": project_id,
                "destination": {
                    "name": destination,
                    "type": "webhook",
                    "metadata": {"url": receiver_url},
                },
            },
        )
        deployed = await mesh.api(
            _method(_INTEGRATIONS, "BatchUpsertIntegrations"),
            {
                "projectIdOrName": project_id,
                "source": {
                    "sourceYaml": _manifest(
                        integration_name, provider, object_name, destination, wanted
                    )
                },
            },
        )
        integration_id = str(deployed["integrations"][0]["id"])
        installation = await mesh.api(
            _method(_INSTALLATIONS, "CreateInstallation"),
            {
                "projectIdOrName": project_id,
                "integrationId": integration_id,
                "installation": {
                    "groupRef": group_ref,
                    "config": {
                        "content": {
                            "read": {
                                "objects": {
                                    object_name: {
                                        "objectName": object_name,
                                        "destination": destination,
                                        "selectedFields": dict.fromkeys(wanted, True),
                                        "backfill": {"defaultPeriod": {"fullHistory": True}},
                                    }
                                }
                            }
                        }
                    },
                },
            },
        )
        installation_id = str(installation["id"])
        operation = await first_operation(project_id, integration_id, installation_id)
        return Backfill(
            project_id=project_id,
            integration_id=integration_id,
            installation_id=installation_id,
            destination=destination,
            object_name=object_name,
            records_seeded=int(seeded.get("created", 0)),
            operation=operation,
        )

    async def first_operation(
        project_id: str, integration_id: str, installation_id: str
    ) -> dict[str, Any]:
        """The installation's first operation; the backfill records it as it starts."""
        deadline = time.monotonic() + 60
        while True:
            listed = await mesh.api(
                _method(_OPERATIONS, "ListOperations"),
                {
                    "projectIdOrName": project_id,
                    "integrationId": integration_id,
                    "installationId": installation_id,
                },
            )
            if listed.get("results"):
                found: dict[str, Any] = listed["results"][-1]
                return found
            if time.monotonic() > deadline:
                raise ToolError(
                    f"installation {installation_id} recorded no operation within 60 s "
                    "(is the temporal worker running?)"
                )
            await asyncio.sleep(POLL_SECONDS)

    @server.tool()
    async def scenario_wait_for_operation(
        project: str, operation_id: str, timeout_seconds: float = 120.0
    ) -> FinishedOperation:
        """Poll an operation until its status is no longer in_progress (success or
        failure); the final operation. A tool error if it is still running when
        timeout_seconds (at most 600) pass."""
        if not 0 < timeout_seconds <= MAX_WAIT_SECONDS:
            raise ToolError(f"timeout_seconds: must be between 0 and {MAX_WAIT_SECONDS:g}")
        project_id = await mesh.project_id(project)
        started = time.monotonic()
        while True:
            operation = await mesh.api(
                _method(_OPERATIONS, "GetOperation"),
                {"projectIdOrName": project_id, "operationId": operation_id},
            )
            waited = time.monotonic() - started
            if operation.get("status") != IN_PROGRESS:
                return FinishedOperation(operation=operation, waited_seconds=round(waited, 3))
            if waited > timeout_seconds:
                raise ToolError(
                    f"operation {operation_id} is still in_progress after {timeout_seconds:g} s"
                )
            await asyncio.sleep(POLL_SECONDS)

    temporal: list[Client] = []

    async def temporal_client() -> Client:
        if not temporal:
            if not mesh.settings.temporal_address:
                raise ToolError(
                    "Temporal is not configured: mcpanda has no AMPMESH_TEMPORAL_ADDRESS"
                )
            try:
                client = await connect_temporal(mesh.settings, lazy=True)
            except TemporalSettingError as error:
                raise ToolError(str(error)) from None
            temporal.append(client)
        return temporal[0]

    @server.tool()
    async def temporal_operation_workflow(
        project: str, operation_id: str, max_events: int = 200
    ) -> OperationWorkflow:
        """The Temporal workflow an operation ran as (a backfill, a triggered read or an
        asynchronous write): its status and its history's events (the first max_events,
        at most 500). The project is checked with the api first."""
        if not 0 < max_events <= MAX_EVENTS:
            raise ToolError(f"max_events: must be between 1 and {MAX_EVENTS}")
        project_id = await mesh.project_id(project)
        operation = await mesh.api(
            _method(_OPERATIONS, "GetOperation"),
            {"projectIdOrName": project_id, "operationId": operation_id},
        )
        client = await temporal_client()
        found = await _find_run(client, operation)
        if found is None:
            raise ToolError(
                f"no Temporal workflow found for operation {operation_id} "
                f"({operation.get('actionType', '')}); scheduled reads and synchronous "
                "writes have none of their own"
            )
        handle = client.get_workflow_handle(found.id, run_id=found.run_id)
        events: list[WorkflowEvent] = []
        truncated = False
        async for event in handle.fetch_history_events():
            if len(events) == max_events:
                truncated = True
                break
            events.append(
                WorkflowEvent(
                    event_id=event.event_id,
                    event_type=_event_type(event.event_type),
                    event_time=event.event_time.ToJsonString(),
                )
            )
        return OperationWorkflow(
            workflow_id=found.id,
            run_id=found.run_id,
            workflow_type=found.workflow_type,
            status=found.status.name if found.status is not None else "UNKNOWN",
            task_queue=found.task_queue,
            start_time=found.start_time.isoformat(),
            close_time=found.close_time.isoformat() if found.close_time else "",
            history_length=found.history_length,
            events=events,
            events_truncated=truncated,
        )


def _event_type(value: int) -> str:
    from temporalio.api.enums.v1 import EventType

    return str(EventType.Name(value)).removeprefix("EVENT_TYPE_")  # type: ignore[arg-type]


async def _find_run(
    client: Client, operation: dict[str, Any]
) -> WorkflowExecutionDescription | None:
    """The run of the operation's workflow. Triggered reads and asynchronous writes are
    named by the operation; a backfill by installation and object, so among that id's runs
    the one whose input names the operation is it."""
    operation_id = str(operation["id"])
    action = operation.get("actionType", "")
    direct = (
        [async_write_workflow_id(operation_id)]
        if action == "write"
        else [triggered_workflow_id(operation_id)]
    )
    for workflow_id in direct:
        try:
            return await client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            continue  # not found: try the next shape
    if action != "read":
        return None
    objects = list(operation.get("metadata", {}).get("objects", []))
    progress = operation.get("metadata", {}).get("progress", {}).get("objectName")
    if progress:
        objects.append(progress)
    for object_name in dict.fromkeys(objects):
        workflow_id = backfill_workflow_id(str(operation["installationId"]), object_name)
        quoted = workflow_id.replace("\\", "\\\\").replace("'", "\\'")
        async for execution in client.list_workflows(f"WorkflowId = '{quoted}'"):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            async for event in handle.fetch_history_events():
                started = event.workflow_execution_started_event_attributes
                if any(operation_id.encode() in p.data for p in started.input.payloads):
                    return await handle.describe()
                break  # the first event is the start; its input names the operation
    return None
