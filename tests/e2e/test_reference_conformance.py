"""Every platform operation we serve answers in the shape the reference documents.

One walk over the platform API, as a builder would make it: a project, its keys, provider
app, destination, topics and routes, integrations, connection, installation, operations,
and the deletes at the end. Each step is a real call through the edge with valid inputs;
its response must have the reference's documented success status, and its body must
validate against the reference's schema for that status (tests/e2e/conformance.py).

An operation whose RPC answers 501 is not built yet: it is counted, not failed, so the walk
grows by itself as services are built. A step that needs what an unbuilt step makes (an
installation needs an integration) counts as not built too. Every operation our contracts
bind on the api host has a step here; a new binding without one fails the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e import conformance
from tests.support.bindings import bindings
from tests.support.control_plane import admin_client, database_url, new_rsa_key, spki_pem
from tests.support.reference import operations
from tests.support.sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

P = "/projects/{projectIdOrName}"
INTEGRATION = f"{P}/integrations/{{integrationId}}"
INSTALLATION = f"{INTEGRATION}/installations/{{installationId}}"
PROVIDER = "salesforce"
OBJECT = "account"

# Operations whose documented response cannot validate because the reference's own
# documentation is inconsistent with it (or our contract departs from it on purpose), each
# with the reason. Anything else that does not validate is a defect to fix, not to list.
KNOWN_DIVERGENCES: dict[str, str] = {
    f"POST /v1{P}/integrations": (
        "the reference documents its 201 with an empty content map (no body); our contract "
        "answers 201 with the created integration, as every other create does, which a "
        "client ignoring the body does not notice"
    ),
    f"POST /v1{INTEGRATION}/revisions": (
        "the reference documents its 201 with an empty content map (no body); our contract "
        "answers 201 with the created revision"
    ),
}

# Single schema errors that a later issue removes, each with its reason. Only the exact
# error is forgiven: any other problem of the same operation still fails.
KNOWN_GAPS: dict[str, str] = {}


def unexcused(problems: list[str]) -> list[str]:
    return [p for p in problems if not any(p.endswith(gap) for gap in KNOWN_GAPS)]


class Blocked(Exception):
    """A step needs something an earlier step should have made."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass
class World:
    """What the walk has made so far, and how to reach the platform."""

    stack: Stack
    http: httpx.AsyncClient
    db: asyncpg.Pool
    tag: str
    made: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        if key not in self.made:
            raise Blocked(key)
        return self.made[key]

    @property
    def project(self) -> str:
        return f"/v1/projects/{self['project']}"

    @property
    def integration(self) -> str:
        return f"{self.project}/integrations/{self['integration']}"

    @property
    def group_ref(self) -> str:
        return f"group-{self.tag}"


Call = Callable[[World], Awaitable[httpx.Response]]
Keeps = Mapping[str, Callable[[Any], Any]]


@dataclass(frozen=True)
class Step:
    method: str
    path: str  # the reference's template, less /v1
    call: Call
    keeps: Keeps  # what a successful answer gives later steps: key -> how to read it

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


STEPS: list[Step] = []


def step(method: str, path: str, keeps: Keeps | None = None) -> Callable[[Call], Call]:
    def register(call: Call) -> Call:
        STEPS.append(Step(method, path, call, keeps or {}))
        return call

    return register


def manifest(world: World, name: str, schedule: str = "*/30 * * * *") -> str:
    """amp.yaml with one integration; it reads into the walk's destination when there is
    one (a read needs a destination to deliver to). No write section: ampmesh refuses
    actions it has no connector for (services/domain/catalog/actions.py)."""
    read = ""
    if "destinationName" in world.made:
        read = f"""
    read:
      objects:
        - objectName: {OBJECT}
          destination: {world.made["destinationName"]}
          schedule: "{schedule}"
          requiredFields:
            - fieldName: name
          optionalFieldsAuto: all"""
    return f"""specVersion: 1.0.0
integrations:
  - name: {name}
    displayName: Conformance
    provider: {PROVIDER}
    proxy:
      enabled: true{read}
"""


def _id(body: Any) -> Any:
    return body["id"]


# --- the provider catalog


@step("GET", "/providers")
async def list_providers(w: World) -> httpx.Response:
    return await w.http.get("/v1/providers")


@step("GET", "/providers/{provider}")
async def get_provider(w: World) -> httpx.Response:
    return await w.http.get(f"/v1/providers/{PROVIDER}")


