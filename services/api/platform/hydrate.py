"""Hydrated revisions (IntegrationService.GetHydratedRevision): a revision of an
integration with the live metadata of one customer's instance, fetched through their
connection, which is what an install UI renders its configure screen from.

Per read object: the provider's display name of the object, the required and optional
fields with their display names, every field's metadata (allFieldsMetadata, and the
deprecated allFields list), and the manifest's destination, schedule, mapping and
backfill. Write objects get their display names; the proxy section is copied. An object
the customer's instance does not have gets its `error` (the rest of the revision still
hydrates); a connection the provider refuses, or a provider that is down, fails the call.

The connection must belong to the project, be visible to the caller (a customer JWT of
another group gets NOT_FOUND, as for the connection itself) and be one to the
integration's provider. Descriptions are shared with the object-metadata RPCs through
services/api/field_metadata.py's cache.
"""

from __future__ import annotations

import asyncio
import uuid

import grpc
from ampmesh.manifest.v1 import manifest_pb2
from ampmesh.platform.v1 import integrations_pb2

from services.api.common import abort_invalid, abort_missing, timestamp
from services.api.context import ApiContext
from services.api.field_metadata import describe, find_field
from services.api.platform.connection_rows import find_connection
from services.api.stored import INTEGRATION_KIND, find_integration, integration_content
from services.domain.connectors.metadata import ObjectDescription
from services.runtime.database import is_uuid

REVISION_KIND = "revision"


async def hydrated_revision(
    ctx: ApiContext,
    request: integrations_pb2.GetHydratedRevisionRequest,
    context: grpc.aio.ServicerContext,
) -> integrations_pb2.HydratedRevision:
    principal, project = await ctx.auth.caller(context, request.project_id_or_name)
    if not request.connection_id.strip():
        await abort_invalid(
            context,
            {"query.connectionId": "is required: the connection whose metadata hydrates it"},
        )
    integration = await find_integration(ctx.pool, project.id, request.integration_id)
    if integration is None:
        await abort_missing(context, INTEGRATION_KIND, request.integration_id)
    connection = await find_connection(ctx, context, principal, project, request.connection_id)
    if connection["provider"] != integration["provider"]:
        await abort_invalid(
            context,
            {
                "query.connectionId": f"is a connection to {connection['provider']}; the "
                f"integration {integration['name']!r} is for {integration['provider']}"
            },
        )
    revision = None
    if is_uuid(request.revision_id):
        revision = await ctx.pool.fetchrow(
            "SELECT id, spec_version, content, created_at FROM revisions "
            "WHERE id = $1 AND integration_id = $2",
            uuid.UUID(request.revision_id),
            integration["id"],
        )
    if revision is None:
        await abort_missing(context, REVISION_KIND, request.revision_id)
    content = integration_content(revision["content"])

    # Every object the revision names, described at once: a UI waits on the slowest, not
    # on the sum (a manifest may read a dozen objects; each is a provider call uncached).
    names = list(
        dict.fromkeys(
            [o.object_name for o in content.read.objects]
            + [o.object_name for o in content.write.objects]
        )
    )
    tasks = [
        asyncio.ensure_future(
            describe(
                ctx,
                context,
                project_id=project.id,
                connection=connection,
                object_name=name,
                missing_ok=True,
            )
        )
        for name in names
    ]
    try:
        descriptions = dict(zip(names, await asyncio.gather(*tasks), strict=True))
    except BaseException:
        # The first failure answers the call (its abort); the others are stopped, and
        # their outcomes collected so none is left unretrieved.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    hydrated = integrations_pb2.HydratedIntegration(
        name=content.name,
        display_name=content.display_name,
        module=content.module,
        provider=content.provider,
    )
    if content.HasField("proxy"):
        hydrated.proxy.CopyFrom(content.proxy)
    if content.HasField("read"):
        hydrated.read.SetInParent()
        for entry in content.read.objects:
            description = descriptions[entry.object_name]
            hydrated.read.objects.append(read_object(entry, description))
    if content.HasField("write"):
        hydrated.write.SetInParent()
        for written in content.write.objects:
            description = descriptions[written.object_name]
            write = integrations_pb2.HydratedIntegrationWriteObject(
                object_name=written.object_name,
                display_name=description.display_name if description else written.object_name,
            )
            if written.HasField("value_defaults"):
                write.value_defaults.CopyFrom(written.value_defaults)
            hydrated.write.objects.append(write)
    return integrations_pb2.HydratedRevision(
        id=str(revision["id"]),
        spec_version=revision["spec_version"],
        create_time=timestamp(revision["created_at"]),
        content=hydrated,
    )


def read_object(
    entry: manifest_pb2.IntegrationReadObject, description: ObjectDescription | None
) -> integrations_pb2.HydratedIntegrationObject:
    """A manifest's read object with the instance's metadata of it (None: the instance
    has no such object, which the object's error says)."""
    hydrated = integrations_pb2.HydratedIntegrationObject(
        object_name=entry.object_name,
        display_name=description.display_name if description else entry.object_name,
        map_to_display_name=entry.map_to_display_name,
        destination=entry.destination,
        schedule=entry.schedule,
    )
    if description is None:
        hydrated.error = (
            f"object {entry.object_name!r} was not found in the customer's instance (it may "
            "not exist there, or the connection may not have access to it)"
        )
    if entry.HasField("map_to_name"):
        hydrated.map_to_name = entry.map_to_name
    if entry.HasField("optional_fields_auto"):
        hydrated.optional_fields_auto = entry.optional_fields_auto
    if entry.HasField("backfill"):
        hydrated.backfill.CopyFrom(entry.backfill)
    hydrated.required_fields.extend(field_entry(f, description) for f in entry.required_fields)
    hydrated.optional_fields.extend(field_entry(f, description) for f in entry.optional_fields)
    if entry.optional_fields_auto == "all" and description is not None:
        # "Let the customer pick any field": every field the instance has that the
        # manifest does not already list becomes an optional field (install UIs, the
        # reference's included, offer only optionalFields), in the order the provider
        # describes them.
        listed = {
            f.field_name.lower()
            for f in (*entry.required_fields, *entry.optional_fields)
            if f.field_name
        }
        hydrated.optional_fields.extend(
            integrations_pb2.HydratedIntegrationField(
                field_name=name, display_name=metadata.display_name
            )
            for name, metadata in description.fields.items()
            if name.lower() not in listed
        )
    if description is not None:
        for name, metadata in description.fields.items():
            hydrated.all_fields_metadata[name].CopyFrom(metadata)
            hydrated.all_fields.append(
                integrations_pb2.HydratedIntegrationField(
                    field_name=name, display_name=metadata.display_name
                )
            )
    return hydrated


def field_entry(
    given: manifest_pb2.IntegrationField, description: ObjectDescription | None
) -> integrations_pb2.HydratedIntegrationField:
    """A manifest's field entry with the provider's display name of its field (the
    field's own name when the instance does not describe it)."""
    entry = integrations_pb2.HydratedIntegrationField(map_to_display_name=given.map_to_display_name)
    if given.HasField("map_to_name"):
        entry.map_to_name = given.map_to_name
    if given.field_name:
        entry.field_name = given.field_name
        found = find_field(description, given.field_name) if description else None
        entry.display_name = found.display_name if found else given.field_name
    else:  # a mapping the customer picks the field of
        if given.HasField("default"):
            entry.default = given.default
        if given.HasField("prompt"):
            entry.prompt = given.prompt
    return entry
