"""builder-mcp's tools: what a builder does with ampmesh, as an assistant would do it for them.

The set follows Ampersand's own MCP server (create/update records, check a connection,
check/create an installation, start OAuth, send a request or a read-only request through
the proxy) and adds the rest of a builder's day: validate and deploy a manifest, the
providers catalog, installations, reads and their operations and logs, deliveries and
their replay.

Every tool but validate_manifest calls the api with the caller's API key (mcp_auth.py,
"Who calls"), through the generated stubs; the proxy tools call the edge's proxy host over
HTTP, as any client of the proxy does. A failed call is the tool's MCP error with the
api's problem detail: its code, message and the fields it names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import grpc
import httpx
from ampmesh.messenger.v1 import messenger_pb2
from ampmesh.platform.v1 import (
    connections_pb2,
    connections_pb2_grpc,
    deliveries_pb2,
    deliveries_pb2_grpc,
    installations_pb2,
    installations_pb2_grpc,
    integrations_pb2,
    integrations_pb2_grpc,
    operations_pb2,
    operations_pb2_grpc,
    projects_pb2,
    projects_pb2_grpc,
    providers_pb2,
    providers_pb2_grpc,
)
from ampmesh.read.v1 import read_pb2, read_pb2_grpc
from ampmesh.write.v1 import write_pb2, write_pb2_grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field, ValidationError

from services.domain.manifest import ManifestError, parse_manifest
from services.runtime.mcp_http import McpSettings
from services.runtime.mcp_service import API_CALL_SECONDS, McpMesh, api_error

# Proxied answers larger than this are cut: a tool result goes into a model's context.
MAX_PROXY_BODY = 64 * 1024
PROXY_TIMEOUT_SECONDS = 60.0


class BuilderMcpSettings(McpSettings):
    """builder-mcp's settings: the MCP server's, and where the proxy host is."""

    proxy_url: str = Field(
        "",
        description="the edge's proxy host (e.g. http://127.0.0.1:8443 locally); "
        "send_request is refused while it is empty",
    )


# A JSON document, with types the schema can name (not a bare "any"): an array's items
# are scalars or objects, which covers what providers answer and take.
JsonScalar = str | int | float | bool | None
JsonValue = dict[str, Any] | list[dict[str, Any] | JsonScalar] | JsonScalar

# Parameters several tools share, described once.
Project = Annotated[str, Field(description="project id or name", min_length=1)]
Integration = Annotated[str, Field(description="integration id or name", min_length=1)]
GroupRef = Annotated[
    str,
    Field(
        description="the builder's reference for the customer group (as in the installation)",
        min_length=1,
    ),
]

ProxyPath = Annotated[
    str, Field(description="the provider's path under its base URL, e.g. /crm/v3/contacts")
]
ProxyIntegration = Annotated[
    str, Field(description="integration name (with group_ref) selecting the installation")
]
ProxyGroup = Annotated[str, Field(description="group ref (with integration)")]
ProxyInstallation = Annotated[
    str, Field(description="installation id (instead of integration and group_ref)")
]
ProxyHeaders = Annotated[
    dict[str, str] | None, Field(description="headers for the provider (never credentials)")
]


class ManifestCheck(BaseModel):
    """The outcome of validating an amp.yaml manifest."""

    valid: bool
    integrations: list[str]
    issues: list[str]


class ApiResult(BaseModel):
    """A public API response, as the REST API would print it."""

    result: dict[str, Any]


class OauthStart(BaseModel):
    """Where to send the customer to connect their account."""

    url: str = Field(description="the provider's consent page; open it in a browser")
    provider: str
    group_ref: str
    consumer_ref: str


class ConnectionCheck(BaseModel):
    """Whether a group has a working connection to a provider."""

    connected: bool = Field(
        description="a connection exists whose credentials are not known bad "
        "(status created or working)"
    )
    connections: list[dict[str, Any]]


class InstallationCheck(BaseModel):
    """Whether a group has an installation of an integration."""

    installed: bool
    installation: dict[str, Any] | None


class ProxyResponse(BaseModel):
    """The provider's answer to a call sent through the proxy."""

    status: int
    headers: dict[str, str]
    body: JsonValue = Field(description="the JSON body parsed, else its text (cut at 64 KiB)")
    truncated: bool = False


