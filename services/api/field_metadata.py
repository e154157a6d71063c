"""Live field metadata of a customer's objects, fetched through one of their connections
and cached for a while: what hydrated revisions and the object-metadata RPCs both read.

The cache is the api context's (services/api/metadata_cache.py says how long an entry
lives and why).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from ampmesh.platform.v1 import object_metadata_pb2 as om

from services.api.context import ApiContext
from services.api.provider_calls import call_provider
from services.domain.connectors.base import ProviderAuth, ProviderRequestError
from services.domain.connectors.metadata import MetadataConnector, ObjectDescription
from services.domain.connectors.metadata_registry import metadata_connector_for, supported
from services.runtime.errors import abort_with_details, error_info


async def require_connector(context: Any, provider: str) -> MetadataConnector:
    """The provider's metadata connector; FAILED_PRECONDITION when ampmesh has none."""
    connector = metadata_connector_for(provider)
    if connector is None:
        await abort_with_details(
            context,
            grpc.StatusCode.FAILED_PRECONDITION,
            f"object metadata of {provider!r} is not supported (it is for {supported()})",
            error_info("METADATA_NOT_SUPPORTED"),
        )
    return connector


async def describe(
    ctx: ApiContext,
    context: Any,
    *,
    project_id: str,
    connection: Mapping[str, Any],
    object_name: str,
    missing_ok: bool = False,
) -> ObjectDescription | None:
    """The object's description through the connection, from the cache when fresh.
    An object the provider does not have is None with missing_ok, else NOT_FOUND; other
    failures end the call as services/api/provider_calls.py says."""
    connection_id = str(connection["id"])
    cached = ctx.field_metadata.get(connection_id, object_name)
    if cached is not None:
        return cached
    if missing_ok and ctx.field_metadata.is_missing(connection_id, object_name):
        return None
    connector = await require_connector(context, str(connection["provider"]))

    async def call(http: Any, auth: ProviderAuth) -> ObjectDescription | None:
        try:
            return await connector.describe(http, auth, object_name)
        except ProviderRequestError as error:
            if missing_ok and error.status == 404:
                return None
            raise

    described = await call_provider(
        ctx,
        context,
        project_id=project_id,
        connection=connection,
        call=call,
        doing=f"describe object {object_name!r}",
    )
    ctx.field_metadata.put(connection_id, object_name, described)
    return described


def find_field(description: ObjectDescription, name: str) -> om.FieldMetadata | None:
    """A field by its name as a manifest writes it (Salesforce's keys are lower-case)."""
    return description.fields.get(name) or description.fields.get(name.lower())
