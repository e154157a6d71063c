"""The subscribe consumer against the stack's Pub/Sub emulator, PostgreSQL and provider
sandbox: ProviderEventBatch envelopes published as the webhook ingress publishes them,
for installations with `subscriptions` rows inserted here, come out as `action:
"subscribe"` ReadResultPages on ampmesh-read-results (pulled from a subscription of the
test's own; the consumer runs on a provider-events subscription of the test's own too,
so the mesh's own worker never takes these batches)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from ampmesh.events.v1.envelope_pb2 import Envelope
from ampmesh.events.v1.provider_events_pb2 import ProviderEvent, ProviderEventBatch
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from ampmesh.token.v1 import token_manager_pb2 as tm
from google.protobuf import json_format
from prometheus_client import REGISTRY

from services.domain.catalog import load_catalog
from services.domain.catalog.sandbox import point_at_sandbox
from services.domain.read_bodies import page_body
from services.runtime.channels import mesh_channel
from services.runtime.envelopes import new_envelope
from services.runtime.pubsub_topology import emulator_subscriber
from services.temporal.reads.publish import Publisher
from services.temporal.subscribe import events as subscribe_events
from services.temporal.subscribe.deliveries import RecordEvent
from services.temporal.subscribe.events import merge_property_change as merge
from services.temporal.subscribe.events import subscribe_consumer
from services.temporal.subscribe.targets import object_routes
from tests.support.control_plane import sandbox_tokens
from tests.support.reads import Watch
from tests.support.sandbox import SF_TOKEN, password_tokens
from tests.support.stack import Stack, component

pytestmark = pytest.mark.e2e

HUBSPOT_ACCOUNT = "7001"


class SandboxTokens:
    """The token-manager's answer for any connection: a sandbox access token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    async def GetToken(self, request: tm.GetTokenRequest, **options: Any) -> Any:
        self.calls += 1
        return tm.GetTokenResponse(token=tm.AccessToken(token=self.token, token_type="Bearer"))


@dataclass
class Installed:
    project_id: str
    integration_id: str
    installation_id: str
    destination_id: str


def _revision(provider: str, object_name: str) -> dict[str, Any]:
    return {
        "name": "crm",
        "provider": provider,
        "read": {
            "objects": [
                {
                    "objectName": object_name,
                    "destination": "hooks",
                    "mapToName": "people" if provider == "hubspot" else "",
                    "requiredFields": [
                        {"fieldName": "email", "mapToName": "mail"}
                        if provider == "hubspot"
                        else {"fieldName": "Name"}
                    ],
                }
            ]
        },
        "subscribe": {
            "objects": [
                {
                    "objectName": object_name,
                    "destination": "subscribed",
                    "inheritFieldsAndMapping": True,
                    "createEvent": {"enabled": "always"},
                    "updateEvent": {"enabled": "always"},
                    "deleteEvent": {"enabled": "always"},
                }
            ]
        },
    }


def _config(
    provider: str, object_name: str, selected: list[str], watch: list[str] | None = None
) -> dict[str, Any]:
    return {
        "provider": provider,
        "read": {
            "objects": {
                object_name: {
                    "objectName": object_name,
                    "selectedFields": {name: True for name in selected},
                }
            }
        },
        "subscribe": {
            "objects": {
                object_name: {
                    "objectName": object_name,
                    "destination": "subscribed",
                    "inheritFieldsAndMappings": True,
                    "createEvent": {"enabled": "always"},
                    # Provider spelling differs in case from HubSpot's `firstname`.
                    "updateEvent": {
                        "enabled": "always",
                        "requiredWatchFields": watch or ["FirstName"],
                    },
                    "deleteEvent": {"enabled": "always"},
                }
            }
        },
    }


