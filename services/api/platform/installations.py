"""Installations: one integration installed for one customer group, with its configs.

An installation's config is kept as a history: every change (create, PATCH, JSON Patch, a
destructive deploy) saves a new `configs` row tied to the integration's latest revision,
and the newest row is the installation's config. Config content is the reference's
ConfigContent JSON, checked against the latest revision: every object it configures must
be declared in the same section of the revision, destinations must exist in the project,
schedules and backfill periods follow the manifest's rules.

Who may call: builders (`full` keys) for every group; frontend keys too (the install UI
names the group itself); customer JWTs only for their own group (other groups' are
NOT_FOUND, and lists are confined to it).

Every installation uses one connection: a connection of its group to the integration's
provider. Create names it (`connectionId`) or, as the reference does, leaves it out when
the group has exactly one such connection; PATCH `connectionId` switches to another one.
Responses show the connection as GET .../connections/{id} does, without credentials.
`skipSampling` is accepted and has nothing to skip: installing reads no sample (the reads
of issue #6 start a backfill or a schedule, never a sample).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import grpc
from ampmesh.manifest.v1 import config_pb2, manifest_pb2
from ampmesh.platform.v1 import (
    connections_pb2,
    installations_pb2,
    installations_pb2_grpc,
)
from google.protobuf import empty_pb2, json_format, struct_pb2

from services.api.auth import Principal, ProjectRow, is_uuid
from services.api.common import (
    abort_conflict,
    abort_invalid,
    abort_missing,
    timestamp,
    with_times,
)
from services.api.context import ApiContext
from services.api.platform import connections, integrations
from services.api.reads import InstallationFacts, ReadsUnavailable, abort_reads_unavailable
from services.api.stored import INSTALLATION_KIND, config_content
from services.domain.manifest import (
    MAPPED_NAME_RULE,
    NAME_RULE,
    READ_SCHEDULE_MIN_MINUTES,
    backfill_problems,
    is_field_name,
    is_mapped_name,
    schedule_problem,
    suggestion,
)
from services.runtime.errors import abort_not_found
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

KIND = INSTALLATION_KIND
CREATE_AUTHOR = "api:create-installation"
UPDATE_AUTHOR = "api:update-installation"
PATCH_AUTHOR = "api:patch-config-content"
SECTIONS = ("read", "write", "subscribe")
_CONTENT = "config.content."
# The update masks the reference allows; "<section>.objects.<name>" takes any object name.
FIXED_MASKS = (
    "connectionId",
    "config.createdBy",
    "config.content.write.objects",
    "config.content.subscribe.objects",
    "config.content.proxy.enabled",
)
OBJECT_MASKS = tuple(f"{_CONTENT}{s}.objects." for s in SECTIONS)
ALLOWED_MASKS = (*FIXED_MASKS, *(f"{m}<objectName>" for m in OBJECT_MASKS))
# The connections columns an installation's response shows, selected as cn_<name>
# by _SELECT.
_CONNECTION_COLUMNS = (
    "id",
    "project_id",
    "provider",
    "provider_app_id",
    "group_ref",
    "group_name",
    "consumer_ref",
    "consumer_name",
    "provider_workspace_ref",
    "provider_metadata",
    "auth_scheme",
    "status",
    "created_at",
    "updated_at",
)
_SELECT = """
    SELECT i.*, c.id AS config_id, c.revision_id, c.created_by AS config_created_by,
           c.content, c.created_at AS config_created_at,
           cn.id AS cn_id, cn.project_id AS cn_project_id, cn.provider AS cn_provider,
           cn.provider_app_id AS cn_provider_app_id, cn.group_ref AS cn_group_ref,
           cn.group_name AS cn_group_name, cn.consumer_ref AS cn_consumer_ref,
           cn.consumer_name AS cn_consumer_name,
           cn.provider_workspace_ref AS cn_provider_workspace_ref,
           cn.provider_metadata AS cn_provider_metadata, cn.auth_scheme AS cn_auth_scheme,
           cn.status AS cn_status, cn.created_at AS cn_created_at,
           cn.updated_at AS cn_updated_at
    FROM installations i
    LEFT JOIN LATERAL (
        SELECT id, revision_id, created_by, content, created_at FROM configs
        WHERE installation_id = i.id ORDER BY created_at DESC, id DESC LIMIT 1
    ) c ON true
    LEFT JOIN connections cn ON cn.id = i.connection_id