# --- orgs


@step("GET", "/orgs/{orgId}", keeps={"orgLabel": lambda body: body["label"]})
async def get_org(w: World) -> httpx.Response:
    return await w.http.get(f"/v1/orgs/{w.stack.org_id}")


@step("PATCH", "/orgs/{orgId}")
async def update_org(w: World) -> httpx.Response:
    # The session's org is shared: "update" it to the label it has.
    return await w.http.patch(
        f"/v1/orgs/{w.stack.org_id}",
        json={"updateMask": ["label"], "org": {"label": w["orgLabel"]}},
    )


@step("POST", "/orgs")
async def create_org(w: World) -> httpx.Response:
    return await w.http.post("/v1/orgs", json={"label": f"conformance-{w.tag}"})


# --- projects


@step("POST", "/projects", keeps={"project": _id})
async def create_project(w: World) -> httpx.Response:
    return await w.http.post(
        "/v1/projects", json={"name": f"conformance-{w.tag}", "appName": "Conformance"}
    )


@step("GET", "/projects")
async def list_projects(w: World) -> httpx.Response:
    return await w.http.get("/v1/projects")


@step("GET", P)
async def get_project(w: World) -> httpx.Response:
    return await w.http.get(w.project)


@step("PATCH", P)
async def update_project(w: World) -> httpx.Response:
    return await w.http.patch(
        w.project, json={"updateMask": ["appName"], "project": {"appName": "Conformance 2"}}
    )


# --- API keys


@step("POST", f"{P}/api-keys", keeps={"apiKey": lambda body: body["key"]})
async def create_api_key(w: World) -> httpx.Response:
    return await w.http.post(
        f"{w.project}/api-keys", json={"label": "conformance", "scopes": ["full"]}
    )