async def install(
    pool: Any,
    org_id: str,
    provider: str,
    object_name: str,
    account_id: str,
    selected: list[str],
    watch: list[str] | None = None,
) -> Installed:
    """A project, destination, integration, revision, connection, installation and
    config as the control plane stores them, and the installation's active
    `subscriptions` row (what SyncSubscriptions leaves)."""
    async with pool.acquire() as db, db.transaction():
        project = await db.fetchval(
            "INSERT INTO projects (org_id, name, app_name) VALUES ($1, $2, 'subscribe') "
            "RETURNING id::text",
            uuid.UUID(org_id),
            f"subscribe-{uuid.uuid4().hex[:10]}",
        )
        await db.execute(
            "INSERT INTO destinations (project_id, name, type, metadata) "
            "VALUES ($1::uuid, 'hooks', 'webhook', '{}')",
            project,
        )
        destination = await db.fetchval(
            "INSERT INTO destinations (project_id, name, type, metadata) "
            "VALUES ($1::uuid, 'subscribed', 'webhook', '{}') RETURNING id::text",
            project,
        )
        integration = await db.fetchval(
            "INSERT INTO integrations (project_id, name, provider) VALUES ($1::uuid, 'crm', $2) "
            "RETURNING id::text",
            project,
            provider,
        )
        revision = await db.fetchval(
            "INSERT INTO revisions (integration_id, spec_version, content) "
            "VALUES ($1::uuid, '1.0.0', $2::jsonb) RETURNING id",
            integration,
            json.dumps(_revision(provider, object_name)),
        )
        await db.execute(
            "UPDATE integrations SET latest_revision_id = $1 WHERE id = $2::uuid",
            revision,
            integration,
        )
        connection = str(uuid.uuid4())
        await db.execute(
            "INSERT INTO connections (id, project_id, provider, group_ref, group_name, "
            "consumer_ref, consumer_name, auth_scheme, provider_workspace_ref) VALUES ($1::uuid, "
            "$2::uuid, $3, 'g1', 'Group 1', 'c1', 'Consumer 1', 'oauth2/authorizationCode', $4)",
            connection,
            project,
            provider,
            "acme" if provider == "salesforce" else None,
        )
        installation = await db.fetchval(
            "INSERT INTO installations (project_id, integration_id, group_ref, group_name, "
            "connection_id) VALUES ($1::uuid, $2::uuid, 'g1', 'Group 1', $3::uuid) "
            "RETURNING id::text",
            project,
            integration,
            connection,
        )
        await db.execute(
            "INSERT INTO configs (installation_id, revision_id, content) "
            "VALUES ($1::uuid, $2, $3::jsonb)",
            installation,
            revision,
            json.dumps(_config(provider, object_name, selected, watch)),
        )
        await db.execute(
            "INSERT INTO subscriptions (installation_id, project_id, integration_id, provider, "
            "connection_id, account_id, status) VALUES ($1::uuid, $2::uuid, $3::uuid, $4, "
            "$5::uuid, $6, 'active')",
            installation,
            project,
            integration,
            provider,
            connection,
            account_id,
        )
    return Installed(project, integration, installation, destination)


def hubspot_event(
    event_id: int,
    record_id: str,
    kind: str,
    property_name: str = "",
    value: str = "",
    account: str = HUBSPOT_ACCOUNT,
) -> ProviderEvent:
    """A HubSpot contact event as the ingress normalizes it."""
    subscription_type = f"contact.{kind}"
    raw: dict[str, Any] = {
        "eventId": event_id,
        "subscriptionId": 1,
        "portalId": int(account),
        "appId": 1,
        "occurredAt": 1_780_000_000_000,
        "subscriptionType": subscription_type,
        "attemptNumber": 0,
        "objectId": int(record_id),
        "changeSource": "CRM",
    }
    normalized = {"creation": "create", "propertyChange": "update", "deletion": "delete"}[kind]
    event = ProviderEvent(
        event_id=str(event_id),
        account_id=account,
        object_name="contacts",
        record_id=record_id,
        provider_event_type=subscription_type,
        subscribe_event_type=normalized,
    )
    if property_name:
        raw["propertyName"], raw["propertyValue"] = property_name, value
        event.fields_updated.append(property_name)
        event.values.update({property_name: value})
    event.raw_event.update(raw)
    return event


