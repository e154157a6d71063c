"""The builder's setup the browser test's page installs against, per provider: a project
whose provider app is the sandbox's OAuth client, a webhook destination, an integration
deployed from an amp.yaml reading one object with required and optional fields, and the
`frontend` API key the page embeds. Also what the test reads back over REST afterwards."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.support.control_plane import (
    HOOK,
    create_api_key,
    create_project,
    create_provider_app,
    listed,
)
from tests.support.sandbox import HS_TOKEN, SF_TOKEN, bearer, password_tokens

DESTINATION = "uiHook"
TOKEN_PATHS = {"hubspot": HS_TOKEN, "salesforce": SF_TOKEN}
# The customer, as the builder's product names them to the library.
GROUP, GROUP_NAME, CONSUMER, CONSUMER_NAME = "acme", "Acme Inc", "alice", "Alice Liddell"


@dataclass(frozen=True)
class ReadObject:
    """What a manifest reads of one object: fields the customer must share, and fields the
    customer may choose (of which the test unticks and ticks some)."""

    name: str
    display: str  # how the library titles the object (the catalog's display name)
    required: tuple[str, ...]
    optional: tuple[str, ...]
    # `optionalFieldsAuto: all`: the customer may choose any field of the object.
    any_field: bool = False


@dataclass(frozen=True)
class ProviderCase:
    provider: str
    display: str  # the catalog's display name, which the library shows
    scopes: tuple[str, ...]
    read: ReadObject

    @property
    def integration(self) -> str:
        return f"ui-{self.provider}"

    def manifest(self) -> str:
        required = "".join(f"\n            - fieldName: {f}" for f in self.read.required)
        optional = "".join(f"\n            - fieldName: {f}" for f in self.read.optional)
        choices = ""
        if optional:
            choices += "\n          optionalFields:" + optional
        if self.read.any_field:
            choices += "\n          optionalFieldsAuto: all"
        return textwrap.dedent(
            f"""\
            specVersion: 1.0.0
            integrations:
              - name: {self.integration}
                displayName: {self.display} through the embedded UI
                provider: {self.provider}
                read:
                  objects:
                    - objectName: {self.read.name}
                      destination: {DESTINATION}
                      requiredFields:{{required}}{{choices}}
            """
        ).format(required=required, choices=choices)


# The fields are the ones the sandbox's records of these objects hold (services/sandbox).
HUBSPOT = ProviderCase(
    "hubspot",
    "HubSpot",
    ("crm.objects.contacts.read",),
    ReadObject("contacts", "Contacts", ("email",), ("firstname", "lastname", "phone")),
)
SALESFORCE = ProviderCase(
    "salesforce",
    "Salesforce",
    ("api", "refresh_token"),
    ReadObject("account", "Account", ("name",), ("industry", "phone", "billingcity")),
)


# HubSpot deals, choosing any field: no other test reads deals' whole field list, so a
# custom property made on the session's shared sandbox for this case disturbs none.
HUBSPOT_ANY_DEAL_FIELD = ProviderCase(
    "hubspot",
    "HubSpot",
    ("crm.objects.deals.read",),
    ReadObject("deals", "Deals", ("name",), (), any_field=True),
)


def chosen(config: dict[str, Any], object_name: str, required: tuple[str, ...]) -> set[str]:
    """The optional fields a stored config selects for object_name."""
    selected = config["content"]["read"]["objects"][object_name]["selectedFields"]
    return {name for name, on in selected.items() if on} - set(required)


@dataclass
class UiWorld:
    """One provider's project as the page sees it, and the builder's REST view of it."""

    case: ProviderCase
    project: dict[str, Any]
    frontend_key: str
    builder: httpx.AsyncClient  # the API rooted at the project, with the admin key
    integration_id: str

    def page_query(
        self,
        group: str = GROUP,
        group_name: str = GROUP_NAME,
        consumer: str = CONSUMER,
        consumer_name: str = CONSUMER_NAME,
    ) -> str:
        """The page's query string: the project, its frontend key, the integration, and
        the customer's group and user as the builder's product names them."""
        return urlencode(
            {
                "project": self.project["name"],
                "apiKey": self.frontend_key,
                "integration": self.case.integration,
                "groupRef": group,
                "groupName": group_name,
                "consumerRef": consumer,
                "consumerName": consumer_name,
            }
        )

    async def installations(self, group: str) -> list[dict[str, Any]]:
        return await listed(
            self.builder, f"/integrations/{self.integration_id}/installations", groupRef=group
        )

    async def connections(self, group: str) -> list[dict[str, Any]]:
        return await listed(self.builder, "/connections", groupRef=group)

    async def installation(self, installation_id: str) -> dict[str, Any]:
        got = await self.builder.get(
            f"/integrations/{self.integration_id}/installations/{installation_id}"
        )
        assert got.status_code == 200, got.text
        body: dict[str, Any] = got.json()
        return body


async def provider_labels(sandbox_http: str, case: ProviderCase) -> dict[str, str]:
    """Each field's label as the provider itself describes it (the sandbox's HubSpot
    properties or Salesforce describe, asked directly, not through the mesh), keyed by the
    field name a manifest uses."""
    async with httpx.AsyncClient(base_url=sandbox_http, timeout=20) as http:
        token = (await password_tokens(http, TOKEN_PATHS[case.provider]))["access_token"]
        if case.provider == "hubspot":
            got = await http.get(
                f"/hubspot/crm/v3/properties/{case.read.name}", headers=bearer(token)
            )
            assert got.status_code == 200, got.text
            return {p["name"]: p["label"] for p in got.json()["results"]}
        got = await http.get(
            f"/salesforce/services/data/v59.0/sobjects/{case.read.name}/describe",
            headers=bearer(token),
        )
        assert got.status_code == 200, got.text
        # The reference names Salesforce fields in lower case (`billingcity`).
        return {f["name"].lower(): f["label"] for f in got.json()["fields"]}


async def make_world(admin: httpx.AsyncClient, case: ProviderCase) -> UiWorld:
    """The project, provider app, destination, integration and frontend key for case;
    admin is a client at the API's root with the org admin key. The world's builder client
    shares admin's connection settings, rooted at the project (the caller closes it)."""
    project = await create_project(admin, f"ui-{case.provider}", "Embedded UI")
    await create_provider_app(admin, project["name"], case.provider, list(case.scopes))
    builder = httpx.AsyncClient(
        base_url=f"{str(admin.base_url).rstrip('/')}/v1/projects/{project['name']}",
        headers=admin.headers,
        timeout=admin.timeout,
    )
    # A webhook nobody listens on: the installation reads nothing by itself (no schedule,
    # no backfill in the manifest), so nothing is ever sent to it.
    made = await builder.post(
        "/destinations", json={"name": DESTINATION, "type": "webhook", "metadata": {"url": HOOK}}
    )
    assert made.status_code == 201, made.text
    deployed = await builder.put("/integrations:batch", json={"sourceYaml": case.manifest()})
    assert deployed.status_code in (200, 201), deployed.text
    integrations = await listed(builder, "/integrations")
    integration = next(i for i in integrations if i["name"] == case.integration)
    key = await create_api_key(admin, project["name"], ["frontend"], label="embedded ui")
    return UiWorld(case, project, key, builder, integration["id"])
