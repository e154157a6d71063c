"""Which installations a provider event concerns, and what each needs to deliver it:
the installation as reads see it (group, consumer, connection, workspace), its
`subscribe.objects`, the read plan of each subscribed object and its destination.

An app-level webhook (HubSpot) reaches the integration's URL: its events belong to the
`subscriptions` rows of that provider, integration and account. A per-installation
webhook (a Salesforce event relay) names its installation, whose account must be the
event's. Rows that are `active`, or `pending` with an account already learned (a config
change being registered again, while the provider keeps sending), receive events;
`failed` and `removing` ones do not.

Lookups are cached for a few seconds (TTL): at hundreds of events a second one query per
event would cost more than the deliveries, and a config saved is seen within the TTL.
Concurrent misses of one key share one query.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.workflows.v1.read_plan_pb2 import ReadPlan
from google.protobuf import json_format

from services.domain import read_plan
from services.domain.record_shape import Selection, plan_selection
from services.runtime.logs import get_logger

_log = get_logger("ampmesh.temporal.subscribe")

# Seconds a lookup is reused.
TARGETS_TTL = 2.0
ALWAYS = "always"
ALL = "all"

_SELECT = """
    SELECT s.installation_id::text AS installation_id, s.account_id,
           i.project_id::text AS project_id, i.integration_id::text AS integration_id,
           i.group_ref, i.group_name, i.created_at, i.updated_at,
           i.connection_id::text AS connection_id,
           cn.consumer_ref, cn.consumer_name, cn.provider_workspace_ref,
           g.name AS integration_name, c.id::text AS config_id,
           c.content AS config_content, r.content AS revision_content,
           (SELECT coalesce(jsonb_object_agg(d.name, d.id::text), '{}'::jsonb)
              FROM destinations d WHERE d.project_id = i.project_id) AS destinations
    FROM subscriptions s
    JOIN installations i ON i.id = s.installation_id
    JOIN integrations g ON g.id = i.integration_id
    LEFT JOIN LATERAL (
        SELECT id, content, revision_id FROM configs
        WHERE installation_id = i.id ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN revisions r ON r.id = coalesce(c.revision_id, g.latest_revision_id)
    LEFT JOIN connections cn ON cn.id = i.connection_id
    WHERE (s.status = 'active' OR (s.status = 'pending' AND s.account_id <> ''))
"""
_BY_ACCOUNT = _SELECT + " AND s.provider = $1 AND s.account_id = $2 AND s.integration_id = $3::uuid"
_BY_INSTALLATION = _SELECT + " AND s.provider = $1 AND s.installation_id = $2::uuid"


@dataclass(frozen=True)
class ObjectRoute:
    """How one subscribed object of an installation is delivered."""

    object_name: str
    config: config_pb2.SubscribeConfigObject
    plan: ReadPlan
    selection: Selection
    destination_id: str
    destination_name: str
    # Lower-cased watched fields; None watches every field.
    watched: frozenset[str] | None

    @property
    def shown_name(self) -> str:
        return self.plan.mapped_name or self.object_name

    def enabled(self, event_type: str) -> bool:
        config = self.config
        kinds = {
            "create": config.create_event.enabled,
            "update": config.update_event.enabled,
            "delete": config.delete_event.enabled,
        }
        return kinds.get(event_type) == ALWAYS

    def watches(self, fields_updated: list[str]) -> bool:
        """Whether an update touching these provider fields is delivered."""
        if self.watched is None:
            return True
        return any(name.lower() in self.watched for name in fields_updated)


@dataclass(frozen=True)
class Target:
    """One installation that receives events."""

    installation_id: str
    account_id: str
    project_id: str
    integration_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    workspace: str
    installation_time: datetime | None
    objects: Mapping[str, ObjectRoute] = field(default_factory=dict)


class Targets:
    """The cached lookups."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = TARGETS_TTL) -> None:
        self.pool = pool
        self.ttl = ttl
        self._cache: dict[tuple[str, ...], tuple[float, list[Target]]] = {}
        self._loading: dict[tuple[str, ...], asyncio.Task[list[Target]]] = {}

    async def for_account(
        self, provider: str, integration_id: str, account_id: str
    ) -> list[Target]:
        key = ("account", provider, integration_id, account_id)
        return await self._cached(
            key, lambda: self._load(_BY_ACCOUNT, provider, account_id, integration_id)
        )

    async def for_installation(self, provider: str, installation_id: str) -> list[Target]:
        key = ("installation", provider, installation_id)
        return await self._cached(
            key, lambda: self._load(_BY_INSTALLATION, provider, installation_id)
        )

    async def _cached(
        self, key: tuple[str, ...], load: Callable[[], Awaitable[list[Target]]]
    ) -> list[Target]:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        task = self._loading.get(key)
        if task is None:
            task = self._loading[key] = asyncio.ensure_future(load())
            task.add_done_callback(lambda _: self._loading.pop(key, None))
        found = await asyncio.shield(task)
        self._cache[key] = (time.monotonic() + self.ttl, found)
        if len(self._cache) > 10_000:
            # Accounts come and go: forget the expired ones now and then.
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        return found

    async def _load(self, query: str, *args: str) -> list[Target]:
        try:
            rows = await self.pool.fetch(query, *args)
        except asyncpg.DataError:
            return []  # not a UUID: no such installation or integration
        targets = []
        for row in rows:
            target = target_of(row)
            if target is not None:
                targets.append(target)
        return targets


def target_of(row: Mapping[str, Any]) -> Target | None:
    """The installation's Target; None (logged) when it cannot receive events (no
    connection, or a config or revision that does not parse)."""
    if not row["connection_id"] or row["consumer_ref"] is None:
        return None
    try:
        routes = object_routes(
            _json(row["revision_content"]),
            _json(row["config_content"]),
            row["integration_name"],
            row["config_id"] or "",
            _json(row["destinations"]),
        )
    except json_format.ParseError as error:
        _log.error(
            "installation's config or revision does not parse; its events are dropped",
            installation_id=row["installation_id"],
            error=str(error)[:200],
        )
        return None
    return Target(
        installation_id=row["installation_id"],
        account_id=row["account_id"],
        project_id=row["project_id"],
        integration_id=row["integration_id"],
        connection_id=row["connection_id"],
        group_ref=row["group_ref"] or "",
        group_name=row["group_name"] or "",
        consumer_ref=row["consumer_ref"] or "",
        consumer_name=row["consumer_name"] or "",
        workspace=row["provider_workspace_ref"] or "",
        installation_time=row["updated_at"] or row["created_at"],
        objects=routes,
    )


def object_routes(
    revision_json: Mapping[str, Any],
    config_json: Mapping[str, Any],
    integration_name: str,
    config_id: str,
    destinations: Mapping[str, Any],
) -> dict[str, ObjectRoute]:
    """The installation's subscribed objects, by provider object name, each with the
    plan of the read object of the same name (its fields and mappings: the manifest
    requires a read object for every subscribe object). Pure."""
    content = config_pb2.ConfigContent()
    json_format.ParseDict(
        {k: v for k, v in config_json.items() if k in ("read", "subscribe")},
        content,
        ignore_unknown_fields=True,
    )
    revision = manifest_pb2.Integration(name=integration_name)
    json_format.ParseDict(
        {k: v for k, v in revision_json.items() if k in ("read", "subscribe")},
        revision,
        ignore_unknown_fields=True,
    )
    declared = {o.object_name: o for o in revision.subscribe.objects}
    routes = {}
    for key, configured in content.subscribe.objects.items():
        name = configured.object_name or key
        try:
            plan = read_plan.read_plan(revision, content, name, config_id=config_id)
        except read_plan.ObjectNotRead:
            _log.warning("subscribe object without a read object; skipped", object=name)
            continue
        manifest_object = declared.get(name)
        destination = (
            configured.destination
            or (manifest_object.destination if manifest_object is not None else "")
            or plan.destination_name
        )
        update = configured.update_event
        watched: frozenset[str] | None = frozenset(f.lower() for f in update.required_watch_fields)
        if update.watch_fields_auto == ALL:
            watched = None
        routes[name] = ObjectRoute(
            object_name=name,
            config=configured,
            plan=plan,
            selection=plan_selection(plan.selection),
            destination_id=str(destinations.get(destination) or ""),
            destination_name=destination,
            watched=watched,
        )
    return routes


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    loaded = orjson.loads(value) if isinstance(value, (str, bytes)) else value
    return loaded if isinstance(loaded, dict) else {}