def batch_envelope(
    installed: Installed, provider: str, events: list[ProviderEvent], **kw: Any
) -> Envelope:
    batch = ProviderEventBatch(
        provider=provider,
        project_id=installed.project_id,
        integration_id=installed.integration_id,
        events=events,
        **kw,
    )
    return new_envelope(
        project_id=installed.project_id,
        idempotency_key=f"provider-events/{provider}/{events[0].event_id}",
        source="api",
        provider_events=batch,
    )


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[tuple[str, str, Publisher]]:
    """A provider-events subscription of the test's own, and a publisher."""
    project = component(stack, "pubsub").service_env()["AMPMESH_PUBSUB_PROJECT"]
    host = stack.endpoints["pubsub"]
    subscriber = emulator_subscriber(host)
    name = f"test-{uuid.uuid4().hex[:12]}"
    subscriber.create_subscription(
        name=f"projects/{project}/subscriptions/{name}",
        topic=f"projects/{project}/topics/ampmesh-provider-events",
        ack_deadline_seconds=30,
    )
    publisher = Publisher.open(host, project)
    yield name, project, publisher
    publisher.close()
    subscriber.delete_subscription(subscription=f"projects/{project}/subscriptions/{name}")


@pytest.fixture
async def hubspot(stack: Stack) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    access, _ = await sandbox_tokens(stack)
    async with httpx.AsyncClient(
        base_url=f"{stack.endpoints['sandbox-http']}/hubspot",
        headers={"Authorization": f"Bearer {access}"},
    ) as http:
        yield access, http


async def create_contact(http: httpx.AsyncClient, **properties: str) -> str:
    answer = await http.post("/crm/v3/objects/contacts", json={"properties": properties})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def subscribe_pages(watch: Watch, installation_id: str) -> dict[str, dict[str, Any]]:
    """The installation's deliveries by idempotency key (a key seen twice once)."""
    found = {}
    for envelope in watch.seen:
        if envelope.WhichOneof("payload") != "read_result_page":
            continue
        page = envelope.read_result_page
        if page.message.installation_id != installation_id:
            continue
        assert page.message.action == "subscribe"
        found[envelope.meta.idempotency_key] = {
            "page": page,
            "body": orjson.loads(page_body(page)),
        }
    return found


async def wait_for_pages(
    watch: Watch, installation_id: str, count: int
) -> dict[str, dict[str, Any]]:
    async with asyncio.timeout(30):
        while len(subscribe_pages(watch, installation_id)) < count:
            await asyncio.to_thread(watch.pull)
    # Anything late would show up now.
    await watch.drain()
    return subscribe_pages(watch, installation_id)


def counted(provider: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "ampmesh_subscribe_events_total", {"provider": provider, "outcome": outcome}
    )
    return value or 0.0