"""


content_message = config_content


def content_json(content: config_pb2.ConfigContent) -> str:
    return json.dumps(json_format.MessageToDict(content), sort_keys=True)


def to_message(row: asyncpg.Record) -> installations_pb2.Installation:
    installation = installations_pb2.Installation(
        id=str(row["id"]),
        project_id=str(row["project_id"]),
        integration_id=str(row["integration_id"]),
        group=connections_pb2.Group(
            group_ref=row["group_ref"],
            group_name=row["group_name"] or row["group_ref"],
            project_id=str(row["project_id"]),
            create_time=timestamp(row["created_at"]),
        ),
        health_status=row["health_status"],
        created_by=row["created_by"],
    )
    with_times(installation, row["created_at"], row["updated_at"])
    # Left out until an operation has run (the reference allows only its three values).
    if row["last_operation_status"]:
        installation.last_operation_status = row["last_operation_status"]
    if row["cn_id"] is not None:  # None too when the connection was deleted since
        installation.connection.CopyFrom(
            connections.to_message({name: row[f"cn_{name}"] for name in _CONNECTION_COLUMNS})
        )
    if row["config_id"] is not None:
        installation.config.CopyFrom(
            config_pb2.Config(
                id=str(row["config_id"]),
                revision_id=str(row["revision_id"]),
                create_time=timestamp(row["config_created_at"]),
                created_by=row["config_created_by"],
                content=content_message(row["content"]),
            )
        )
    return installation


# --- config content against a revision -------------------------------------------------


@dataclass
class ContentChecker:
    """Problems of a ConfigContent (or of the parts of it named) against the integration's
    latest revision, keyed by REST field names under `at`."""

    revision: manifest_pb2.Integration
    destinations: Collection[str]
    at: str
    problems: dict[str, str]

    def declared(self, section: str) -> set[str]:
        owner = getattr(self.revision, section)
        return {o.object_name for o in owner.objects}

    def check_provider(self, content: config_pb2.ConfigContent) -> None:
        if content.provider and content.provider != self.revision.provider:
            self.problems[f"{self.at}provider"] = (
                f"is {content.provider!r} but the integration's provider is "
                f"{self.revision.provider!r}"
            )

    def check_proxy(self, content: config_pb2.ConfigContent) -> None:
        if content.proxy.enabled and not self.revision.proxy.enabled:
            self.problems[f"{self.at}proxy.enabled"] = (
                "the integration does not enable proxy; add proxy.enabled to its manifest"
            )

    def check_object(self, section: str, key: str, value: Any) -> None:
        at = f"{self.at}{section}.objects.{key}"
        declared = self.declared(section)
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none"
            self.problems[at] = (
                f"the integration's latest revision declares no {section} object {key!r}"
                f"{suggestion(key, declared)} (declared: {known})"
            )
            return
        if value.object_name != key:
            self.problems[f"{at}.objectName"] = (
                f"is required and must be the object's key {key!r}"
                if not value.object_name
                else f"is {value.object_name!r} but the object's key is {key!r}"
            )
        getattr(self, f"_check_{section}")(at, value)

    def check_section(self, content: config_pb2.ConfigContent, section: str) -> None:
        for key, value in getattr(content, section).objects.items():
            self.check_object(section, key, value)

    def check_all(self, content: config_pb2.ConfigContent) -> None:
        self.check_provider(content)
        for section in SECTIONS:
            self.check_section(content, section)
        self.check_proxy(content)

    def _destination(self, at: str, name: str, *, required: bool) -> None:
        if not name:
            if required:
                self.problems[at] = "is required: the name of a destination of the project"
        elif name not in self.destinations:
            self.problems[at] = (
                f"the project has no destination named {name!r}"
                f"{suggestion(name, self.destinations)}"
            )

    def _field_names(self, at: str, names: Iterable[str]) -> None:
        bad = [n for n in names if not is_field_name(n)]
        if bad:
            self.problems[at] = f"{', '.join(map(repr, bad))}: field names {NAME_RULE}"

    def _filters(self, at: str, filters: Iterable[config_pb2.ReadFilter]) -> None:
        seen: set[str] = set()
        for index, condition in enumerate(filters):
            here = f"{at}[{index}]"
            if not is_field_name(condition.field_name):
                self.problems[f"{here}.fieldName"] = f"is required; field names {NAME_RULE}"
            elif condition.field_name in seen:
                self.problems[f"{here}.fieldName"] = (
                    f"{condition.field_name!r} already has a condition (at most one per field)"
                )
            seen.add(condition.field_name)
            if condition.operator != "eq":
                self.problems[f"{here}.operator"] = f"must be 'eq' (found {condition.operator!r})"
            kind = condition.value.WhichOneof("kind")
            if kind not in ("string_value", "bool_value", "number_value"):
                self.problems[f"{here}.value"] = "must be a string, a boolean or a number"

    def _check_read(self, at: str, read: config_pb2.ReadConfigObject) -> None:
        if read.schedule:
            why = schedule_problem(read.schedule, READ_SCHEDULE_MIN_MINUTES)
            if why:
                self.problems[f"{at}.schedule"] = why
        self._destination(f"{at}.destination", read.destination, required=False)
        self._field_names(f"{at}.selectedFields", read.selected_fields)
        bad_names = [n for n in read.selected_field_mappings if not is_mapped_name(n)]
        if bad_names:
            self.problems[f"{at}.selectedFieldMappings"] = (
                f"{', '.join(map(repr, bad_names))}: names {MAPPED_NAME_RULE}"
            )
        self._field_names(f"{at}.selectedFieldMappings", read.selected_field_mappings.values())
        for field, mapping in read.selected_value_mappings.items():
            if any(v.WhichOneof("kind") != "string_value" for v in mapping.fields.values()):
                self.problems[f"{at}.selectedValueMappings.{field}"] = (
                    "must map each value to a string"
                )
        if read.selected_fields_auto not in ("", "all"):
            self.problems[f"{at}.selectedFieldsAuto"] = (
                f"must be 'all' or left out (found {read.selected_fields_auto!r})"
            )
        if read.HasField("backfill"):
            if not read.backfill.HasField("default_period"):
                self.problems[f"{at}.backfill.defaultPeriod"] = (
                    "is required: days (0 or more) or fullHistory: true"
                )
            else:
                for below, why in backfill_problems(read.backfill.default_period).items():
                    self.problems[
                        f"{at}.backfill.defaultPeriod" + (f".{below}" if below else "")
                    ] = why
            self._filters(f"{at}.backfill.fieldFilters", read.backfill.field_filters)
        self._filters(f"{at}.fieldFilters", read.field_filters)

    def _check_write(self, at: str, write: config_pb2.WriteConfigObject) -> None:
        if write.HasField("deletion_settings") and not write.deletion_settings.HasField("enabled"):
            self.problems[f"{at}.deletionSettings.enabled"] = "is required: true or false"
        for field, setting in write.selected_field_settings.items():
            here = f"{at}.selectedFieldSettings.{field}"
            if not is_field_name(field):
                self.problems[here] = f"field names {NAME_RULE}"
            if setting.write_on_create not in ("", "always", "never"):
                self.problems[f"{here}.writeOnCreate"] = (
                    f"must be 'always' or 'never' (found {setting.write_on_create!r})"
                )
            if setting.write_on_update not in ("", "always", "never", "ifEmpty"):
                self.problems[f"{here}.writeOnUpdate"] = (
                    f"must be 'always', 'never' or 'ifEmpty' (found {setting.write_on_update!r})"
                )
            if setting.HasField("default") and setting.default.WhichOneof("value") is None:
                self.problems[f"{here}.default"] = (
                    "must set one of stringValue, integerValue and booleanValue"
                )
        for field, default in write.selected_value_defaults.items():
            if not _legacy_default_ok(default):
                self.problems[f"{at}.selectedValueDefaults.{field}"] = (
                    "must be a string, or {value: string|integer|boolean, "
                    "applyOnUpdate: 'always'|'never'}"
                )

    def _check_subscribe(self, at: str, sub: config_pb2.SubscribeConfigObject) -> None:
        self._destination(f"{at}.destination", sub.destination, required=True)
        if not sub.HasField("inherit_fields_and_mappings"):
            self.problems[f"{at}.inheritFieldsAndMappings"] = "is required: true or false"
        for event in ("create_event", "update_event", "delete_event"):
            if sub.HasField(event) and getattr(sub, event).enabled not in ("always", "never"):
                name = event.split("_")[0] + "Event"
                self.problems[f"{at}.{name}.enabled"] = (
                    f"must be 'always' or 'never' (found {getattr(sub, event).enabled!r})"
                )
        update = sub.update_event
        if update.watch_fields_auto not in ("", "all"):
            self.problems[f"{at}.updateEvent.watchFieldsAuto"] = (
                f"must be 'all' or left out (found {update.watch_fields_auto!r})"
            )
        self._field_names(f"{at}.updateEvent.requiredWatchFields", update.required_watch_fields)
        if sub.provider_options.quota_optimization.enabled and (
            not update.required_watch_fields or update.watch_fields_auto == "all"
        ):
            self.problems[f"{at}.providerOptions.quotaOptimization.enabled"] = (
                "needs updateEvent.requiredWatchFields and excludes watchFieldsAuto 'all'"
            )


def _legacy_default_ok(value: struct_pb2.Value) -> bool:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return True
    if kind != "struct_value":
        return False
    fields = value.struct_value.fields
    inner = fields.get("value")
    apply = fields.get("applyOnUpdate")
    if set(fields) - {"value", "applyOnUpdate"} or inner is None:
        return False
    if inner.WhichOneof("kind") not in ("string_value", "number_value", "bool_value"):
        return False
    return apply is None or apply.string_value in ("always", "never")


# --- JSON Patch (RFC 6902: add, remove, replace) -----------------------------------------


class PatchError(ValueError):
    pass


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"{path!r} is not a JSON Pointer (it must start with '/')")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _index(container: list[Any], step: str, *, allow_end: bool) -> int:
    if allow_end and step == "-":
        return len(container)
    if not step.isdigit() or (step != "0" and step.startswith("0")):
        raise PatchError(f"{step!r} is not an array index")
    index = int(step)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"index {index} is out of range")
    return index


def apply_json_patch(document: Any, operations: Iterable[tuple[str, str, Any]]) -> Any:
    """document with the operations (op, path, value) applied in order; PatchError
    naming the first that cannot be."""
    for op, path, value in operations:
        tokens = _pointer(path)
        if op not in ("add", "remove", "replace"):
            raise PatchError(f"op must be add, remove or replace (found {op!r})")
        if not tokens:
            if op == "remove":
                raise PatchError("the whole document cannot be removed")
            document = value
            continue
        parent = document
        for token in tokens[:-1]:
            if isinstance(parent, dict) and token in parent:
                parent = parent[token]
            elif isinstance(parent, list):
                parent = parent[_index(parent, token, allow_end=False)]
            else:
                raise PatchError(f"{path!r}: {token!r} does not exist")
        last = tokens[-1]
        if isinstance(parent, dict):
            if op != "add" and last not in parent:
                raise PatchError(f"{path!r} does not exist")
            if op == "remove":
                del parent[last]
            else:
                parent[last] = value
        elif isinstance(parent, list):
            index = _index(parent, last, allow_end=op == "add")
            if op == "add":
                parent.insert(index, value)
            elif op == "remove":
                del parent[index]
            else:
                parent[index] = value
        else:
            raise PatchError(f"{path!r}: the parent is not an object or an array")
    return document


# --- the service ---------------------------------------------------------------------------


class Installations(installations_pb2_grpc.InstallationServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _integration(
        self, context: Any, project: ProjectRow, integration_id: str
    ) -> asyncpg.Record:
        row = await integrations.find(self.ctx.pool, project.id, integration_id)
        if row is None:
            await abort_missing(context, integrations.KIND, integration_id)
        return row

    async def _installation(
        self,
        context: Any,
        conn: asyncpg.Connection | asyncpg.Pool,
        principal: Principal,
        integration: asyncpg.Record,
        installation_id: str,
        *,
        for_update: bool = False,
    ) -> asyncpg.Record:
        row = None
        if is_uuid(installation_id):
            lock = " FOR UPDATE OF i" if for_update else ""
            row = await conn.fetchrow(
                f"{_SELECT} WHERE i.integration_id = $1 AND i.id = $2{lock}",
                integration["id"],
                uuid.UUID(installation_id),
            )
        if row is None:
            await abort_missing(context, KIND, installation_id)
        await self.ctx.auth.require_group(
            context, principal, row["group_ref"], kind=KIND, name=installation_id
        )
        return row

    async def _group_filter(
        self, context: Any, principal: Principal, group_ref: str | None
    ) -> str | None:
        if group_ref is not None:
            await self.ctx.auth.require_group(context, principal, group_ref)
            return group_ref
        return principal.group_ref

    # --- reading ---------------------------------------------------------------------

    async def ListInstallations(
        self,
        request: installations_pb2.ListInstallationsRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.ListInstallationsResponse:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        group = await self._group_filter(
            context, principal, request.group_ref if request.HasField("group_ref") else None
        )
        rows = await self.ctx.pool.fetch(
            f"{_SELECT} WHERE i.integration_id = $1 AND ($2::text IS NULL OR i.group_ref = $2) "
            "ORDER BY i.created_at, i.id",
            integration["id"],
            group,
        )
        return installations_pb2.ListInstallationsResponse(
            installations=[to_message(r) for r in rows]
        )

    async def ListInstallationsForProject(
        self,
        request: installations_pb2.ListInstallationsForProjectRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.ListInstallationsForProjectResponse:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        group = await self._group_filter(
            context, principal, request.group_ref if request.HasField("group_ref") else None
        )
        rows = await self.ctx.pool.fetch(
            f"{_SELECT} WHERE i.project_id = $1 AND ($2::text IS NULL OR i.group_ref = $2) "
            "ORDER BY i.created_at, i.id",
            uuid.UUID(project.id),
            group,
        )
        return installations_pb2.ListInstallationsForProjectResponse(
            installations=[to_message(r) for r in rows]
        )

    async def GetInstallation(
        self, request: installations_pb2.GetInstallationRequest, context: grpc.aio.ServicerContext
    ) -> installations_pb2.Installation:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        row = await self._installation(
            context, self.ctx.pool, principal, integration, request.installation_id
        )
        return to_message(row)

    # --- the connection an installation uses ------------------------------------------

    async def _named_connection(
        self,
        context: Any,
        project: ProjectRow,
        integration: asyncpg.Record,
        group_ref: str,
        connection_id: str,
        at: str,
        problems: dict[str, str],
    ) -> uuid.UUID | None:
        """connection_id if it names a connection of group_ref to the integration's
        provider; else None, with the reason in problems[at]."""
        row = None
        if is_uuid(connection_id):
            row = await self.ctx.pool.fetchrow(
                "SELECT id, provider, group_ref FROM connections WHERE project_id = $1 AND id = $2",
                uuid.UUID(project.id),
                uuid.UUID(connection_id),
            )
        # Another group's connection is described as missing: its existence is not the
        # caller's to learn (a customer JWT sees only its own group).
        if row is None or row["group_ref"] != group_ref:
            problems[at] = f"names no connection of group {group_ref!r}"
            return None
        if row["provider"] != integration["provider"]:
            problems[at] = (
                f"names a {row['provider']} connection; integration {integration['name']!r} "
                f"needs a {integration['provider']} connection"
            )
            return None
        found: uuid.UUID = row["id"]
        return found

    async def _connection(
        self,
        context: Any,
        project: ProjectRow,
        integration: asyncpg.Record,
        group_ref: str,
        connection_id: str,
        at: str,
    ) -> uuid.UUID:
        """The connection a new installation uses: the one named, or the group's only
        connection to the integration's provider; INVALID_ARGUMENT naming at otherwise."""
        problems: dict[str, str] = {}
        if connection_id:
            found = await self._named_connection(
                context, project, integration, group_ref, connection_id, at, problems
            )
            if found is None:
                await abort_invalid(context, problems)
            return found
        provider = integration["provider"]
        ids = await self.ctx.pool.fetch(
            "SELECT id FROM connections WHERE project_id = $1 AND group_ref = $2 "
            "AND provider = $3 ORDER BY created_at, id",
            uuid.UUID(project.id),
            group_ref,
            provider,
        )
        if len(ids) != 1:
            why = (
                f"group {group_ref!r} has no {provider} connection: connect one first "
                "(oauth-connect or connections:generate)"
                if not ids
                else f"group {group_ref!r} has {len(ids)} {provider} connections: name one"
            )
            await abort_invalid(context, {at: f"is required: {why}"})
        only: uuid.UUID = ids[0]["id"]
        return only

    # --- changing --------------------------------------------------------------------

    async def CreateInstallation(
        self,
        request: installations_pb2.CreateInstallationRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.Installation:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        given = request.installation
        problems: dict[str, str] = {}
        if not given.group_ref.strip():
            problems["body.groupRef"] = "is required: your identifier of the customer group"
        else:
            await self.ctx.auth.require_group(context, principal, given.group_ref)
        if not given.HasField("config") or not given.config.HasField("content"):
            problems["body.config.content"] = "is required: the installation's initial config"
        if problems:
            await abort_invalid(context, problems)
        connection_id = await self._connection(
            context,
            project,
            integration,
            given.group_ref,
            given.connection_id,
            "body.connectionId",
        )
        content = config_pb2.ConfigContent()
        content.CopyFrom(given.config.content)
        content.provider = content.provider or integration["provider"]
        revision = integrations.content_message(integration["content"])
        destinations = await integrations.destination_names(self.ctx.pool, project.id)
        checker = ContentChecker(revision, destinations, "body.config.content.", {})
        checker.check_all(content)
        if checker.problems:
            await abort_invalid(context, checker.problems)
        created_by = given.config.created_by or (
            f"consumer:{principal.consumer_ref}" if principal.consumer_ref else CREATE_AUTHOR
        )
        try:
            async with self.ctx.pool.acquire() as conn, conn.transaction():
                installation_id = await conn.fetchval(
                    "INSERT INTO installations (project_id, integration_id, group_ref, "
                    "group_name, created_by, connection_id) VALUES ($1, $2, $3, $3, $4, $5) "
                    "RETURNING id",
                    uuid.UUID(project.id),
                    integration["id"],
                    given.group_ref,
                    created_by,
                    connection_id,
                )
                await self._save_config(
                    conn, installation_id, integration["revision_id"], created_by, content
                )
                await self._reads_follow(
                    context, conn, project, integration, installation_id, connection_id, content
                )
        except asyncpg.UniqueViolationError:
            await abort_conflict(
                context,
                f"group {given.group_ref!r} already has an installation of integration "
                f"{integration['name']!r}",
            )
        row = await self._installation(
            context, self.ctx.pool, principal, integration, str(installation_id)
        )
        return to_message(row)

    async def UpdateInstallation(
        self,
        request: installations_pb2.UpdateInstallationRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.Installation:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        masks = await self._check_masks(context, request.update.update_mask)
        patch = request.update.installation
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            row = await self._installation(
                context, conn, principal, integration, request.installation_id, for_update=True
            )
            content = (
                content_message(row["content"]) if row["content"] else config_pb2.ConfigContent()
            )
            problems: dict[str, str] = {}
            created_by = UPDATE_AUTHOR
            config_changed = False
            revision = integrations.content_message(integration["content"])
            destinations = await integrations.destination_names(conn, project.id)
            checker = ContentChecker(
                revision, destinations, "body.installation.config.content.", problems
            )
            given = patch.config.content
            connection_id: uuid.UUID | None = None
            for mask in masks:
                if mask == "connectionId":
                    if not patch.connection_id:
                        problems["body.installation.connectionId"] = (
                            "is required by the mask: the connection to use"
                        )
                    else:
                        connection_id = await self._named_connection(
                            context,
                            project,
                            integration,
                            row["group_ref"],
                            patch.connection_id,
                            "body.installation.connectionId",
                            problems,
                        )
                    continue
                config_changed = True
                if mask == "config.createdBy":
                    if not patch.config.created_by:
                        problems["body.installation.config.createdBy"] = "is required by the mask"
                    created_by = patch.config.created_by
                elif mask == "config.content.proxy.enabled":
                    if not given.proxy.HasField("enabled"):
                        problems["body.installation.config.content.proxy.enabled"] = (
                            "is required by the mask: true or false"
                        )
                    content.proxy.enabled = given.proxy.enabled
                    checker.check_proxy(content)
                elif mask in (f"{_CONTENT}write.objects", f"{_CONTENT}subscribe.objects"):
                    section = mask.split(".")[2]
                    if not given.HasField(section):
                        problems[f"body.installation.{mask}"] = (
                            "is required by the mask (an empty map removes every object)"
                        )
                    getattr(content, section).CopyFrom(getattr(given, section))
                    checker.check_section(content, section)
                else:
                    section, _, name = mask[len(_CONTENT) :].partition(".objects.")
                    objects = getattr(given, section).objects
                    if name not in objects:
                        problems[f"body.installation.{mask}"] = (
                            f"is required by the mask: installation.config.content.{section}."
                            f"objects holds no {name!r}"
                        )
                        continue
                    getattr(content, section).objects[name].CopyFrom(objects[name])
                    checker.check_object(section, name, objects[name])
            if problems:
                await abort_invalid(context, problems)
            if connection_id is not None:
                await conn.execute(
                    "UPDATE installations SET connection_id = $2, updated_at = clock_timestamp() "
                    "WHERE id = $1",
                    row["id"],
                    connection_id,
                )
            if config_changed:
                await self._save_config(
                    conn, row["id"], integration["revision_id"], created_by, content
                )
            if config_changed or connection_id is not None:
                await self._reads_follow(
                    context,
                    conn,
                    project,
                    integration,
                    row["id"],
                    connection_id or row["connection_id"],
                    content,
                )
            row = await self._installation(
                context, conn, principal, integration, request.installation_id
            )
        return to_message(row)

    async def DeleteInstallation(
        self,
        request: installations_pb2.DeleteInstallationRequest,
        context: grpc.aio.ServicerContext,
    ) -> empty_pb2.Empty:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        row = await self._installation(
            context, self.ctx.pool, principal, integration, request.installation_id
        )
        # Its configs and read state go with it (ON DELETE CASCADE). The connection stays:
        # the group may use it for other integrations, and only its owner deletes it.
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            if self.ctx.reads is not None:
                try:
                    await self.ctx.reads.installation_deleted(conn, str(row["id"]))
                except ReadsUnavailable as error:
                    await abort_reads_unavailable(context, error)
            await conn.execute("DELETE FROM installations WHERE id = $1", row["id"])
        return empty_pb2.Empty()

    async def PatchObjectConfigContent(
        self,
        request: installations_pb2.PatchObjectConfigContentRequest,
        context: grpc.aio.ServicerContext,
    ) -> installations_pb2.Installation:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration = await self._integration(context, project, request.integration_id)
        problems: dict[str, str] = {}
        if bool(request.group_ref) == bool(request.installation_id):
            problems["body.groupRef"] = "set exactly one of groupRef and installationId"
        if request.action not in SECTIONS:
            problems["body.action"] = f"must be one of {', '.join(SECTIONS)}"
        if not request.changes:
            problems["body.changes"] = "is required: at least one JSON Patch operation"
        if problems:
            await abort_invalid(context, problems)
        section, name = request.action, request.object_name
        async with self.ctx.pool.acquire() as conn, conn.transaction():
            installation_id = request.installation_id
            if request.group_ref:
                await self.ctx.auth.require_group(context, principal, request.group_ref)
                found = await conn.fetchval(
                    "SELECT id FROM installations WHERE integration_id = $1 AND group_ref = $2",
                    integration["id"],
                    request.group_ref,
                )
                if found is None:
                    await abort_not_found(
                        context,
                        KIND,
                        request.group_ref,
                        f"group {request.group_ref!r} has no installation of integration "
                        f"{integration['name']!r}",
                    )
                installation_id = str(found)
            row = await self._installation(
                context, conn, principal, integration, installation_id, for_update=True
            )
            content = (
                content_message(row["content"]) if row["content"] else config_pb2.ConfigContent()
            )
            stored = json_format.MessageToDict(content)
            objects = stored.setdefault(section, {}).setdefault("objects", {})
            current = objects.get(name, {"objectName": name})
            operations = [
                (c.op, c.path, json_format.MessageToDict(c.value) if c.HasField("value") else None)
                for c in request.changes
            ]
            try:
                patched = apply_json_patch(current, operations)
                objects[name] = patched
                content = json_format.ParseDict(stored, config_pb2.ConfigContent())
            except PatchError as error:
                await abort_invalid(context, {"body.changes": str(error)})
            except json_format.ParseError as error:
                await abort_invalid(
                    context,
                    {"body.changes": f"the patched {section} config is not valid: {error}"},
                )
            revision = integrations.content_message(integration["content"])
            destinations = await integrations.destination_names(conn, project.id)
            checker = ContentChecker(revision, destinations, "", {})
            checker.check_object(section, name, getattr(content, section).objects[name])
            if checker.problems:
                # The operations are the body's only field; each problem names where in
                # the patched config it is.
                listed = "; ".join(f"{k}: {v}" for k, v in checker.problems.items())
                await abort_invalid(
                    context, {"body.changes": f"the patched config is not valid: {listed}"}
                )
            await self._save_config(
                conn, row["id"], integration["revision_id"], PATCH_AUTHOR, content
            )
            await self._reads_follow(
                context, conn, project, integration, row["id"], row["connection_id"], content
            )
            row = await self._installation(context, conn, principal, integration, installation_id)
        return to_message(row)

    # --- helpers ---------------------------------------------------------------------

    @staticmethod
    async def _check_masks(context: Any, update_mask: Iterable[str]) -> tuple[str, ...]:
        masks = tuple(update_mask)
        if not masks:
            await abort_invalid(
                context, {"body.updateMask": f"is required: a list of {', '.join(ALLOWED_MASKS)}"}
            )
        unknown = [
            m
            for m in masks
            if m not in FIXED_MASKS
            and not any(m.startswith(p) and len(m) > len(p) for p in OBJECT_MASKS)
        ]
        if unknown:
            await abort_invalid(
                context,
                {
                    "body.updateMask": f"{', '.join(unknown)} cannot be updated (allowed: "
                    f"{', '.join(ALLOWED_MASKS)})"
                },
            )
        return masks

    async def _reads_follow(
        self,
        context: Any,
        conn: asyncpg.Connection,
        project: ProjectRow,
        integration: asyncpg.Record,
        installation_id: uuid.UUID,
        connection_id: uuid.UUID | None,
        content: config_pb2.ConfigContent,
    ) -> None:
        """Start, schedule or stop the installation's reads to match the config just
        saved, in the same transaction (UNAVAILABLE, with nothing saved, when Temporal
        cannot be reached)."""
        if self.ctx.reads is None:
            return
        facts = InstallationFacts(
            project_id=project.id,
            integration_id=str(integration["id"]),
            installation_id=str(installation_id),
            connection_id=str(connection_id or ""),
            provider=integration["provider"],
        )
        revision = integrations.content_message(integration["content"])
        try:
            await self.ctx.reads.installation_saved(
                conn, facts, content, revision, created_at=await conn.fetchval("SELECT now()")
            )
        except ReadsUnavailable as error:
            await abort_reads_unavailable(context, error)

    @staticmethod
    async def _save_config(
        conn: asyncpg.Connection,
        installation_id: uuid.UUID,
        revision_id: uuid.UUID,
        created_by: str,
        content: config_pb2.ConfigContent,
    ) -> None:
        # clock_timestamp, not now(): the newest config is the one with the latest time,
        # even when one transaction saves two.
        await conn.execute(
            "INSERT INTO configs (installation_id, revision_id, created_by, content, created_at) "
            "VALUES ($1, $2, $3, $4::jsonb, clock_timestamp())",
            installation_id,
            revision_id,
            created_by,
            content_json(content),
        )
        await conn.execute(
            "UPDATE installations SET updated_at = clock_timestamp() WHERE id = $1",
            installation_id,
        )


def service(ctx: ApiContext) -> Service:
    return partially_built(
        installations_pb2.DESCRIPTOR.services_by_name["InstallationService"],
        installations_pb2_grpc.add_InstallationServiceServicer_to_server,
        Installations(ctx),
        "",
    )
