"""A builder's whole setup for reading a customer's HubSpot through the mesh: a project
whose HubSpot provider app is the sandbox's client, a webhook destination pointing at a
local Receiver, an integration reading one object (its own name, so the sandbox's
records of it belong to one test), a connection holding real sandbox tokens, and the
installation, whose creation starts the backfill. Used by the read tests and the
end-to-end benchmark."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from ampmesh.workflows.v1 import backfill_read_pb2
from temporalio.client import Client

from services.domain.read_workflows import backfill_workflow_id
from tests.support.control_plane import admin_client, create_project
from tests.support.sandbox import TOKEN_PATHS, sandbox_connection
from tests.support.stack import Stack

CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"
USERNAME, PASSWORD = "sandbox-user", "sandbox-password"
# The sandbox's Provider value, per catalog provider.
SANDBOX_PROVIDERS = {
    "hubspot": sandbox_pb2.PROVIDER_HUBSPOT,
    "salesforce": sandbox_pb2.PROVIDER_SALESFORCE,
}
DESTINATION = "crmHook"
INTEGRATION = "crm-reads"
# The sandbox gives HubSpot objects other than contacts and companies `name` and `amount`:
# the builder maps `name` to `title` and takes `amount` as it is.
MAPPED = ("title", "name")
UNMAPPED = ("amount",)


@dataclass(frozen=True)
class Fields:
    """The fields a builder reads: one mapped (builder name, provider name), the others
    as they are."""

    mapped: tuple[str, str] = MAPPED
    unmapped: tuple[str, ...] = UNMAPPED


# What the sandbox's HubSpot contacts hold.
CONTACT_FIELDS = Fields(("emailAddress", "email"), ("firstname", "lastname", "company", "phone"))


def manifest(
    object_name: str,
    *,
    schedule: str = "",
    backfill: bool = True,
    fields: Fields = Fields(),
    provider: str = "hubspot",
) -> str:
    lines = [
        "specVersion: 1.0.0",
        "integrations:",
        f"  - name: {INTEGRATION}",
        f"    provider: {provider}",
        "    read:",
        "      objects:",
        f"        - objectName: {object_name}",
        f"          destination: {DESTINATION}",
        "          requiredFields:",
        f"            - fieldName: {fields.mapped[1]}",
        f"              mapToName: {fields.mapped[0]}",
        "          optionalFields:",
        *(f"            - fieldName: {name}" for name in fields.unmapped),
    ]
    if schedule:
        lines.append(f'          schedule: "{schedule}"')
    if backfill:
        lines += [
            "          backfill:",
            "            defaultPeriod:",
            "              fullHistory: true",
        ]
    return "\n".join(lines) + "\n"


def read_config(
    object_name: str, *, schedule: str = "", backfill: bool = True, fields: Fields = Fields()
) -> dict[str, Any]:
    """The installation's config of the object: the fields and the mapping the manifest
    asks for, and a full-history backfill."""
    config: dict[str, Any] = {
        "objectName": object_name,
        "destination": DESTINATION,
        "selectedFields": {fields.mapped[1]: True, **dict.fromkeys(fields.unmapped, True)},
        "selectedFieldMappings": {fields.mapped[0]: fields.mapped[1]},
    }
    if schedule:
        config["schedule"] = schedule
    if backfill:
        config["backfill"] = {"defaultPeriod": {"fullHistory": True}}
    return config


@dataclass
class ReadsWorld:
    stack: Stack
    http: httpx.AsyncClient  # the API, rooted at the project
    read_http: httpx.AsyncClient  # the read host, rooted at the project
    project: dict[str, Any]
    integration: dict[str, Any]
    destination: dict[str, Any]
    signing_key: str
    object_name: str
    fields: Fields = Fields()
    provider: str = "hubspot"
    # The tokens of the connections made, and the destination's signing key: no log of
    # the mesh may hold them.
    secrets: list[str] = field(default_factory=list)

    @property
    def project_id(self) -> str:
        return str(self.project["id"])

    async def connect(self, group: str) -> dict[str, Any]:
        """A connection of group holding real sandbox tokens (password grant)."""
        connection, tokens = await sandbox_connection(self.stack, self.http, self.provider, group)
        self.secrets += [tokens["access_token"], tokens["refresh_token"]]
        return connection

    async def install(
        self, group: str, *, schedule: str = "", backfill: bool = True
    ) -> dict[str, Any]:
        """Connect group and install the integration for it (which starts the backfill)."""
        await self.connect(group)
        created = await self.http.post(
            f"/integrations/{self.integration['id']}/installations",
            json={
                "groupRef": group,
                "config": {
                    "content": {
                        "read": {
                            "objects": {
                                self.object_name: read_config(
                                    self.object_name,
                                    schedule=schedule,
                                    backfill=backfill,
                                    fields=self.fields,
                                )
                            }
                        }
                    }
                },
            },
        )
        assert created.status_code == 201, created.text
        installation: dict[str, Any] = created.json()
        return installation

    async def operations(self, installation_id: str) -> list[dict[str, Any]]:
        got = await self.http.get(
            f"/integrations/{self.integration['id']}/installations/{installation_id}/operations"
        )
        assert got.status_code == 200, got.text
        operations: list[dict[str, Any]] = got.json()["results"]
        return operations


async def make_world(
    stack: Stack, receiver_url: str, object_name: str, **manifest_args: Any
) -> ReadsWorld:
    async with admin_client(stack) as admin:
        project = await create_project(admin, "reads", "Reads")
    root = f"/v1/projects/{project['id']}"
    http = admin_client(stack, root)
    read_http = httpx.AsyncClient(
        base_url=stack.endpoints["read"] + root,
        headers={"x-api-key": stack.admin_api_key},
        timeout=30,
    )
    app = await http.post(
        "/provider-apps",
        json={
            "provider": manifest_args.get("provider", "hubspot"),
            "clientId": CLIENT_ID,
            "clientSecret": CLIENT_SECRET,
        },
    )
    assert app.status_code == 200, app.text
    created = await http.post(
        "/destinations",
        json={"name": DESTINATION, "type": "webhook", "metadata": {"url": receiver_url}},
    )
    assert created.status_code == 201, created.text
    revealed = await http.get(f"/destinations/{DESTINATION}", params={"includeSecrets": "true"})
    assert revealed.status_code == 200, revealed.text
    destination = revealed.json()
    deployed = await http.put(
        "/integrations:batch", json={"sourceYaml": manifest(object_name, **manifest_args)}
    )
    assert deployed.status_code == 200, deployed.text
    (integration,) = deployed.json()
    return ReadsWorld(
        stack=stack,
        http=http,
        read_http=read_http,
        project=project,
        integration=integration,
        destination=destination,
        signing_key=destination["secrets"]["webhookSigningKey"],
        object_name=object_name,
        fields=manifest_args.get("fields", Fields()),
        provider=manifest_args.get("provider", "hubspot"),
    )


async def seed(
    sandbox: sandbox_pb2_grpc.SandboxControlServiceStub,
    object_name: str,
    count: int,
    *,
    modified_from: datetime | None = None,
    modified_until: datetime | None = None,
    provider: str = "hubspot",
) -> sandbox_pb2.SeedRecordsResponse:
    """count new records of provider's object_name (replacing any)."""
    request = sandbox_pb2.SeedRecordsRequest(
        provider=SANDBOX_PROVIDERS[provider],
        object_name=object_name,
        count=count,
        seed=uuid.uuid4().int % 2**31,
        replace=True,
    )
    if modified_from is not None:
        request.modified_from.FromDatetime(modified_from)
    if modified_until is not None:
        request.modified_until.FromDatetime(modified_until)
    seeded = await sandbox.SeedRecords(request, timeout=60)
    assert seeded.created == count
    return seeded