async def test_hubspot_events_become_subscribe_deliveries(
    stack: Stack,
    pool: Any,
    watches: dict[str, Watch],
    bus: tuple[str, str, Publisher],
    hubspot: tuple[str, httpx.AsyncClient],
) -> None:
    subscription, project, publisher = bus
    access, http = hubspot
    installed = await install(
        pool, stack.org_id, "hubspot", "contacts", HUBSPOT_ACCOUNT, ["firstname", "lastname"]
    )
    created = await create_contact(http, firstname="Ada", lastname="Lovelace", email="ada@x.io")
    updated = await create_contact(http, firstname="Alan", lastname="Turing", email="alan@x.io")
    unwatched = await create_contact(http, firstname="Grace", lastname="Hopper", email="g@x.io")
    gone = "999999001"  # deleted at HubSpot: its event carries the id alone
    base = uuid.uuid4().int % 10**9 * 1000
    events = [
        hubspot_event(base + 1, created, "creation"),
        # Two watched-or-not property changes of one record: one delivery.
        hubspot_event(base + 3, updated, "propertyChange", "lastname", "Turing"),
        hubspot_event(base + 2, updated, "propertyChange", "firstname", "Alan"),
        # Only an unwatched property changed: dropped.
        hubspot_event(base + 4, unwatched, "propertyChange", "email", "g@x.io"),
        hubspot_event(base + 5, gone, "deletion"),
        # An account no installation has: acknowledged and counted.
        hubspot_event(base + 6, created, "creation", account="424242"),
        # Created, then deleted before it could be fetched: skipped and counted.
        hubspot_event(base + 7, "999999002", "creation"),
    ]
    unknown_before = counted("hubspot", "unknown_account")
    unwatched_before = counted("hubspot", "unwatched")
    deleted_before = counted("hubspot", "record_deleted")
    tokens = SandboxTokens(access)
    catalog = point_at_sandbox(load_catalog(), stack.endpoints["sandbox-http"])
    results = watches["ampmesh-read-results"]
    await publisher.publish_all([batch_envelope(installed, "hubspot", events)])
    async with subscribe_consumer(
        pool=pool,
        tokens=tokens,  # type: ignore[arg-type]
        catalog=catalog,
        emulator_host=stack.endpoints["pubsub"],
        project=project,
        subscription=subscription,
    ):
        pages = await wait_for_pages(results, installed.installation_id, 3)
        keys = {f"subscribe/{installed.installation_id}/{base + n}" for n in (1, 2, 5)}
        assert set(pages) == keys
        assert counted("hubspot", "unknown_account") == unknown_before + 1
        assert counted("hubspot", "unwatched") == unwatched_before + 1
        assert counted("hubspot", "record_deleted") == deleted_before + 1

        create = pages[f"subscribe/{installed.installation_id}/{base + 1}"]
        body = create["body"]
        assert body["action"] == "subscribe"
        assert body["objectName"] == "people" and body["rawObjectName"] == "contacts"
        assert body["provider"] == "hubspot" and body["groupRef"] == "g1"
        assert body["consumerRef"] == "c1" and body["installationId"] == installed.installation_id
        assert "operationId" not in body and "readType" not in body
        assert body["resultInfo"] == {"type": "inline", "numRecords": 1}
        (entry,) = body["result"]
        assert entry["id"] == created
        assert entry["subscribeEventType"] == "create"
        assert entry["providerEventType"] == "contact.creation"
        assert entry["rawEvent"]["eventId"] == base + 1
        # The provider's integers stay integers (a Struct holds them as doubles).
        assert f'"eventId":{base + 1},'.encode() in page_body(create["page"])
        assert entry["fields"] == {"firstname": "Ada", "lastname": "Lovelace"}
        assert entry["mappedFields"] == {"mail": "ada@x.io"}
        assert entry["raw"]["id"] == created
        assert "deleted" not in entry and "fieldsUpdated" not in entry
        page = create["page"]
        assert page.destination_id == installed.destination_id
        assert page.destination_name == "subscribed"
        assert not page.message.operation_id and not page.message.read_type

        (update,) = pages[f"subscribe/{installed.installation_id}/{base + 2}"]["body"]["result"]
        assert update["subscribeEventType"] == "update"
        assert sorted(update["fieldsUpdated"]) == ["firstname", "lastname"]
        assert update["fields"]["firstname"] == "Alan"
        assert update["rawEvent"]["eventId"] == base + 2

        (delete,) = pages[f"subscribe/{installed.installation_id}/{base + 5}"]["body"]["result"]
        assert delete == {
            "id": gone,
            "subscribeEventType": "delete",
            "providerEventType": "contact.deletion",
            "rawEvent": json_format.MessageToDict(events[4].raw_event),
            "deleted": True,
        }

        # The ingress's outbox may publish a batch twice: the same keys come out.
        seen = len(results.seen)
        await publisher.publish_all([batch_envelope(installed, "hubspot", events)])
        async with asyncio.timeout(30):
            while len(results.seen) < seen + 3:
                await asyncio.to_thread(results.pull)
        again = [
            e.meta.idempotency_key
            for e in results.seen[seen:]
            if e.read_result_page.message.installation_id == installed.installation_id
        ]
        assert sorted(again) == sorted(keys)


