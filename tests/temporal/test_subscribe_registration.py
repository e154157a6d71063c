"""SyncSubscriptions on the session stack's Temporal, PostgreSQL and Pub/Sub emulator,
registering through the real provider clients at the provider sandbox (HubSpot's webhooks
API, Salesforce's Tooling sObjects), with the real RegistrationActivities on a test task
queue. The token-manager stands in as a stub handing out sandbox access tokens (and
recording DeleteCredentials); the sandbox's faults on FAULT_ENDPOINT_SUBSCRIPTIONS play
a provider failing. The retry window is shortened to seconds so a failure for good is
reached quickly; what is checked is what the provider holds afterwards (the sandbox's
ListWebhookSubscriptions and its Tooling query), the `subscriptions` row and the
notification.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2
from ampmesh.token.v1 import token_manager_pb2 as tm
from ampmesh.workflows.v1 import subscriptions_pb2
from google.protobuf import empty_pb2
from temporalio.client import Client

from services.domain.catalog import load_catalog
from services.domain.catalog.sandbox import point_at_sandbox
from services.domain.connectors import registry
from services.domain.connectors.http import provider_session
from services.domain.subscribe_names import (
    SYNC_WORKFLOW,
    installation_webhook_path,
    integration_webhook_path,
    sync_workflow_id,
)
from services.temporal.reads.publish import Publisher
from services.temporal.subscribe.registration import change_of
from services.temporal.subscribe.registration_activities import (
    APP_ID_FIELD,
    RegistrationActivities,
    relay_name,
)
from services.temporal.subscribe.registration_sweep import sweep_once
from services.temporal.worker import subscribe_worker
from tests.support.reads import Watch
from tests.support.sandbox import HS, HS_TOKEN, SF, SF_TOKEN, controlling, password_tokens
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

PUBLIC = "http://127.0.0.1:9"
WINDOW = timedelta(seconds=6)


class Tokens:
    """The token-manager: a sandbox access token per connection; DeleteCredentials
    recorded."""

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.deleted: list[str] = []

    async def GetToken(self, request: tm.GetTokenRequest, **options: Any) -> Any:
        return tm.GetTokenResponse(
            token=tm.AccessToken(token=self.tokens[request.connection_id], token_type="Bearer")
        )

    async def DeleteCredentials(self, request: tm.DeleteCredentialsRequest, **options: Any) -> Any:
        self.deleted.append(request.connection_id)
        return empty_pb2.Empty()


@dataclass
class Installed:
    project_id: str
    integration_id: str
    installation_id: str
    connection_id: str
    provider: str
    revision_id: Any
    change: int = 1


@dataclass
class World:
    stack: Stack
    temporal: Client
    task_queue: str
    pool: asyncpg.Pool
    control: Any
    tokens: Tokens
    notifications: Watch
    app_id: str
    api_key: str
    sandbox_tokens: dict[str, str] = field(default_factory=dict)

    async def project(self, provider: str, *, app: bool = True) -> str:
        project = str(
            await self.pool.fetchval(
                "INSERT INTO projects (org_id, name, app_name) VALUES ($1, $2, 'subscribe') "
                "RETURNING id::text",
                uuid.UUID(self.stack.org_id),
                f"subscribe-{uuid.uuid4().hex[:10]}",
            )
        )
        if app:
            params = {"appId": self.app_id, "developerApiKey": self.api_key}
            await self.pool.execute(
                "INSERT INTO provider_apps (project_id, provider, client_id, "
                "client_secret_sealed, client_secret_key_id, metadata) "
                "VALUES ($1::uuid, $2, 'sandbox-client', '\\x00'::bytea, 'test', $3::jsonb)",
                project,
                provider,
                json.dumps({"providerParams": params} if provider == "hubspot" else {}),
            )
        return project

    async def integration(self, project: str, provider: str, objects: list[str]) -> tuple[str, Any]:
        integration = str(
            await self.pool.fetchval(
                "INSERT INTO integrations (project_id, name, provider) "
                "VALUES ($1::uuid, $2, $3) RETURNING id::text",
                project,
                f"crm-{uuid.uuid4().hex[:6]}",
                provider,
            )
        )
        revision = {
            "name": "crm",
            "provider": provider,
            "read": {"objects": [{"objectName": o, "destination": "hooks"} for o in objects]},
            "subscribe": {
                "objects": [
                    {"objectName": o, "destination": "hooks", "inheritFieldsAndMapping": True}
                    for o in objects
                ]
            },
        }
        revision_id = await self.pool.fetchval(
            "INSERT INTO revisions (integration_id, spec_version, content) "
            "VALUES ($1::uuid, '1.0.0', $2::jsonb) RETURNING id",
            integration,
            json.dumps(revision),
        )
        await self.pool.execute(
            "UPDATE integrations SET latest_revision_id = $1 WHERE id = $2::uuid",
            revision_id,
            integration,
        )
        return integration, revision_id

    async def install(
        self,
        project: str,
        integration: str,
        revision_id: Any,
        provider: str,
        subscribe: dict[str, Any],
        read: dict[str, Any] | None = None,
    ) -> Installed:
        group = f"g-{uuid.uuid4().hex[:8]}"
        connection = str(uuid.uuid4())
        await self.pool.execute(
            "INSERT INTO connections (id, project_id, provider, group_ref, group_name, "
            "consumer_ref, consumer_name, auth_scheme) VALUES ($1::uuid, $2::uuid, $3, $4, "
            "'Group', 'c1', 'Consumer 1', 'oauth2/authorizationCode')",
            connection,
            project,
            provider,
            group,
        )
        self.tokens.tokens[connection] = self.sandbox_tokens[provider]
        installation = str(
            await self.pool.fetchval(
                "INSERT INTO installations (project_id, integration_id, group_ref, group_name, "
                "connection_id) VALUES ($1::uuid, $2::uuid, $3, 'Group', $4::uuid) "
                "RETURNING id::text",
                project,
                integration,
                group,
                connection,
            )
        )
        installed = Installed(project, integration, installation, connection, provider, revision_id)
        await self.configure(installed, subscribe, read, first=True)
        return installed

    async def configure(
        self,
        installed: Installed,
        subscribe: dict[str, Any],
        read: dict[str, Any] | None = None,
        *,
        first: bool = False,
    ) -> None:
        """Save a config and mark the row pending under a new change, as the api does."""
        content = {
            "provider": installed.provider,
            "read": {"objects": read or {}},
            "subscribe": {"objects": subscribe},
        }
        await self.pool.execute(
            "INSERT INTO configs (installation_id, revision_id, content) "
            "VALUES ($1::uuid, $2, $3::jsonb)",
            installed.installation_id,
            installed.revision_id,
            json.dumps(content),
        )
        if first:
            await self.pool.execute(
                "INSERT INTO subscriptions (installation_id, project_id, integration_id, "
                "provider, connection_id) VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::uuid)",
                installed.installation_id,
                installed.project_id,
                installed.integration_id,
                installed.provider,
                installed.connection_id,
            )
        else:
            installed.change += 1
            await self.pool.execute(
                "UPDATE subscriptions SET status = 'pending', change = $2, updated_at = now() "
                "WHERE installation_id = $1::uuid",
                installed.installation_id,
                installed.change,
            )

    async def uninstall(self, installed: Installed) -> None:
        """As the api deletes an installation: the row `removing`, the connection kept."""
        installed.change += 1
        async with self.pool.acquire() as db, db.transaction():
            await db.execute(
                "DELETE FROM installations WHERE id = $1::uuid", installed.installation_id
            )
            await db.execute(
                "UPDATE subscriptions SET status = 'removing', change = $2, updated_at = now() "
                "WHERE installation_id = $1::uuid",
                installed.installation_id,
                installed.change,
            )

    def worker(self, activities: RegistrationActivities) -> Any:
        return subscribe_worker(self.temporal, activities, task_queue=self.task_queue)

    async def sync(
        self, installed: Installed, *, deleted: bool = False
    ) -> subscriptions_pb2.SyncSubscriptionsResult:
        request = subscriptions_pb2.SyncSubscriptionsInput(
            installation_id=installed.installation_id,
            integration_id=installed.integration_id,
            installation_deleted=deleted,
        )
        request.meta.project_id = installed.project_id
        result: subscriptions_pb2.SyncSubscriptionsResult = await self.temporal.execute_workflow(
            SYNC_WORKFLOW,
            request,
            id=sync_workflow_id(installed.installation_id, installed.change),
            task_queue=self.task_queue,
            result_type=subscriptions_pb2.SyncSubscriptionsResult,
            execution_timeout=timedelta(seconds=120),
        )
        return result

    async def row(self, installed: Installed) -> asyncpg.Record | None:
        return await self.pool.fetchrow(
            "SELECT * FROM subscriptions WHERE installation_id = $1::uuid",
            installed.installation_id,
        )

    async def held(self, provider: sandbox_pb2.Provider) -> list[Any]:
        listed = await self.control.ListWebhookSubscriptions(
            sandbox_pb2.ListWebhookSubscriptionsRequest(provider=provider)
        )
        return list(listed.subscriptions)

    async def hubspot_keys(self) -> set[tuple[str, str]]:
        return {(s.event_type, s.property_name) for s in await self.held(HS)}

    async def salesforce_tooling(self, soql: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.stack.endpoints["sandbox-http"]) as http:
            answer = await http.get(
                "/salesforce/services/data/v59.0/tooling/query",
                params={"q": soql},
                headers={"Authorization": f"Bearer {self.sandbox_tokens['salesforce']}"},
            )
        assert answer.status_code == 200, answer.text
        records: list[dict[str, Any]] = answer.json()["records"]
        return records


@pytest.fixture
async def world(
    stack: Stack,
    temporal: Client,
    task_queue: str,
    pool: asyncpg.Pool,
    watches: dict[str, Watch],
) -> AsyncIterator[World]:
    async with controlling(stack) as control:
        await control.Reset(
            sandbox_pb2.ResetRequest(scopes=[sandbox_pb2.RESET_SCOPE_SUBSCRIPTIONS])
        )
        info = await control.GetSandboxInfo(sandbox_pb2.GetSandboxInfoRequest())
        client = next(c for c in info.clients if c.app_id)
        world = World(
            stack,
            temporal,
            task_queue,
            pool,
            control,
            Tokens(),
            watches["ampmesh-notifications"],
            client.app_id,
            client.developer_api_key,
        )
        async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as http:
            world.sandbox_tokens["hubspot"] = (await password_tokens(http, HS_TOKEN))[
                "access_token"
            ]
            world.sandbox_tokens["salesforce"] = (await password_tokens(http, SF_TOKEN))[
                "access_token"
            ]
        yield world


@pytest.fixture
async def activities(stack: Stack, world: World) -> AsyncIterator[RegistrationActivities]:
    pubsub = next(c for c in stack.mesh.components if c.name == "pubsub")
    publisher = Publisher.open(
        stack.endpoints["pubsub"], pubsub.service_env()["AMPMESH_PUBSUB_PROJECT"]
    )
    async with provider_session() as http:
        yield RegistrationActivities(
            pool=world.pool,
            tokens=world.tokens,  # type: ignore[arg-type]
            catalog=point_at_sandbox(load_catalog(), stack.endpoints["sandbox-http"]),
            http=http,
            publisher=publisher,
            auth_for=registry.provider_auth,
            public_url=PUBLIC,
            retry_window=WINDOW,
            provider_wait=0.5,
        )
    publisher.close()


def contacts(
    *watch: str, create: bool = True, delete: bool = True, auto: str = ""
) -> dict[str, Any]:
    update: dict[str, Any] = {"enabled": "always" if watch or auto else "never"}
    if watch:
        update["requiredWatchFields"] = list(watch)
    if auto:
        update["watchFieldsAuto"] = auto
    return {
        "contacts": {
            "objectName": "contacts",
            "destination": "hooks",
            "inheritFieldsAndMappings": True,
            "createEvent": {"enabled": "always" if create else "never"},
            "updateEvent": update,
            "deleteEvent": {"enabled": "always" if delete else "never"},
        }
    }


def sf_objects(*names: str) -> dict[str, Any]:
    return {
        name: {
            "objectName": name,
            "destination": "hooks",
            "inheritFieldsAndMappings": True,
            "createEvent": {"enabled": "always"},
            "updateEvent": {"enabled": "always", "watchFieldsAuto": "all"},
            "deleteEvent": {"enabled": "always"},
        }
        for name in names
    }


def registered_ids(row: asyncpg.Record) -> set[str]:
    registered = json.loads(row["registered"])
    return {sub["id"] for entry in registered.values() for sub in entry["subscriptions"]}


# --- HubSpot -----------------------------------------------------------------------------


async def test_hubspot_registers_the_app_webhooks_then_the_difference_then_removes_them(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("hubspot")
    integration, revision = await world.integration(project, "hubspot", ["contacts"])
    one = await world.install(
        project, integration, revision, "hubspot", contacts("firstname", "lastname")
    )
    async with world.worker(activities):
        result = await world.sync(one)
        assert not result.error
        assert list(result.registered_objects) == ["contacts"]
        assert await world.hubspot_keys() == {
            ("contact.creation", ""),
            ("contact.deletion", ""),
            ("contact.propertyChange", "firstname"),
            ("contact.propertyChange", "lastname"),
        }
        held = await world.held(HS)
        assert {s.target_url for s in held} == {
            PUBLIC + integration_webhook_path(project, integration)
        }
        assert {s.app_id for s in held} == {world.app_id}
        row = await world.row(one)
        assert row is not None
        assert (row["status"], row["error"], row["change"]) == ("active", "", 1)
        assert row["account_id"]  # the sandbox portal, from the token's introspection
        assert registered_ids(row) == {s.id for s in held}

        # A second installation of the integration needs lastname and email too.
        two = await world.install(
            project, integration, revision, "hubspot", contacts("lastname", "email", delete=False)
        )
        assert not (await world.sync(two)).error
        # The first one's update: no more deletes, firstname only.
        await world.configure(one, contacts("firstname", delete=False))
        assert not (await world.sync(one)).error
        assert await world.hubspot_keys() == {
            ("contact.creation", ""),
            ("contact.propertyChange", "firstname"),
            ("contact.propertyChange", "lastname"),  # still the second one's
            ("contact.propertyChange", "email"),
        }
        row = await world.row(one)
        assert row is not None and row["status"] == "active" and row["change"] == 2
        assert {
            (s["eventType"], s["propertyName"])
            for s in json.loads(row["registered"])["contacts"]["subscriptions"]
        } == {
            ("contact.creation", ""),
            ("contact.propertyChange", "firstname"),
        }

        # Uninstalling the first leaves what the second needs, and removes its connection.
        await world.uninstall(one)
        result = await world.sync(one, deleted=True)
        assert list(result.removed_objects) == ["contacts"]
        assert await world.row(one) is None
        assert await world.hubspot_keys() == {
            ("contact.creation", ""),
            ("contact.propertyChange", "lastname"),
            ("contact.propertyChange", "email"),
        }
        assert world.tokens.deleted == [one.connection_id]
        assert not await world.pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM connections WHERE id = $1::uuid)", one.connection_id
        )
        # The last one's removal removes every subscription.
        await world.uninstall(two)
        await world.sync(two, deleted=True)
        assert await world.hubspot_keys() == set()
        assert await world.row(two) is None


async def test_a_stale_run_leaves_the_row_to_the_newer_change(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("hubspot")
    integration, revision = await world.integration(project, "hubspot", ["contacts"])
    one = await world.install(project, integration, revision, "hubspot", contacts("firstname"))
    await world.configure(one, contacts("lastname"))
    one.change = 1  # the first change's run, started late
    async with world.worker(activities):
        result = await world.sync(one)
    assert not result.error and not result.registered_objects
    assert await world.hubspot_keys() == set()
    row = await world.row(one)
    assert row is not None and (row["status"], row["change"]) == ("pending", 2)


async def test_watch_fields_auto_watches_the_read_fields(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("hubspot")
    integration, revision = await world.integration(project, "hubspot", ["contacts"])
    read = {
        "contacts": {"objectName": "contacts", "selectedFields": {"FirstName": True, "phone": True}}
    }
    one = await world.install(
        project,
        integration,
        revision,
        "hubspot",
        contacts(create=False, delete=False, auto="all"),
        read,
    )
    async with world.worker(activities):
        assert not (await world.sync(one)).error
    assert await world.hubspot_keys() == {
        ("contact.propertyChange", "firstname"),
        ("contact.propertyChange", "phone"),
    }


async def test_a_missing_app_id_fails_at_once_naming_it(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("hubspot", app=False)
    integration, revision = await world.integration(project, "hubspot", ["contacts"])
    one = await world.install(project, integration, revision, "hubspot", contacts("firstname"))
    async with world.worker(activities):
        result = await world.sync(one)
    assert APP_ID_FIELD in result.error
    row = await world.row(one)
    assert row is not None and row["status"] == "failed" and APP_ID_FIELD in row["error"]
    notified = await created_errors(world, one)
    assert notified.data.error == result.error


async def created_errors(world: World, installed: Installed) -> Any:
    key = f"subscribe/{installed.installation_id}/{installed.change}/create-error"
    for _ in range(10):
        await world.notifications.drain()
        found = [e for e in world.notifications.seen if e.meta.idempotency_key == key]
        if found:
            assert found[0].meta.type == "subscribe.create.error"
            data = found[0].notification.subscribe_create_error
            assert data.notification_type == "subscribe.create.error"
            assert data.data.installation_id == installed.installation_id
            assert data.data.integration_id == installed.integration_id
            assert data.data.connection_id == installed.connection_id
            assert data.data.provider == installed.provider
            assert data.data.group_ref
            return data
    raise AssertionError(f"no notification keyed {key}")


async def installed_under_fault(world: World, *, count: int = 0, http_status: int = 0) -> Any:
    """A HubSpot installation watching contacts' firstname, with the sandbox's
    subscription APIs answering 5xx (count times; 0: until cleared)."""
    project = await world.project("hubspot")
    integration, revision = await world.integration(project, "hubspot", ["contacts"])
    one = await world.install(project, integration, revision, "hubspot", contacts("firstname"))
    await world.control.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
                endpoint=sandbox_pb2.FAULT_ENDPOINT_SUBSCRIPTIONS,
                provider=HS,
                count=count,
                http_status=http_status,
            )
        )
    )
    return one


async def test_a_provider_that_keeps_failing_fails_the_registration_and_says_so(
    world: World, activities: RegistrationActivities
) -> None:
    one = await installed_under_fault(world, http_status=503)
    async with world.worker(activities):
        result = await world.sync(one)
    assert "gave up after" in result.error and "503" in result.error
    assert world.api_key not in result.error
    row = await world.row(one)
    assert row is not None and (row["status"], row["error"]) == ("failed", result.error)
    notified = await created_errors(world, one)
    assert notified.data.error == result.error


async def test_a_provider_failing_for_a_while_is_retried_to_active(
    world: World, activities: RegistrationActivities
) -> None:
    one = await installed_under_fault(world, count=3)
    async with world.worker(activities):
        result = await world.sync(one)
    assert not result.error
    row = await world.row(one)
    assert row is not None and row["status"] == "active"
    assert await world.hubspot_keys() == {
        ("contact.creation", ""),
        ("contact.deletion", ""),
        ("contact.propertyChange", "firstname"),
    }


async def test_the_sweeper_starts_rows_left_pending(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("hubspot")
    integration, revision = await world.integration(project, "hubspot", ["contacts"])
    one = await world.install(project, integration, revision, "hubspot", contacts("firstname"))
    # As if the api had committed half a minute ago and died before starting the run
    # (younger than the mesh's own sweeper's minimum age, which leaves it to this one).
    await world.pool.execute(
        "UPDATE subscriptions SET updated_at = now() - interval '30 seconds' "
        "WHERE installation_id = $1::uuid",
        one.installation_id,
    )
    async with world.worker(activities):
        started = await sweep_once(
            world.pool, world.temporal, task_queue=world.task_queue, min_age=timedelta(seconds=20)
        )
        assert started >= 1
        handle = world.temporal.get_workflow_handle(
            sync_workflow_id(one.installation_id, one.change)
        )
        await handle.result()
    row = await world.row(one)
    assert row is not None and row["status"] == "active"
    assert change_of(handle.id) == 1


# --- Salesforce --------------------------------------------------------------------------


async def test_salesforce_registers_channel_members_and_a_relay_then_the_difference_then_removes(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("salesforce")
    integration, revision = await world.integration(project, "salesforce", ["Account", "Contact"])
    one = await world.install(
        project, integration, revision, "salesforce", sf_objects("Account", "Contact")
    )
    async with world.worker(activities):
        result = await world.sync(one)
        assert not result.error
        assert sorted(result.registered_objects) == ["Account", "Contact"]
        row = await world.row(one)
        assert row is not None and row["status"] == "active"
        org = row["account_id"]
        assert org
        members = await world.salesforce_tooling(
            "SELECT Id, SelectedEntity FROM PlatformEventChannelMember"
        )
        assert {m["SelectedEntity"] for m in members} == {
            "AccountChangeEvent",
            "ContactChangeEvent",
        }
        registered = json.loads(row["registered"])
        assert {registered[n]["channelMemberId"] for n in ("Account", "Contact")} == {
            m["Id"] for m in members
        }
        relays = await world.salesforce_tooling(
            "SELECT Id, DeveloperName, DestinationResourceName, RelayOption FROM EventRelayConfig"
        )
        assert len(relays) == 1
        relay = relays[0]
        assert relay["DeveloperName"] == relay_name(one.installation_id)
        assert relay["DestinationResourceName"] == PUBLIC + installation_webhook_path(
            project, integration, one.installation_id
        )
        token = json.loads(relay["RelayOption"])["headers"]["X-Ampmesh-Relay-Token"]
        assert bytes(row["relay_token_sha256"]) == hashlib.sha256(token.encode()).digest()
        assert token not in row["registered"]
        assert {s.account_id for s in await world.held(SF)} == {org}

        # Contact dropped: its member goes, the relay (and its token) stays.
        await world.configure(one, sf_objects("Account"))
        result = await world.sync(one)
        assert list(result.removed_objects) == ["Contact"]
        members = await world.salesforce_tooling(
            "SELECT Id, SelectedEntity FROM PlatformEventChannelMember"
        )
        assert {m["SelectedEntity"] for m in members} == {"AccountChangeEvent"}
        kept = await world.salesforce_tooling("SELECT Id FROM EventRelayConfig")
        assert [r["Id"] for r in kept] == [relay["Id"]]
        row = await world.row(one)
        assert (
            row is not None
            and bytes(row["relay_token_sha256"]) == hashlib.sha256(token.encode()).digest()
        )

        await world.uninstall(one)
        await world.sync(one, deleted=True)
        assert await world.salesforce_tooling("SELECT Id FROM PlatformEventChannelMember") == []
        assert await world.salesforce_tooling("SELECT Id FROM EventRelayConfig") == []
        assert await world.row(one) is None
        assert world.tokens.deleted == [one.connection_id]


async def test_a_config_without_subscribe_objects_removes_what_was_registered(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("hubspot")
    integration, revision = await world.integration(project, "hubspot", ["contacts"])
    one = await world.install(project, integration, revision, "hubspot", contacts("firstname"))
    async with world.worker(activities):
        assert not (await world.sync(one)).error
        assert await world.hubspot_keys()
        await world.configure(one, {})
        result = await world.sync(one)
    assert not result.error and list(result.removed_objects) == ["contacts"]
    assert await world.hubspot_keys() == set()
    row = await world.row(one)
    assert row is not None
    assert (row["status"], json.loads(row["registered"])) == ("active", {})
    assert world.tokens.deleted == []  # the installation and its connection stay


async def test_salesforce_installations_on_one_org_share_its_channel_members(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("salesforce")
    integration, revision = await world.integration(project, "salesforce", ["Account", "Contact"])
    one = await world.install(project, integration, revision, "salesforce", sf_objects("Account"))
    two = await world.install(
        project, integration, revision, "salesforce", sf_objects("Account", "Contact")
    )
    async with world.worker(activities):
        assert not (await world.sync(one)).error
        result = await world.sync(two)
        assert not result.error
        # The org's Account member existed: the second installation reuses it.
        assert list(result.registered_objects) == ["Contact"]
        members = await world.salesforce_tooling(
            "SELECT Id, SelectedEntity FROM PlatformEventChannelMember"
        )
        assert sorted(m["SelectedEntity"] for m in members) == [
            "AccountChangeEvent",
            "ContactChangeEvent",
        ]
        relays = await world.salesforce_tooling("SELECT Id, DeveloperName FROM EventRelayConfig")
        assert sorted(r["DeveloperName"] for r in relays) == sorted(
            [relay_name(one.installation_id), relay_name(two.installation_id)]
        )
        await world.uninstall(one)
        await world.sync(one, deleted=True)
        members = await world.salesforce_tooling(
            "SELECT Id, SelectedEntity FROM PlatformEventChannelMember"
        )
        assert sorted(m["SelectedEntity"] for m in members) == [
            "AccountChangeEvent",
            "ContactChangeEvent",
        ]
        relays = await world.salesforce_tooling("SELECT Id, DeveloperName FROM EventRelayConfig")
        assert [r["DeveloperName"] for r in relays] == [relay_name(two.installation_id)]
        await world.uninstall(two)
        await world.sync(two, deleted=True)
    assert await world.salesforce_tooling("SELECT Id FROM PlatformEventChannelMember") == []
    assert await world.salesforce_tooling("SELECT Id FROM EventRelayConfig") == []


async def test_a_developer_key_hubspot_refuses_fails_at_once_without_showing_it(
    world: World, activities: RegistrationActivities
) -> None:
    world.api_key = "not-the-sandbox-key"
    project = await world.project("hubspot")
    integration, revision = await world.integration(project, "hubspot", ["contacts"])
    one = await world.install(project, integration, revision, "hubspot", contacts("firstname"))
    async with world.worker(activities):
        result = await world.sync(one)
    assert "developerApiKey" in result.error and "gave up" not in result.error
    assert world.api_key not in result.error
    row = await world.row(one)
    assert row is not None and row["status"] == "failed"


async def test_a_removal_the_provider_keeps_failing_is_left_for_the_sweeper(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("salesforce")
    integration, revision = await world.integration(project, "salesforce", ["Account"])
    one = await world.install(project, integration, revision, "salesforce", sf_objects("Account"))
    async with world.worker(activities):
        assert not (await world.sync(one)).error
        await world.uninstall(one)
        await world.control.InjectFault(
            sandbox_pb2.InjectFaultRequest(
                fault=sandbox_pb2.Fault(
                    kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
                    endpoint=sandbox_pb2.FAULT_ENDPOINT_SUBSCRIPTIONS,
                    provider=SF,
                )
            )
        )
        result = await world.sync(one, deleted=True)
        assert "gave up after" in result.error
        row = await world.row(one)
        assert row is not None and (row["status"], row["error"]) == ("removing", result.error)
        assert world.tokens.deleted == []  # its connection is still needed
        await world.control.ClearFaults(sandbox_pb2.ClearFaultsRequest())
        # The sweeper's next start of the same change finishes it.
        await world.sync(one, deleted=True)
    assert await world.row(one) is None
    assert await world.salesforce_tooling("SELECT Id FROM EventRelayConfig") == []
    assert world.tokens.deleted == [one.connection_id]


async def test_an_introspection_that_keeps_failing_never_shows_the_token(
    world: World, activities: RegistrationActivities
) -> None:
    project = await world.project("hubspot")
    integration, revision = await world.integration(project, "hubspot", ["contacts"])
    one = await world.install(project, integration, revision, "hubspot", contacts("firstname"))
    # Every HubSpot endpoint, the introspection (whose path holds the token) first.
    await world.control.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR, provider=HS)
        )
    )
    async with world.worker(activities):
        result = await world.sync(one)
    assert "access-tokens" in result.error and "gave up after" in result.error
    assert world.sandbox_tokens["hubspot"] not in result.error
