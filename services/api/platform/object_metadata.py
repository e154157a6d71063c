"""Object metadata (ObjectMetadataService): an object's fields in a customer's instance,
and custom fields created or updated there, through the group's installation of an
integration or the group's connection to a provider.

Reading is open to every principal of the project that may see the group (an install UI
shows fields to the customer); upserting changes the customer's instance, so only builders
(`full` keys) may. An installation lookup accepts the object's mapped name (the
manifest's mapToName) as well as its native one. Descriptions come through
services/api/field_metadata.py (cached per connection and object); an upsert drops the
cached description of every object it touches. Each field definition is parsed strictly
and checked before anything is sent to the provider: one issue per problem, named
`body.fields.<object>[<i>].<field>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import grpc
from ampmesh.platform.v1 import object_metadata_pb2 as om
from ampmesh.platform.v1 import object_metadata_pb2_grpc
from google.protobuf import json_format, struct_pb2

from services.api.auth import Principal, ProjectRow
from services.api.common import abort_invalid, abort_missing
from services.api.context import ApiContext
from services.api.field_metadata import describe, require_connector
from services.api.provider_calls import call_provider
from services.api.stored import INSTALLATION_KIND, INTEGRATION_KIND, find_integration
from services.api.stored import integration_content as revision_content
from services.domain.connectors.base import ProviderAuth
from services.domain.connectors.metadata import (
    FieldOutcome,
    MetadataConnector,
    ObjectDescription,
    definition_problems,
)
from services.runtime.errors import abort_with_reason
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built


def object_message(
    described: ObjectDescription, name: str, mapped: str, exclude_read_only: bool
) -> om.ObjectMetadata:
    answer = om.ObjectMetadata(
        name=name, display_name=described.display_name, mapped_object_name=mapped
    )
    for key, field in described.fields.items():
        if not (exclude_read_only and field.read_only):
            answer.fields[key].CopyFrom(field)
    return answer


def native_object(content: str, name: str) -> tuple[str, str]:
    """(native name, mapped name) of an object an integration's revision names, by either
    name; the name itself (unmapped) when the revision does not read it."""
    revision = revision_content(content)
    for entry in revision.read.objects:
        if entry.HasField("map_to_name") and entry.map_to_name == name:
            return entry.object_name, entry.map_to_name
    for entry in revision.read.objects:
        if entry.object_name.lower() == name.lower():
            return entry.object_name, entry.map_to_name
    return name, ""


class ObjectMetadata(object_metadata_pb2_grpc.ObjectMetadataServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    # --- finding the connection ------------------------------------------------------

    async def _installation(
        self,
        context: Any,
        principal: Principal,
        project: ProjectRow,
        integration_id: str,
        group_ref: str,
        at: str,
    ) -> tuple[asyncpg.Record, asyncpg.Record]:
        """The integration (with its latest revision) and the group's installation's
        connection; `at` names where the request gave the group."""
        await self._require_group_ref(context, group_ref, at)
        integration = await find_integration(self.ctx.pool, project.id, integration_id)
        if integration is None:
            await abort_missing(context, INTEGRATION_KIND, integration_id)
        await self.ctx.auth.require_group(context, principal, group_ref)
        found = await self.ctx.pool.fetchrow(
            "SELECT i.id AS installation_id, cn.* FROM installations i "
            "LEFT JOIN connections cn ON cn.id = i.connection_id "
            "WHERE i.integration_id = $1 AND i.group_ref = $2",
            integration["id"],
            group_ref,
        )
        if found is None:
            await abort_missing(context, INSTALLATION_KIND, f"of group {group_ref}")
        if found["id"] is None:
            # The installation outlived its connection (deleting a connection leaves its
            # installations): the customer must connect again.
            await abort_with_reason(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"the installation of group {group_ref!r} has no connection (it was "
                "deleted): connect again and set the installation's connectionId",
                "NO_CONNECTION",
            )
        return integration, found

    async def _connection(
        self,
        context: Any,
        principal: Principal,
        project: ProjectRow,
        provider: str,
        group: str,
        at: str,
    ) -> asyncpg.Record:
        """The group's newest connection to provider; `at` names where the request gave
        the group."""
        await self._require_group_ref(context, group, at)
        if provider not in self.ctx.catalog:
            await abort_invalid(context, {"path.provider": f"{provider!r} is not in the catalog"})
        await self.ctx.auth.require_group(context, principal, group)
        row = await self.ctx.pool.fetchrow(
            "SELECT * FROM connections WHERE project_id = $1 AND provider = $2 "
            "AND group_ref = $3 ORDER BY created_at DESC, id DESC LIMIT 1",
            uuid.UUID(project.id),
            provider,
            group,
        )
        if row is None:
            await abort_missing(context, "connection", f"{provider} of group {group}")
        return row

    @staticmethod
    async def _require_group_ref(context: Any, group_ref: str, at: str) -> None:
        if not group_ref.strip():
            await abort_invalid(context, {at: "is required: the group whose connection is used"})

    # --- reading ---------------------------------------------------------------------

    async def GetObjectMetadataForInstallation(
        self,
        request: om.GetObjectMetadataForInstallationRequest,
        context: grpc.aio.ServicerContext,
    ) -> om.ObjectMetadata:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        integration, connection = await self._installation(
            context, principal, project, request.integration_id, request.group_ref, "query.groupRef"
        )
        content = integration["content"] or "{}"
        native, mapped = native_object(content, request.object_name)
        described = await describe(
            self.ctx, context, project_id=project.id, connection=connection, object_name=native
        )
        assert described is not None  # missing_ok is off: a missing object aborted
        return object_message(described, native, mapped, request.exclude_read_only)

    async def GetObjectMetadataForConnection(
        self,
        request: om.GetObjectMetadataForConnectionRequest,
        context: grpc.aio.ServicerContext,
    ) -> om.ObjectMetadata:
        principal, project = await self.ctx.auth.caller(context, request.project_id_or_name)
        connection = await self._connection(
            context, principal, project, request.provider, request.group_ref, "query.groupRef"
        )
        described = await describe(
            self.ctx,
            context,
            project_id=project.id,
            connection=connection,
            object_name=request.object_name,
        )
        assert described is not None
        return object_message(described, request.object_name, "", request.exclude_read_only)

    # --- upserting -------------------------------------------------------------------

    async def UpsertMetadataForInstallation(
        self,
        request: om.UpsertMetadataForInstallationRequest,
        context: grpc.aio.ServicerContext,
    ) -> om.UpsertMetadataResponse:
        principal, project = await self.ctx.auth.builder_caller(context, request.project_id_or_name)
        integration, connection = await self._installation(
            context, principal, project, request.integration_id, request.group_ref, "body.groupRef"
        )
        content = integration["content"] or "{}"
        natives = {name: native_object(content, name)[0] for name in request.fields}
        return await self._upsert(context, project, connection, request.fields, natives)

    async def UpsertMetadataForConnection(
        self,
        request: om.UpsertMetadataForConnectionRequest,
        context: grpc.aio.ServicerContext,
    ) -> om.UpsertMetadataResponse:
        principal, project = await self.ctx.auth.builder_caller(context, request.project_id_or_name)
        connection = await self._connection(
            context, principal, project, request.provider, request.group_ref, "body.groupRef"
        )
        natives = {name: name for name in request.fields}
        return await self._upsert(context, project, connection, request.fields, natives)

    async def _upsert(
        self,
        context: Any,
        project: ProjectRow,
        connection: asyncpg.Record,
        fields: Mapping[str, struct_pb2.ListValue],
        natives: Mapping[str, str],
    ) -> om.UpsertMetadataResponse:
        connector = await require_connector(context, connection["provider"])
        definitions = await parse_definitions(context, connector, fields)
        answer = om.UpsertMetadataResponse(success=True)
        for object_name, wanted in definitions.items():
            native = natives[object_name]

            async def call(
                http: Any, auth: ProviderAuth, native: str = native, wanted: Any = wanted
            ) -> list[FieldOutcome]:
                return list(await connector.upsert(http, auth, native, wanted))

            try:
                outcomes = await call_provider(
                    self.ctx,
                    context,
                    project_id=project.id,
                    connection=connection,
                    call=call,
                    doing=f"upsert fields of {object_name!r}",
                )
            finally:
                # Even a failed upsert may have changed some fields.
                self.ctx.field_metadata.invalidate(str(connection["id"]), native)
            results = answer.fields[object_name]
            for given, outcome in zip(wanted, outcomes, strict=True):
                result = om.FieldUpsertResult(
                    field_name=outcome.field_name,
                    action=outcome.action,
                    warnings=outcome.warnings,
                )
                result.metadata.update(outcome.metadata)
                results.update({given.field_name: json_format.MessageToDict(result)})
        return answer


async def parse_definitions(
    context: Any, connector: MetadataConnector, fields: Mapping[str, struct_pb2.ListValue]
) -> dict[str, list[om.FieldDefinition]]:
    """Each object's definitions, parsed strictly and checked; INVALID_ARGUMENT naming
    every problem (nothing is sent to the provider) otherwise."""
    problems: dict[str, str] = {}
    parsed: dict[str, list[om.FieldDefinition]] = {}
    if not fields:
        await abort_invalid(
            context, {"body.fields": "is required: object name -> field definitions"}
        )
    for object_name, listed in fields.items():
        at = f"body.fields.{object_name}"
        entries = json_format.MessageToDict(listed)
        if not object_name.strip():
            problems["body.fields"] = "an object name is empty"
        if not entries:
            problems[at] = "lists no field definitions"
        seen: set[str] = set()
        parsed[object_name] = []
        for index, entry in enumerate(entries):
            where = f"{at}[{index}]"
            if not isinstance(entry, dict):
                problems[where] = "must be a field definition object"
                continue
            definition = om.FieldDefinition()
            try:
                json_format.ParseDict(entry, definition)
            except json_format.ParseError as error:
                problems[where] = str(error)
                continue
            found = {
                **definition_problems(definition),
                **connector.definition_problems(object_name, definition),
            }
            problems.update({f"{where}.{name}": why for name, why in found.items()})
            if definition.field_name.lower() in seen:
                problems[f"{where}.fieldName"] = f"{definition.field_name!r} is given twice"
            seen.add(definition.field_name.lower())
            parsed[object_name].append(definition)
    if problems:
        await abort_invalid(context, problems, "the field definitions cannot be upserted")
    return parsed


def service(ctx: ApiContext) -> Service:
    return partially_built(
        om.DESCRIPTOR.services_by_name["ObjectMetadataService"],
        object_metadata_pb2_grpc.add_ObjectMetadataServiceServicer_to_server,
        ObjectMetadata(ctx),
        "",
    )