async def test_a_config_that_stops_an_event_type_is_seen_within_the_cache(
    stack: Stack,
    pool: Any,
    watches: dict[str, Watch],
    bus: tuple[str, str, Publisher],
    hubspot: tuple[str, httpx.AsyncClient],
) -> None:
    """Deletes switched off in the installation's config are no longer delivered once
    the cached lookup expires (seconds), without a restart."""
    subscription, project, publisher = bus
    access, _ = hubspot
    account = str(8000 + uuid.uuid4().int % 1000)
    installed = await install(pool, stack.org_id, "hubspot", "contacts", account, ["firstname"])
    base = uuid.uuid4().int % 10**9 * 1000
    results = watches["ampmesh-read-results"]
    async with subscribe_consumer(
        pool=pool,
        tokens=SandboxTokens(access),  # type: ignore[arg-type]
        catalog=point_at_sandbox(load_catalog(), stack.endpoints["sandbox-http"]),
        emulator_host=stack.endpoints["pubsub"],
        project=project,
        subscription=subscription,
    ):
        first = hubspot_event(base + 1, "1001", "deletion", account=account)
        await publisher.publish_all([batch_envelope(installed, "hubspot", [first])])
        assert set(await wait_for_pages(results, installed.installation_id, 1)) == {
            f"subscribe/{installed.installation_id}/{base + 1}"
        }
        config = _config("hubspot", "contacts", ["firstname"])
        config["subscribe"]["objects"]["contacts"]["deleteEvent"]["enabled"] = "never"
        await pool.execute(
            "UPDATE configs SET content = $2::jsonb WHERE installation_id = $1::uuid",
            installed.installation_id,
            json.dumps(config),
        )
        await asyncio.sleep(3)  # past the lookup's TTL (2 s)
        disabled_before = counted("hubspot", "disabled")
        second = hubspot_event(base + 2, "1002", "deletion", account=account)
        await publisher.publish_all([batch_envelope(installed, "hubspot", [second])])
        async with asyncio.timeout(30):
            while counted("hubspot", "disabled") < disabled_before + 1:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        await results.drain()
        assert set(subscribe_pages(results, installed.installation_id)) == {
            f"subscribe/{installed.installation_id}/{base + 1}"
        }