@step("GET", f"{P}/api-keys")
async def list_api_keys(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/api-keys")


@step("GET", f"{P}/api-keys/{{apiKey}}")
async def get_api_key(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/api-keys/{w['apiKey']}")


@step("PATCH", f"{P}/api-keys/{{apiKey}}")
async def update_api_key(w: World) -> httpx.Response:
    return await w.http.patch(
        f"{w.project}/api-keys/{w['apiKey']}",
        json={"updateMask": ["label"], "apiKey": {"label": "conformance 2"}},
    )


# --- JWT keys


@step("POST", f"{P}/jwt-keys", keeps={"jwtKey": lambda body: body["kid"]})
async def create_jwt_key(w: World) -> httpx.Response:
    return await w.http.post(
        f"{w.project}/jwt-keys",
        json={
            "label": "conformance",
            "algorithm": "RS256",
            "publicKeyPem": spki_pem(new_rsa_key().public_key()),
        },
    )


@step("GET", f"{P}/jwt-keys")
async def list_jwt_keys(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/jwt-keys")


@step("GET", f"{P}/jwt-keys/{{keyId}}")
async def get_jwt_key(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/jwt-keys/{w['jwtKey']}")


@step("PATCH", f"{P}/jwt-keys/{{keyId}}")
async def update_jwt_key(w: World) -> httpx.Response:
    return await w.http.patch(
        f"{w.project}/jwt-keys/{w['jwtKey']}",
        json={"updateMask": ["label"], "jwtKey": {"label": "conformance 2"}},
    )


# --- provider apps


@step("POST", f"{P}/provider-apps", keeps={"providerApp": _id})
async def create_provider_app(w: World) -> httpx.Response:
    return await w.http.post(
        f"{w.project}/provider-apps",
        json={
            "provider": PROVIDER,
            "clientId": "conformance-client",
            "clientSecret": "conformance-secret",
            "scopes": ["api", "refresh_token"],
        },
    )


@step("GET", f"{P}/provider-apps")
async def list_provider_apps(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/provider-apps")


@step("PATCH", f"{P}/provider-apps/{{providerAppId}}")
async def update_provider_app(w: World) -> httpx.Response:
    return await w.http.patch(
        f"{w.project}/provider-apps/{w['providerApp']}",
        json={"updateMask": ["scopes"], "providerApp": {"scopes": ["api"]}},
    )


# --- destinations, topics and routes


@step(
    "POST",
    f"{P}/destinations",
    keeps={"destination": _id, "destinationName": lambda body: body["name"]},
)
async def create_destination(w: World) -> httpx.Response:
    # The local mesh delivers to loopback over http; nothing needs to listen there.
    return await w.http.post(
        f"{w.project}/destinations",
        json={
            "name": "conformance-hook",
            "type": "webhook",
            "metadata": {
                "url": "http://127.0.0.1:9/conformance",
                "headers": {"X-Conformance": "1"},
            },
        },
    )


@step("GET", f"{P}/destinations")
async def list_destinations(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/destinations")


@step("GET", f"{P}/destinations/{{destination}}")
async def get_destination(w: World) -> httpx.Response:
    return await w.http.get(
        f"{w.project}/destinations/{w['destinationName']}", params={"includeSecrets": "true"}
    )


@step("PATCH", f"{P}/destinations/{{destination}}")
async def update_destination(w: World) -> httpx.Response:
    return await w.http.patch(
        f"{w.project}/destinations/{w['destinationName']}",
        json={
            "updateMask": ["metadata.headers"],
            "destination": {"metadata": {"headers": {"X-Conformance": "2"}}},
        },
    )


@step("POST", f"{P}/topics", keeps={"topic": _id})
async def create_topic(w: World) -> httpx.Response:
    return await w.http.post(f"{w.project}/topics", json={"name": "conformance-topic"})


@step("GET", f"{P}/topics")
async def list_topics(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/topics")


@step("PATCH", f"{P}/topics/{{topicId}}")
async def update_topic(w: World) -> httpx.Response:
    return await w.http.patch(
        f"{w.project}/topics/{w['topic']}", json={"name": "conformance-topic-2"}
    )


@step("POST", f"{P}/notification-event-topic-routes", keeps={"eventRoute": _id})
async def create_event_topic_route(w: World) -> httpx.Response:
    return await w.http.post(
        f"{w.project}/notification-event-topic-routes",
        json={"eventType": "installation.created", "topicId": w["topic"]},
    )


@step("GET", f"{P}/notification-event-topic-routes")
async def list_event_topic_routes(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/notification-event-topic-routes")


@step("POST", f"{P}/topic-destination-routes", keeps={"destinationRoute": _id})
async def create_topic_destination_route(w: World) -> httpx.Response:
    return await w.http.post(
        f"{w.project}/topic-destination-routes",
        json={"topicId": w["topic"], "destinationId": w["destination"]},
    )


@step("GET", f"{P}/topic-destination-routes")
async def list_topic_destination_routes(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/topic-destination-routes")


# --- integrations and revisions


@step("PUT", f"{P}/integrations:batch", keeps={"integration": lambda body: body[0]["id"]})
async def batch_upsert_integrations(w: World) -> httpx.Response:
    return await w.http.put(
        f"{w.project}/integrations:batch", json={"sourceYaml": manifest(w, f"sync-{w.tag}")}
    )


@step("POST", f"{P}/integrations", keeps={"spareIntegration": _id})
async def create_integration(w: World) -> httpx.Response:
    name = f"spare-{w.tag}"
    return await w.http.post(
        f"{w.project}/integrations",
        json={
            "name": name,
            "provider": PROVIDER,
            "latestRevision": {
                "specVersion": "1.0.0",
                "content": {"name": name, "provider": PROVIDER, "proxy": {"enabled": True}},
            },
        },
    )


@step("GET", f"{P}/integrations")
async def list_integrations(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/integrations")


@step("GET", f"{P}/integrations/{{integrationIdOrName}}")
async def get_integration(w: World) -> httpx.Response:
    return await w.http.get(w.integration)


@step("POST", f"{INTEGRATION}/revisions", keeps={"revision": _id})
async def create_revision(w: World) -> httpx.Response:
    return await w.http.post(
        f"{w.integration}/revisions",
        json={"sourceYaml": manifest(w, f"sync-{w.tag}", schedule="*/20 * * * *")},
    )


# --- connections and the connect flows


@step("POST", f"{P}/connections:generate", keeps={"connection": _id})
async def generate_connection(w: World) -> httpx.Response:
    # Real tokens of the stack's sandbox Salesforce: the hydrate and object-metadata
    # steps call the provider through this connection.
    async with httpx.AsyncClient(base_url=w.stack.endpoints["sandbox-http"]) as sandbox:
        issued = await sandbox.post(
            "/salesforce/services/oauth2/token",
            data={"grant_type": "password", "username": USERNAME, "password": PASSWORD},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
    assert issued.status_code == 200, issued.text
    tokens = issued.json()
    expires = datetime.now(UTC) + timedelta(seconds=int(tokens["expires_in"]))
    return await w.http.post(
        f"{w.project}/connections:generate",
        json={
            "provider": PROVIDER,
            "groupRef": w.group_ref,
            "consumerRef": f"user-{w.tag}",
            "providerWorkspaceRef": "acme",
            "oauth2AuthorizationCode": {
                "accessToken": {
                    "token": tokens["access_token"],
                    "expiresAt": expires.isoformat().replace("+00:00", "Z"),
                },
                "refreshToken": {"token": tokens["refresh_token"]},
                "scopes": ["api", "refresh_token"],
            },
        },
    )


@step("GET", f"{P}/connections")
async def list_connections(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/connections")


@step("GET", f"{P}/connections/{{connectionId}}")
async def get_connection(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/connections/{w['connection']}")


@step("PATCH", f"{P}/connections/{{connectionId}}")
async def update_connection(w: World) -> httpx.Response:
    return await w.http.patch(
        f"{w.project}/connections/{w['connection']}",
        json={
            "updateMask": ["providerWorkspaceRef"],
            "connection": {"providerWorkspaceRef": "acme"},
        },
    )


@step("PATCH", f"{P}/connections/{{connectionId}}:oauth-update")
async def oauth_update(w: World) -> httpx.Response:
    return await w.http.patch(f"{w.project}/connections/{w['connection']}:oauth-update")


@step("POST", "/oauth-connect")
async def oauth_connect(w: World) -> httpx.Response:
    return await w.http.post(
        "/v1/oauth-connect",
        json={
            "projectIdOrName": w["project"],
            "provider": PROVIDER,
            "groupRef": w.group_ref,
            "consumerRef": f"user-{w.tag}",
            "providerWorkspaceRef": "acme",
        },
    )


@step("POST", "/custom-auth/connect")
async def custom_auth_connect(w: World) -> httpx.Response:
    return await w.http.post(
        "/v1/custom-auth/connect",
        json={
            "projectIdOrName": w["project"],
            "provider": "devrev",
            "groupRef": w.group_ref,
            "consumerRef": f"user-{w.tag}",
            "customAuth": {"apiKey": "conformance"},
        },
    )


@step("GET", f"{INTEGRATION}/revisions/{{revisionId}}:hydrate")
async def get_hydrated_revision(w: World) -> httpx.Response:
    return await w.http.get(
        f"{w.integration}/revisions/{w['revision']}:hydrate",
        params={"connectionId": w["connection"]},
    )


# --- installations


@step("POST", f"{INTEGRATION}/installations", keeps={"installation": _id})
async def create_installation(w: World) -> httpx.Response:
    content: dict[str, Any] = {"provider": PROVIDER}
    if "destinationName" in w.made:
        content["read"] = {
            "objects": {
                OBJECT: {
                    "objectName": OBJECT,
                    "schedule": "*/30 * * * *",
                    "destination": w.made["destinationName"],
                    "selectedFields": {"name": True},
                }
            }
        }
    body: dict[str, Any] = {
        "groupRef": w.group_ref,
        "connectionId": w["connection"],
        "config": {"content": content},
    }
    return await w.http.post(f"{w.integration}/installations", json=body)


@step("GET", f"{INTEGRATION}/installations")
async def list_installations(w: World) -> httpx.Response:
    return await w.http.get(f"{w.integration}/installations", params={"groupRef": w.group_ref})


@step("GET", INSTALLATION)
async def get_installation(w: World) -> httpx.Response:
    return await w.http.get(f"{w.integration}/installations/{w['installation']}")


@step("PATCH", INSTALLATION)
async def update_installation(w: World) -> httpx.Response:
    return await w.http.patch(
        f"{w.integration}/installations/{w['installation']}",
        json={
            "updateMask": ["config.createdBy"],
            "installation": {"config": {"createdBy": "api:conformance"}},
        },
    )


@step("GET", f"{P}/installations")
async def list_installations_for_project(w: World) -> httpx.Response:
    return await w.http.get(f"{w.project}/installations")


@step("PATCH", f"{INTEGRATION}/objects/{{objectName}}/config-content")
async def patch_object_config_content(w: World) -> httpx.Response:
    return await w.http.patch(
        f"{w.integration}/objects/{OBJECT}/config-content",
        json={
            "installationId": w["installation"],
            "action": "read",
            "changes": [{"op": "replace", "path": "/schedule", "value": "*/45 * * * *"}],
        },
    )


# --- object metadata


@step("GET", f"{INTEGRATION}/objects/{{objectName}}/metadata")
async def get_object_metadata_for_installation(w: World) -> httpx.Response:
    return await w.http.get(
        f"{w.integration}/objects/{OBJECT}/metadata", params={"groupRef": w.group_ref}
    )


@step("GET", f"{P}/providers/{{provider}}/objects/{{objectName}}/metadata")
async def get_object_metadata_for_connection(w: World) -> httpx.Response:
    return await w.http.get(
        f"{w.project}/providers/{PROVIDER}/objects/{OBJECT}/metadata",
        params={"groupRef": w.group_ref},
    )


_FIELDS = {
    "groupRef": "",
    "fields": {
        OBJECT: [
            {"fieldName": "Conformance__c", "displayName": "Conformance", "valueType": "string"}
        ]
    },
}


@step("PUT", f"{INTEGRATION}/object-metadata")
async def upsert_metadata_for_installation(w: World) -> httpx.Response:
    return await w.http.put(
        f"{w.integration}/object-metadata", json={**_FIELDS, "groupRef": w.group_ref}
    )


@step("PUT", f"{P}/providers/{{provider}}/object-metadata")
async def upsert_metadata_for_connection(w: World) -> httpx.Response:
    return await w.http.put(
        f"{w.project}/providers/{PROVIDER}/object-metadata",
        json={**_FIELDS, "groupRef": w.group_ref},
    )


# --- operations


async def operation_rows(w: World) -> tuple[str, str, str]:
    """(integration, installation, operation) ids of an operation with logs and backfill
    progress, stored as scribe stores them (the walk waits for no read), for the walk's
    installation or, while installations are not built, for one stored the same way."""
    if "operation" not in w.made:
        project = uuid.UUID(w["project"])
        integration = w.made.get("integration") or str(
            await w.db.fetchval(
                "INSERT INTO integrations (project_id, name, provider) VALUES ($1, $2, $3) "
                "RETURNING id",
                project,
                f"stored-{w.tag}",
                PROVIDER,
            )
        )
        installation = w.made.get("installation") or str(
            await w.db.fetchval(
                "INSERT INTO installations (project_id, integration_id, group_ref) "
                "VALUES ($1, $2, $3) RETURNING id",
                project,
                uuid.UUID(integration),
                w.group_ref,
            )
        )
        operation = uuid.uuid4()
        started = datetime(2025, 2, 13, 10, 0, tzinfo=UTC)
        await w.db.execute(
            "INSERT INTO operations (id, project_id, integration_id, installation_id, "
            "config_id, action_type, status, result, metadata, created_at) "
            "VALUES ($1, $2, $3, $4, $5, 'read', 'in_progress', '', $6::jsonb, $7)",
            operation,
            project,
            uuid.UUID(integration),
            uuid.UUID(installation),
            uuid.uuid4(),
            json.dumps(
                {
                    "objects": [OBJECT],
                    "retry": {"attempts": 1, "lastAttempt": "2025-02-13T10:00:00Z"},
                    "progress": {
                        "installationId": installation,
                        "objectName": OBJECT,
                        "operationId": str(operation),
                        "recordsProcessed": 1250,
                        "recordsEstimatedTotal": 5000,
                    },
                }
            ),
            started,
        )
        await w.db.execute(
            "INSERT INTO operation_logs (project_id, operation_id, logged_at, severity, message) "
            "VALUES ($1, $2, $3, 'INFO', $4::jsonb)",
            project,
            operation,
            started,
            json.dumps({"msg": "read started", "details": {"object": OBJECT}}),
        )
        await w.db.execute(
            "INSERT INTO backfill_progress (operation_id, object_name, project_id, "
            "installation_id, records_processed, records_estimated_total, created_at) "
            "VALUES ($1, $2, $3, $4, 1250, 5000, $5)",
            operation,
            OBJECT,
            project,
            uuid.UUID(installation),
            started,
        )
        w.made["operation"] = (integration, installation, str(operation))
    made: tuple[str, str, str] = w.made["operation"]
    return made


@step("GET", f"{INSTALLATION}/operations")
async def list_operations(w: World) -> httpx.Response:
    integration, installation, _ = await operation_rows(w)
    return await w.http.get(
        f"{w.project}/integrations/{integration}/installations/{installation}/operations",
        params={"pageSize": 10},
    )


@step("GET", f"{INSTALLATION}/objects/{{objectName}}/backfill-progress")
async def get_backfill_progress(w: World) -> httpx.Response:
    integration, installation, _ = await operation_rows(w)
    return await w.http.get(
        f"{w.project}/integrations/{integration}/installations/{installation}"
        f"/objects/{OBJECT}/backfill-progress"
    )


@step("GET", f"{P}/operations/{{operationId}}")
async def get_operation(w: World) -> httpx.Response:
    _, _, operation = await operation_rows(w)
    return await w.http.get(f"{w.project}/operations/{operation}")


@step("GET", f"{P}/operations/{{operationId}}/logs")
async def list_operation_logs(w: World) -> httpx.Response:
    _, _, operation = await operation_rows(w)
    return await w.http.get(f"{w.project}/operations/{operation}/logs")


# --- deletes, in the reverse order of what depends on what


@step("DELETE", f"{P}/topic-destination-routes/{{routeId}}")
async def delete_topic_destination_route(w: World) -> httpx.Response:
    return await w.http.delete(f"{w.project}/topic-destination-routes/{w['destinationRoute']}")


@step("DELETE", f"{P}/notification-event-topic-routes/{{routeId}}")
async def delete_event_topic_route(w: World) -> httpx.Response:
    return await w.http.delete(f"{w.project}/notification-event-topic-routes/{w['eventRoute']}")


@step("DELETE", INSTALLATION)
async def delete_installation(w: World) -> httpx.Response:
    return await w.http.delete(f"{w.integration}/installations/{w['installation']}")


@step("DELETE", f"{P}/connections/{{connectionId}}")
async def delete_connection(w: World) -> httpx.Response:
    # Deleting the installation took its connection with it, as the reference does when
    # no other installation uses one: this deletes another connection of the group.
    gone = await w.http.get(f"{w.project}/connections/{w['connection']}")
    assert gone.status_code == 404, f"the uninstalled connection stayed: {gone.text}"
    other = await w.http.post(
        f"{w.project}/connections:generate",
        json={
            "provider": PROVIDER,
            "groupRef": w.group_ref,
            "consumerRef": f"user-{w.tag}",
            "providerWorkspaceRef": "acme",
            "oauth2AuthorizationCode": {"accessToken": {"token": "spare-token"}},
        },
    )
    assert other.status_code == 201, other.text
    return await w.http.delete(f"{w.project}/connections/{other.json()['id']}")


@step("DELETE", f"{P}/integrations/{{integrationIdOrName}}")
async def delete_integration(w: World) -> httpx.Response:
    return await w.http.delete(f"{w.project}/integrations/{w['spareIntegration']}")


@step("DELETE", f"{P}/topics/{{topicId}}")
async def delete_topic(w: World) -> httpx.Response:
    return await w.http.delete(f"{w.project}/topics/{w['topic']}")


@step("DELETE", f"{P}/destinations/{{destination}}")
async def delete_destination(w: World) -> httpx.Response:
    return await w.http.delete(f"{w.project}/destinations/{w['destinationName']}")


@step("DELETE", f"{P}/provider-apps/{{providerAppId}}")
async def delete_provider_app(w: World) -> httpx.Response:
    return await w.http.delete(f"{w.project}/provider-apps/{w['providerApp']}")


@step("DELETE", f"{P}/jwt-keys/{{keyId}}")
async def delete_jwt_key(w: World) -> httpx.Response:
    return await w.http.delete(f"{w.project}/jwt-keys/{w['jwtKey']}")


@step("DELETE", f"{P}/api-keys/{{apiKey}}")
async def delete_api_key(w: World) -> httpx.Response:
    return await w.http.delete(f"{w.project}/api-keys/{w['apiKey']}")


# --- the walk


@dataclass
class Outcome:
    operation: str  # as the reference spells it
    built: bool
    problems: list[str] = field(default_factory=list)
    why: str = ""  # not built: why not


def success_status(operation: str) -> int:
    method, path = operation.split(" ", 1)
    responses = conformance.find_operation(method, path).spec.get("responses", {})
    return min(int(code) for code in map(str, responses) if code.startswith("2"))


def problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        issues = "; ".join(f"{i.get('name')}: {i.get('detail')}" for i in body.get("issues", []))
        return f"{body.get('detail', '')}{f' ({issues})' if issues else ''}"[:400]
    return str(body)[:200]


async def walk(world: World) -> list[Outcome]:
    outcomes: list[Outcome] = []
    # For each key a step makes: whether that step was built.
    makers_built: dict[str, bool] = {}
    for current in STEPS:
        operation = conformance.find_operation(current.method, current.path)
        name = f"{operation.method} {operation.path}"
        try:
            response = await current.call(world)
        except Blocked as blocked:
            built = makers_built.get(blocked.key, False)
            outcomes.append(
                Outcome(
                    name,
                    built=built,
                    problems=[f"needs {blocked.key}, which its step did not make"] if built else [],
                    why=f"needs {blocked.key}, not built yet",
                )
            )
            for key in current.keeps:
                makers_built[key] = built
            continue
        if response.status_code == 501:
            outcomes.append(Outcome(name, built=False, why=problem_detail(response)))
            for key in current.keeps:
                makers_built[key] = False
            continue
        for key in current.keeps:
            makers_built[key] = True
        outcome = Outcome(name, built=True)
        expected = success_status(name)
        if response.status_code != expected:
            outcome.problems.append(
                f"answered {response.status_code}, not {expected}: {problem_detail(response)}"
            )
        else:
            outcome.problems += conformance.check(response, current.method, current.path).errors
            try:
                body = response.json() if response.content and current.keeps else None
                for key, read in current.keeps.items():
                    world.made[key] = read(body)
            except (ValueError, LookupError, TypeError) as missing:
                outcome.problems.append(f"the answer lacks what later steps need: {missing!r}")
        outcomes.append(outcome)
    return outcomes


@pytest.fixture
async def db(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url(stack), min_size=1, max_size=2) as pool:
        yield pool


def test_every_bound_platform_operation_has_a_step() -> None:
    """A new binding on the api host needs a step here, or the walk would miss it."""
    bound = {b.key for b in bindings() if b.host == "api"}
    reference = {op.key: op for op in operations() if op.host == "api"}
    stepped = {conformance.find_operation(s.method, s.path).key for s in STEPS}
    missing = sorted(str(reference[k]) for k in (bound & reference.keys()) - stepped)
    assert not missing, f"bound operations without a conformance step: {missing}"
    assert stepped <= bound, f"steps for operations we do not bind: {sorted(stepped - bound)}"
    assert len(stepped) == len(STEPS), "two steps for one operation"


async def test_every_built_platform_operation_answers_as_the_reference_documents(
    stack: Stack, db: asyncpg.Pool
) -> None:
    async with admin_client(stack) as http:
        outcomes = await walk(World(stack, http, db, uuid.uuid4().hex[:10]))

    built = [o for o in outcomes if o.built]
    gaps = sorted({o.operation for o in built if o.problems and not unexcused(o.problems)})
    for outcome in built:
        outcome.problems = unexcused(outcome.problems)
    failing = [o for o in built if o.problems and o.operation not in KNOWN_DIVERGENCES]
    excused = [o for o in built if o.problems and o.operation in KNOWN_DIVERGENCES]
    report = [
        f"reference conformance: {len(built) - len(failing) - len(excused) - len(gaps)} of "
        f"{len(built)} operations conform ({len(gaps)} but for a known gap, "
        f"{len(excused)} known divergences, "
        f"{len(outcomes) - len(built)} of {len(outcomes)} not built yet)"
    ]
    report += [f"  FAILS {o.operation}: {o.problems[0]}" for o in failing]
    report += [f"  EXCUSED {o.operation}: {KNOWN_DIVERGENCES[o.operation]}" for o in excused]
    report += [f"  conforms but for a known gap (see KNOWN_GAPS): {op}" for op in gaps]
    report += [f"  not built: {o.operation} ({o.why})" for o in outcomes if not o.built]
    print("\n".join(report))

    stale = [o.operation for o in built if o.operation in KNOWN_DIVERGENCES and not o.problems]
    assert not failing, "\n".join(report)
    assert not stale, f"these conform now; take them out of KNOWN_DIVERGENCES: {stale}"
    # The operations service is built: the walk must at least reach it.
    assert {f"GET /v1{P}/operations/{{operationId}}"} <= {o.operation for o in built}
