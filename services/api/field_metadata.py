"""Live field metadata of a customer's objects, fetched through one of their connections
and cached for a while: what hydrated revisions and the object-metadata RPCs both read.

An install UI asks for the same objects again and again while a customer configures an
installation (the hydrated revision, then each object's metadata), and the provider's
answer changes rarely (a custom field added), so each (connection, object) description is
kept for a lifetime (AMPMESH_FIELD_METADATA_TTL_SECONDS, 300 by default; 0 turns the
cache off). The cache is in process (cachetools' TTLCache): each api replica keeps its
own, so a replica may answer a description up to one lifetime old, and an upsert through
ampmesh drops only the entry of the replica that made it. That is the reference's
behaviour too (metadata is read live, caching is best effort); a shared cache would need
a Redis client the api does not have.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc
from ampmesh.platform.v1 import object_metadata_pb2 as om
from cachetools import TTLCache

from services.api.context import ApiContext
from services.api.provider_calls import call_provider
from services.domain.connectors.base import ProviderAuth, ProviderRequestError
from services.domain.connectors.metadata import MetadataConnector, ObjectDescription
from services.domain.connectors.metadata_registry import metadata_connector_for, supported
from services.runtime.errors import abort_with_details, error_info

DEFAULT_TTL_SECONDS = 300.0
# Entries kept at most (oldest first out): one per connection and object described.
MAX_ENTRIES = 10_000


class FieldMetadataCache:
    """Object descriptions by (connection id, object name), each for ttl seconds."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL_SECONDS,
        maxsize: int = MAX_ENTRIES,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._entries: TTLCache[tuple[str, str], ObjectDescription] | None = (
            TTLCache(maxsize=maxsize, ttl=ttl, timer=timer) if ttl > 0 else None
        )

    @staticmethod
    def _key(connection_id: str, object_name: str) -> tuple[str, str]:
        # Salesforce's object names are case-insensitive and HubSpot's lower-case, so an
        # upsert of "Account" drops what a describe of "account" cached.
        return connection_id, object_name.lower()

    def get(self, connection_id: str, object_name: str) -> ObjectDescription | None:
        if self._entries is None:
            return None
        return self._entries.get(self._key(connection_id, object_name))

    def put(self, connection_id: str, object_name: str, description: ObjectDescription) -> None:
        if self._entries is not None:
            self._entries[self._key(connection_id, object_name)] = description

    def invalidate(self, connection_id: str, object_name: str) -> None:
        if self._entries is not None:
            self._entries.pop(self._key(connection_id, object_name), None)


def _ttl_from_environment() -> float:
    raw = os.environ.get("AMPMESH_FIELD_METADATA_TTL_SECONDS", "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_TTL_SECONDS
    except ValueError:
        return DEFAULT_TTL_SECONDS


# The api process's cache, shared by every servicer (hydrate and object metadata).
CACHE = FieldMetadataCache(_ttl_from_environment())


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
    cached = CACHE.get(connection_id, object_name)
    if cached is not None:
        return cached
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
    if described is not None:
        CACHE.put(connection_id, object_name, described)
    return described


def find_field(description: ObjectDescription, name: str) -> om.FieldMetadata | None:
    """A field by its name as a manifest writes it (Salesforce's keys are lower-case)."""
    return description.fields.get(name) or description.fields.get(name.lower())