async def test_salesforce_relay_events_map_to_their_installation_only(
    stack: Stack,
    pool: Any,
    watches: dict[str, Watch],
    bus: tuple[str, str, Publisher],
) -> None:
    """A relay's batch names its installation: an event of another org is not its own.
    A create carrying every selected field is delivered from the event; an update
    carrying less is delivered from the record fetched by id (sObject GET); one whose
    record is gone is skipped."""
    subscription, project, publisher = bus
    async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as sandbox:
        access = (await password_tokens(sandbox, SF_TOKEN))["access_token"]
        answer = await sandbox.post(
            "/salesforce/services/data/v60.0/sobjects/Account",
            json={"Name": "Initech", "Industry": "Software"},
            headers={"Authorization": f"Bearer {access}"},
        )
        assert answer.status_code == 201, answer.text
        existing = str(answer.json()["id"])
    org = "00D" + uuid.uuid4().hex[:15].upper()
    installed = await install(
        pool, stack.org_id, "salesforce", "Account", org, ["Industry"], watch=["name"]
    )
    base = uuid.uuid4().hex

    def change(
        n: int,
        change_type: str,
        values: dict[str, Any],
        account: str = org,
        record_id: str = "",
    ) -> ProviderEvent:
        record_id = record_id or f"001{n:015d}"
        raw: dict[str, Any] = {
            "id": f"{base}-{n}",
            "detail-type": "AccountChangeEvent",
            "detail": {
                "payload": {
                    "ChangeEventHeader": {
                        "entityName": "Account",
                        "recordIds": [record_id],
                        "changeType": change_type,
                        "changedFields": list(values) if change_type == "UPDATE" else [],
                    },
                    **values,
                },
                "event": {"EventUuid": f"{base}-{n}"},
            },
        }
        event = ProviderEvent(
            event_id=f"{base}-{n}",
            account_id=account,
            object_name="Account",
            record_id=record_id,
            provider_event_type=change_type,
            subscribe_event_type={"CREATE": "create", "UPDATE": "update", "DELETE": "delete"}[
                change_type
            ],
        )
        if change_type == "UPDATE":
            event.fields_updated.extend(values)
        event.raw_event.update(raw)
        if values:
            event.values.update(values)
        return event

    events = [
        change(1, "CREATE", {"Name": "Acme", "Industry": "Energy", "Phone": "1"}),
        change(2, "DELETE", {}),
        change(3, "DELETE", {}, account="00DOTHERORG0000000"),
        change(4, "UPDATE", {"Name": "Initech"}, record_id=existing),
        change(5, "UPDATE", {"Name": "Gone"}),
    ]
    deleted_before = counted("salesforce", "record_deleted")
    tokens = SandboxTokens(access)
    async with subscribe_consumer(
        pool=pool,
        tokens=tokens,  # type: ignore[arg-type]
        catalog=point_at_sandbox(load_catalog(), stack.endpoints["sandbox-http"]),
        emulator_host=stack.endpoints["pubsub"],
        project=project,
        subscription=subscription,
    ):
        await publisher.publish_all(
            [
                batch_envelope(
                    installed, "salesforce", events, installation_id=installed.installation_id
                )
            ]
        )
        pages = await wait_for_pages(watches["ampmesh-read-results"], installed.installation_id, 3)
        assert counted("salesforce", "record_deleted") == deleted_before + 1
    assert set(pages) == {f"subscribe/{installed.installation_id}/{base}-{n}" for n in (1, 2, 4)}
    (create,) = pages[f"subscribe/{installed.installation_id}/{base}-1"]["body"]["result"]
    assert create["fields"] == {"industry": "Energy", "name": "Acme"}
    assert create["id"] == "001" + "1".zfill(15)
    assert create["subscribeEventType"] == "create" and create["providerEventType"] == "CREATE"
    (delete,) = pages[f"subscribe/{installed.installation_id}/{base}-2"]["body"]["result"]
    assert delete["deleted"] is True and delete["id"] == "001" + "2".zfill(15)
    (update,) = pages[f"subscribe/{installed.installation_id}/{base}-4"]["body"]["result"]
    assert update["fields"] == {"industry": "Software", "name": "Initech"}
    assert update["fieldsUpdated"] == ["Name"] and update["raw"]["Id"] == existing
    assert tokens.calls == 1  # one token for the batch's fetches