async def sandbox_token(stack: Stack, provider: str = "hubspot") -> dict[str, Any]:
    """A fresh sandbox access token of provider (password grant)."""
    async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as sandbox:
        response = await sandbox.post(
            TOKEN_PATHS[provider],
            data={"grant_type": "password", "username": USERNAME, "password": PASSWORD},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def provider_ids(stack: Stack, object_name: str) -> set[str]:
    """Every id the sandbox's HubSpot list API pages through for object_name."""
    token = (await sandbox_token(stack))["access_token"]
    ids: set[str] = set()
    after = ""
    async with httpx.AsyncClient(
        base_url=stack.endpoints["sandbox-http"], headers={"authorization": f"Bearer {token}"}
    ) as provider:
        while True:
            params = {"limit": "100", **({"after": after} if after else {})}
            page = await provider.get(f"/hubspot/crm/v3/objects/{object_name}", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            ids.update(r["id"] for r in body["results"])
            after = body.get("paging", {}).get("next", {}).get("after", "")
            if not after:
                return ids


async def one_pass_of(stack: Stack, installation_id: str, object_name: str) -> int:
    """The pages of one pass of a finished backfill: the page number it ended at."""
    temporal = await Client.connect(stack.endpoints["temporal"], namespace="ampmesh")
    backfill = temporal.get_workflow_handle(
        backfill_workflow_id(installation_id, object_name),
        result_type=backfill_read_pb2.BackfillReadOutput,
    )
    return (await backfill.result()).cursor.pages_done