def _json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message)


def _parse(message: Message, value: dict[str, Any], name: str) -> Message:
    """message filled from a tool's JSON parameter, or an error naming the parameter."""
    try:
        return json_format.ParseDict(value, message)
    except json_format.ParseError as error:
        raise ToolError(f"INVALID_ARGUMENT: {name}: {error}") from None


# A connection's statuses (Connection.status) that may be used; bad_credentials may not.
_USABLE = ("created", "working")

_DELIVERY_STATUSES = {
    name.removeprefix("DELIVERY_STATUS_").lower(): number
    for name, number in messenger_pb2.DeliveryStatus.items()
    if number
}


def build_server(mesh: McpMesh[BuilderMcpSettings]) -> MCPServer:
    """The builder-mcp MCP server, calling the api service over `mesh.api`."""
    server = MCPServer(
        "ampmesh-builder",
        instructions="Build integrations on ampmesh: deploy amp.yaml manifests, connect "
        "customers, install, read, write, call providers through the proxy, and follow "
        "operations and deliveries. Every call acts with your API key's rights.",
    )
    providers = providers_pb2_grpc.ProviderServiceStub(mesh.api)
    projects = projects_pb2_grpc.ProjectServiceStub(mesh.api)
    integrations = integrations_pb2_grpc.IntegrationServiceStub(mesh.api)
    connections = connections_pb2_grpc.ConnectionServiceStub(mesh.api)
    installations = installations_pb2_grpc.InstallationServiceStub(mesh.api)
    operations = operations_pb2_grpc.OperationServiceStub(mesh.api)
    deliveries = deliveries_pb2_grpc.DeliveryServiceStub(mesh.api)
    reads = read_pb2_grpc.ReadServiceStub(mesh.api)
    writes = write_pb2_grpc.WriteServiceStub(mesh.api)

    async def call(rpc: Any, request: Message) -> Any:
        try:
            return await rpc(request, metadata=mesh.api_metadata(), timeout=API_CALL_SECONDS)
        except grpc.aio.AioRpcError as error:
            raise api_error(error) from None

    async def integration_id(project: str, integration: str) -> str:
        found = await call(
            integrations.GetIntegration,
            integrations_pb2.GetIntegrationRequest(
                project_id_or_name=project, integration_id_or_name=integration
            ),
        )
        return str(found.id)

    # --- manifests and the catalog ---------------------------------------------------

    @server.tool()
    async def validate_manifest(
        source_yaml: Annotated[str, Field(description="the amp.yaml manifest's text")],
    ) -> ManifestCheck:
        """Check an amp.yaml manifest without deploying it: every problem names
        integration, field and line. Needs no project."""
        try:
            manifest = parse_manifest(source_yaml)
        except ManifestError as error:
            return ManifestCheck(
                valid=False, integrations=[], issues=[str(i) for i in error.issues]
            )
        return ManifestCheck(
            valid=True, integrations=[i.name for i in manifest.integrations], issues=[]
        )

    @server.tool()
    async def deploy_manifest(
        project: Project,
        source_yaml: Annotated[str, Field(description="the amp.yaml manifest's text")],
        destructive: Annotated[
            bool,
            Field(description="also delete the project's integrations the manifest omits"),
        ] = False,
    ) -> ApiResult:
        """Deploy an amp.yaml to a project: creates or updates its integrations (the
        project's objects, schedules and destinations must check out, as on deploy)."""
        request = integrations_pb2.BatchUpsertIntegrationsRequest(
            project_id_or_name=project,
            destructive=destructive,
            source=integrations_pb2.IntegrationSource(source_yaml=source_yaml),
        )
        return ApiResult(result=_json(await call(integrations.BatchUpsertIntegrations, request)))

    @server.tool()
    async def list_integrations(project: Project) -> ApiResult:
        """The project's integrations, each with its latest revision."""
        request = integrations_pb2.ListIntegrationsRequest(project_id_or_name=project)
        return ApiResult(result=_json(await call(integrations.ListIntegrations, request)))

    @server.tool()
    async def list_providers() -> ApiResult:
        """The providers catalog: every SaaS provider ampmesh can connect to."""
        request = providers_pb2.ListProvidersRequest()
        return ApiResult(result=_json(await call(providers.ListProviders, request)))

    @server.tool()
    async def get_provider(
        provider: Annotated[str, Field(description="catalog name, e.g. 'hubspot'")],
    ) -> ApiResult:
        """One provider's capabilities: auth type, read/write/proxy/subscribe support,
        base URLs and what a connection needs."""
        request = providers_pb2.GetProviderRequest(provider=provider)
        return ApiResult(result=_json(await call(providers.GetProvider, request)))

    # --- connections -----------------------------------------------------------------

    @server.tool()
    async def start_oauth_connect(
        project: Project,
        provider: Annotated[str, Field(description="catalog name, e.g. 'salesforce'")],
        group_ref: GroupRef,
        consumer_ref: Annotated[
            str, Field(description="the builder's reference for the connecting user")
        ],
        group_name: Annotated[str, Field(description="display name of the group")] = "",
        consumer_name: Annotated[str, Field(description="display name of the user")] = "",
        provider_app_id: Annotated[
            str, Field(description="provider app to authorize with; the project's default")
        ] = "",
        provider_workspace_ref: Annotated[
            str, Field(description="the customer's workspace, for providers whose URLs need one")
        ] = "",
    ) -> OauthStart:
        """Start connecting a customer's account over OAuth: answers the consent URL to
        open; once the customer approves, the connection exists (see check_connection)."""
        request = connections_pb2.OauthConnectRequest(
            project_id_or_name=project,
            provider=provider,
            group_ref=group_ref,
            group_name=group_name,
            consumer_ref=consumer_ref,
            consumer_name=consumer_name,
            provider_app_id=provider_app_id,
            provider_workspace_ref=provider_workspace_ref,
        )
        body = await call(connections.OauthConnect, request)
        return OauthStart(
            url=bytes(body.data).decode(),
            provider=provider,
            group_ref=group_ref,
            consumer_ref=consumer_ref,
        )

    @server.tool()
    async def check_connection(
        project: Project,
        provider: Annotated[str, Field(description="catalog name, e.g. 'hubspot'")],
        group_ref: GroupRef,
    ) -> ConnectionCheck:
        """Whether a group has a working connection to a provider, and its connections
        (ids, status, consumer; never a credential)."""
        request = connections_pb2.ListConnectionsRequest(
            project_id_or_name=project, provider=provider, group_ref=group_ref
        )
        found = _json(await call(connections.ListConnections, request)).get("connections", [])
        return ConnectionCheck(
            connected=any(c.get("status") in _USABLE for c in found), connections=found
        )

    # --- installations ---------------------------------------------------------------

    @server.tool()
    async def create_installation(
        project: Project,
        integration: Integration,
        group_ref: GroupRef,
        config: Annotated[
            dict[str, Any],
            Field(
                description="the installation's config, as the REST API's: "
                '{"content": {"read": {"objects": {"<object>": {"objectName": "<object>", '
                '"destination": "<destination>", "schedule": "0 * * * *"}}}}}'
            ),
        ],
        connection_id: Annotated[
            str, Field(description="connection to use; the group's default when empty")
        ] = "",
    ) -> ApiResult:
        """Install an integration for a customer group (it must have a connection to the
        integration's provider). Objects with a backfill start reading at once."""
        installation = installations_pb2.InstallationInput(group_ref=group_ref)
        if connection_id:
            installation.connection_id = connection_id
        _parse(installation.config, config, "config")
        request = installations_pb2.CreateInstallationRequest(
            project_id_or_name=project,
            integration_id=await integration_id(project, integration),
            installation=installation,
        )
        return ApiResult(result=_json(await call(installations.CreateInstallation, request)))

    @server.tool()
    async def check_installation(
        project: Project, integration: Integration, group_ref: GroupRef
    ) -> InstallationCheck:
        """Whether a group has an installation of an integration, and which."""
        request = installations_pb2.ListInstallationsRequest(
            project_id_or_name=project,
            integration_id=await integration_id(project, integration),
            group_ref=group_ref,
        )
        found = _json(await call(installations.ListInstallations, request))
        listed = found.get("installations", [])
        return InstallationCheck(installed=bool(listed), installation=listed[0] if listed else None)

    @server.tool()
    async def list_installations(
        project: Project,
        integration: Annotated[
            str, Field(description="only this integration's (id or name); every one when empty")
        ] = "",
    ) -> ApiResult:
        """The installations of one integration, or of every integration of the project."""
        if integration:
            request: Message = installations_pb2.ListInstallationsRequest(
                project_id_or_name=project,
                integration_id=await integration_id(project, integration),
            )
            return ApiResult(result=_json(await call(installations.ListInstallations, request)))
        request = installations_pb2.ListInstallationsForProjectRequest(project_id_or_name=project)
        return ApiResult(
            result=_json(await call(installations.ListInstallationsForProject, request))
        )

    @server.tool()
    async def get_installation(
        project: Project,
        integration: Integration,
        installation_id: Annotated[str, Field(description="the installation's id")],
    ) -> ApiResult:
        """One installation: its group, connection, config and last operation's status."""
        request = installations_pb2.GetInstallationRequest(
            project_id_or_name=project,
            integration_id=await integration_id(project, integration),
            installation_id=installation_id,
        )
        return ApiResult(result=_json(await call(installations.GetInstallation, request)))

    # --- reads and operations --------------------------------------------------------

    @server.tool()
    async def trigger_read(
        project: Project,
        integration: Integration,
        object_name: Annotated[str, Field(description="object to read (provider or mapped)")],
        group_ref: GroupRef,
        since: Annotated[
            str,
            Field(description="read only records changed at or after (RFC 3339); all if empty"),
        ] = "",
        until: Annotated[
            str, Field(description="read only records changed before (RFC 3339); now if empty")
        ] = "",
    ) -> ApiResult:
        """Read one object of a group's installation now; answers the operation's id
        (follow it with get_operation). Results go to the object's destination."""
        body: dict[str, Any] = {"mode": "async"}
        if since:
            body["sinceTimestamp"] = since
        if until:
            body["untilTimestamp"] = until
        request = read_pb2.TriggerReadRequest(
            project_id_or_name=project,
            integration_id=await integration_id(project, integration),
            object_name=object_name,
            group_ref=group_ref,
        )
        _parse(request, body, "since/until")
        return ApiResult(result=_json(await call(reads.TriggerRead, request)))

    @server.tool()
    async def get_operation(
        project: Project, operation_id: Annotated[str, Field(description="the operation's id")]
    ) -> ApiResult:
        """One operation (a read, a write): its status, times and metadata."""
        request = operations_pb2.GetOperationRequest(
            project_id_or_name=project, operation_id=operation_id
        )
        return ApiResult(result=_json(await call(operations.GetOperation, request)))

    @server.tool()
    async def list_operations(
        project: Project,
        integration: Integration,
        installation_id: Annotated[str, Field(description="the installation's id")],
        page_token: Annotated[str, Field(description="the previous page's next token")] = "",
    ) -> ApiResult:
        """One page of an installation's operations (reads, writes), newest first."""
        request = operations_pb2.ListOperationsRequest(
            project_id_or_name=project,
            integration_id=await integration_id(project, integration),
            installation_id=installation_id,
            page_token=page_token,
        )
        return ApiResult(result=_json(await call(operations.ListOperations, request)))

    @server.tool()
    async def list_operation_logs(
        project: Project, operation_id: Annotated[str, Field(description="the operation's id")]
    ) -> ApiResult:
        """An operation's log entries: what it did, page by page, and why it failed."""
        request = operations_pb2.ListOperationLogsRequest(
            project_id_or_name=project, operation_id=operation_id
        )
        return ApiResult(result=_json(await call(operations.ListOperationLogs, request)))

    # --- writes ----------------------------------------------------------------------

    async def write(
        project: str,
        integration: str,
        object_name: str,
        group_ref: str,
        kind: str,
        record: dict[str, Any],
        asynchronous: bool,
    ) -> ApiResult:
        request = write_pb2.WriteRecordsRequest(
            project_id_or_name=project,
            integration_id=integration,
            object_name=object_name,
            group_ref=group_ref,
            type=kind,
            mode="asynchronous" if asynchronous else "synchronous",
        )
        _parse(request.record, record, "record")
        return ApiResult(result=_json(await call(writes.WriteRecords, request)))

    @server.tool()
    async def create_record(
        project: Project,
        integration: Integration,
        object_name: Annotated[str, Field(description="object to write (provider or mapped)")],
        group_ref: GroupRef,
        record: Annotated[dict[str, Any], Field(description="field name to value")],
        asynchronous: Annotated[
            bool, Field(description="return at once with an operation id, and retry")
        ] = False,
    ) -> ApiResult:
        """Create a record in the customer's SaaS through the integration's write action;
        answers the new record's id (or the operation's, when asynchronous)."""
        return await write(
            project, integration, object_name, group_ref, "create", record, asynchronous
        )

    @server.tool()
    async def update_record(
        project: Project,
        integration: Integration,
        object_name: Annotated[str, Field(description="object to write (provider or mapped)")],
        group_ref: GroupRef,
        record: Annotated[
            dict[str, Any], Field(description='the fields to change, with the record\'s "id"')
        ],
        asynchronous: Annotated[
            bool, Field(description="return at once with an operation id, and retry")
        ] = False,
    ) -> ApiResult:
        """Update a record in the customer's SaaS through the integration's write action."""
        if not str(record.get("id", "")).strip():
            raise ToolError('INVALID_ARGUMENT: record.id: an update names the record ("id")')
        return await write(
            project, integration, object_name, group_ref, "update", record, asynchronous
        )

    # --- the proxy -------------------------------------------------------------------

    async def proxy(
        project: str,
        method: str,
        path: str,
        integration: str,
        group_ref: str,
        installation_id: str,
        body: Any,
        headers: dict[str, str],
    ) -> ProxyResponse:
        base = mesh.settings.proxy_url.rstrip("/")
        if not base:
            raise ToolError(
                "FAILED_PRECONDITION: this builder-mcp has no proxy URL (AMPMESH_PROXY_URL)"
            )
        if not path.startswith("/"):
            raise ToolError("INVALID_ARGUMENT: path: must start with '/' (the provider's path)")
        if not installation_id and not (integration and group_ref):
            raise ToolError(
                "INVALID_ARGUMENT: installation_id: name the installation, or give "
                "integration and group_ref"
            )
        # The proxy wants the project's id; the caller may have named it.
        found = await call(
            projects.GetProject, projects_pb2.GetProjectRequest(project_id_or_name=project)
        )
        sent = {k: v for k, v in headers.items() if not k.lower().startswith("x-amp-")}
        sent.update(dict(mesh.api_metadata()))
        sent["x-amp-proxy-version"] = "1"
        sent["x-amp-project-id"] = str(found.id)
        if installation_id:
            sent["x-amp-installation-id"] = installation_id
        else:
            sent["x-amp-integration-name"] = integration
            sent["x-amp-group-ref"] = group_ref
        async with httpx.AsyncClient(timeout=PROXY_TIMEOUT_SECONDS) as http:
            try:
                answer = await http.request(
                    method.upper(),
                    base + path,
                    headers=sent,
                    json=body if body is not None else None,
                )
            except httpx.HTTPError as error:
                raise ToolError(
                    f"UNAVAILABLE: the proxy could not be reached ({type(error).__name__})"
                ) from None
        if answer.headers.get("x-amp-proxy-origin") == "ampmesh" and answer.status_code >= 400:
            # ampmesh refused the call (problem+json); the provider was never called.
            try:
                problem = answer.json()
            except ValueError:
                problem = {"detail": answer.text[:1000]}
            raise ToolError(
                f"proxy refused ({answer.status_code}): {problem.get('title', '')}: "
                f"{problem.get('detail', '')} {problem.get('issues', '') or ''}".strip()
            )
        text = answer.text
        truncated = len(text) > MAX_PROXY_BODY
        parsed: Any
        try:
            parsed = answer.json() if not truncated else text[:MAX_PROXY_BODY]
        except ValueError:
            parsed = text[:MAX_PROXY_BODY]
        kept = {k: v for k, v in answer.headers.items() if k.lower() != "set-cookie"}
        try:
            return ProxyResponse(
                status=answer.status_code, headers=kept, body=parsed, truncated=truncated
            )
        except ValidationError:
            # JSON the schema does not name (arrays of arrays): the text, as received.
            return ProxyResponse(
                status=answer.status_code,
                headers=kept,
                body=text[:MAX_PROXY_BODY],
                truncated=truncated,
            )

    @server.tool()
    async def send_request(
        project: Project,
        method: Annotated[
            Literal["GET", "POST", "PUT", "PATCH", "DELETE"], Field(description="HTTP method")
        ],
        path: ProxyPath,
        integration: ProxyIntegration = "",
        group_ref: ProxyGroup = "",
        installation_id: ProxyInstallation = "",
        body: Annotated[
            dict[str, Any] | list[dict[str, Any] | JsonScalar] | None,
            Field(description="JSON body to send (POST, PUT, PATCH)"),
        ] = None,
        headers: ProxyHeaders = None,
    ) -> ProxyResponse:
        """Call the customer's provider API through the proxy with the installation's
        connection (ampmesh adds the credentials); answers the provider's response."""
        return await proxy(
            project, method, path, integration, group_ref, installation_id, body, headers or {}
        )

    @server.tool()
    async def send_read_only_request(
        project: Project,
        path: ProxyPath,
        integration: ProxyIntegration = "",
        group_ref: ProxyGroup = "",
        installation_id: ProxyInstallation = "",
        headers: ProxyHeaders = None,
    ) -> ProxyResponse:
        """GET from the customer's provider API through the proxy: changes nothing."""
        return await proxy(
            project, "GET", path, integration, group_ref, installation_id, None, headers or {}
        )

    # --- deliveries ------------------------------------------------------------------

    @server.tool()
    async def list_deliveries(
        project: Project,
        destination: Annotated[str, Field(description="webhook destination id or name")],
        operation_id: Annotated[str, Field(description="only this operation's")] = "",
        status: Annotated[
            Literal["", "pending", "retrying", "succeeded", "failed"],
            Field(description="only deliveries in this status; every one when empty"),
        ] = "",
        page_token: Annotated[str, Field(description="the previous page's next token")] = "",
    ) -> ApiResult:
        """Deliveries of results to a webhook destination, newest first, with their
        attempts' outcome."""
        request = deliveries_pb2.ListDeliveriesRequest(
            project_id_or_name=project,
            destination_id_or_name=destination,
            operation_id=operation_id,
            page_token=page_token,
        )
        if status:
            request.status = _DELIVERY_STATUSES[status]  # type: ignore[assignment]
        return ApiResult(result=_json(await call(deliveries.ListDeliveries, request)))

    @server.tool()
    async def replay_delivery(
        project: Project,
        destination: Annotated[str, Field(description="webhook destination id or name")],
        delivery_id: Annotated[str, Field(description="the delivery to send again")],
    ) -> ApiResult:
        """Send one delivery to its destination again (a new attempt, the same payload)."""
        request = deliveries_pb2.RedeliverDeliveryRequest(
            project_id_or_name=project,
            destination_id_or_name=destination,
            delivery_id=delivery_id,
        )
        return ApiResult(result=_json(await call(deliveries.RedeliverDelivery, request)))

    return server