async def test_a_provider_outage_gives_the_batch_back_until_the_record_can_be_fetched(
    stack: Stack,
    pool: Any,
    watches: dict[str, Watch],
    bus: tuple[str, str, Publisher],
    hubspot: tuple[str, httpx.AsyncClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HubSpot answering 503 past the fetch's retries: the message is nacked and
    redelivered (no delivery is lost, none is made from a half-processed batch)."""
    monkeypatch.setattr(subscribe_events, "FETCH_WAIT", 0.5)
    subscription, project, publisher = bus
    access, http = hubspot
    account = str(9000 + uuid.uuid4().int % 1000)
    installed = await install(pool, stack.org_id, "hubspot", "contacts", account, ["firstname"])
    created = await create_contact(http, firstname="Katherine", email="k@x.io")
    base = uuid.uuid4().int % 10**9 * 1000
    channel = mesh_channel(
        stack.endpoints["sandbox"], stack.credentials("tests"), server_identity="sandbox"
    )
    async with channel:
        control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
        fault = await control.InjectFault(
            sandbox_pb2.InjectFaultRequest(
                fault=sandbox_pb2.Fault(
                    kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
                    endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
                    provider=sandbox_pb2.PROVIDER_HUBSPOT,
                    object_name="contacts",
                    count=8,
                )
            )
        )
        retried_before = counted("hubspot", "retried")
        event = hubspot_event(base + 1, created, "creation", account=account)
        await publisher.publish_all([batch_envelope(installed, "hubspot", [event])])
        async with subscribe_consumer(
            pool=pool,
            tokens=SandboxTokens(access),  # type: ignore[arg-type]
            catalog=point_at_sandbox(load_catalog(), stack.endpoints["sandbox-http"]),
            emulator_host=stack.endpoints["pubsub"],
            project=project,
            subscription=subscription,
        ):
            pages = await wait_for_pages(
                watches["ampmesh-read-results"], installed.installation_id, 1
            )
        await control.ClearFaults(sandbox_pb2.ClearFaultsRequest(ids=[fault.id]))
    assert set(pages) == {f"subscribe/{installed.installation_id}/{base + 1}"}
    assert counted("hubspot", "retried") > retried_before
    (entry,) = pages[f"subscribe/{installed.installation_id}/{base + 1}"]["body"]["result"]
    assert entry["fields"] == {"firstname": "Katherine"}


def test_routes_watch_what_the_config_says_and_fall_back_to_the_manifests_destination() -> None:
    revision = {
        "read": {
            "objects": [
                {"objectName": "contacts", "destination": "reads"},
                {"objectName": "deals", "destination": "reads"},
            ]
        },
        "subscribe": {
            "objects": [
                {"objectName": "contacts", "destination": "events"},
                {"objectName": "tickets", "destination": "events"},
            ]
        },
    }
    config = {
        "subscribe": {
            "objects": {
                "contacts": {
                    "objectName": "contacts",
                    "updateEvent": {"enabled": "always", "watchFieldsAuto": "all"},
                    "deleteEvent": {"enabled": "never"},
                },
                "deals": {
                    "objectName": "deals",
                    "destination": "own",
                    "updateEvent": {"enabled": "always"},
                },
                # No read object of that name: nothing to project it with.
                "tickets": {"objectName": "tickets", "createEvent": {"enabled": "always"}},
            }
        }
    }
    routes = object_routes(revision, config, "crm", "", {"events": "d-1", "own": "d-2"})
    assert set(routes) == {"contacts", "deals"}
    contacts, deals = routes["contacts"], routes["deals"]
    assert (contacts.destination_name, contacts.destination_id) == ("events", "d-1")
    assert (deals.destination_name, deals.destination_id) == ("own", "d-2")
    assert contacts.watches(["anything"]) and contacts.enabled("update")
    assert not contacts.enabled("delete") and not contacts.enabled("create")
    # Neither watched fields nor "all": no update is delivered.
    assert deals.enabled("update") and not deals.watches(["amount"])


def test_coalesced_property_changes_keep_the_smallest_event_id() -> None:
    first = hubspot_event(10, "5", "propertyChange", "lastname", "B")
    record_event = RecordEvent(first, ["lastname"])
    merge(record_event, hubspot_event(9, "5", "propertyChange", "FirstName", "A"))
    merge(record_event, hubspot_event(11, "5", "propertyChange", "firstname", "A"))
    assert record_event.event.event_id == "9"
    assert record_event.fields_updated == ["lastname", "FirstName"]
