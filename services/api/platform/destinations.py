"""Destinations: where a project's notifications and read results are delivered.

Only webhooks are delivered to today; the reference's other types are refused as "not
supported yet" rather than stored and silently never delivered to. A webhook's URL must be
https (http only to loopback hosts, where the deployment allows it) and, in production
settings, must not resolve to a private, loopback, link-local or reserved address, so a
builder cannot point ampmesh's deliveries at the deployment's own network.

Every webhook destination gets a signing key on create, in the Standard Webhooks format
(`whsec_` + base64 of 32 random bytes). It is stored sealed and shown only by
GetDestination with includeSecrets=true, which can also rotate it.

What messenger reads (issue #6): `destinations.metadata` is the DestinationMetadata
message in its JSON mapping (`{"url": ..., "headers": {...}}`); `destinations.secrets_sealed`
opens with `services.domain.destination_secrets.open_secrets` to
`{"webhookSigningKey": "whsec_..."}`. It should re-check the URL with
`webhook_url_problem` before each delivery: DNS can change after create.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import grpc
from ampmesh.platform.v1 import destinations_pb2, destinations_pb2_grpc
from google.protobuf import empty_pb2, json_format

from services.api.auth import ProjectRow, is_uuid
from services.api.common import (
    abort_conflict,
    abort_invalid,
    abort_missing,
    check_update_mask,
    list_in_project,
    with_times,
)
from services.api.context import ApiContext, ApiPolicy
from services.domain.destination_secrets import open_secrets, seal_secrets
from services.domain.webhook_urls import webhook_url_problem
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

WEBHOOK = "webhook"
# The reference's other destination types: valid names, not delivered to yet.
NOT_SUPPORTED_YET = (
    "kinesis",
    "s3",
    "slack",
    "clickhouse",
    "snowflake",
    "bigquery",
    "redshift",
    "sqs",
    "pubsub",
    "rabbitmq",
    "azureservicebus",
)
# The reference: letters, numbers and dashes. A name that parses as a UUID is refused too,
# since paths take a destination's id or its name.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
NAME_RULE = "must be 1-64 letters, digits or dashes, starting with a letter or digit"
# DestinationMetadata keys (JSON names) that apply to webhooks.
WEBHOOK_METADATA = ("url", "headers")
UPDATABLE = ("name", "metadata", "metadata.url", "metadata.headers")

# Headers a delivery's sender owns: hop-by-hop ones, those describing the body it sends,
# and the Standard Webhooks signature, which a receiver must be able to trust.
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "expect",
        "host",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        *SIGNATURE_HEADERS,
    }
)
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token
HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # CR/LF would inject
MAX_HEADERS = 32
MAX_HEADER_VALUE = 4096
SIGNING_KEY_PREFIX = "whsec_"


# --- rules ------------------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    if not NAME.match(name):
        return NAME_RULE
    if is_uuid(name):
        return "must not be a UUID: paths take a destination's id or its name"
    return None


def type_problem(kind: str) -> str | None:
    if kind == WEBHOOK:
        return None
    if not kind:
        return f"is required ({WEBHOOK})"
    if kind in NOT_SUPPORTED_YET:
        return f"destinations of type {kind!r} are not supported yet: use {WEBHOOK!r}"
    known = ", ".join((WEBHOOK, *NOT_SUPPORTED_YET))
    return f"{kind!r} is not a destination type (one of {known})"


def webhook_header_problems(headers: Mapping[str, str], at: str) -> dict[str, str]:
    """Problems with a webhook's extra headers, each named `at.<header name>`."""
    if len(headers) > MAX_HEADERS:
        return {at: f"at most {MAX_HEADERS} headers"}
    problems: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        lower = name.lower()
        where = f"{at}.{name}"
        if not HEADER_NAME.match(name):
            problems[where] = "is not a valid HTTP header name"
        elif lower in SIGNATURE_HEADERS:
            problems[where] = "is set by ampmesh: it carries the delivery's signature"
        elif lower in FORBIDDEN_HEADERS or lower.startswith("proxy-"):
            problems[where] = "is set by ampmesh's HTTP client and cannot be overridden"
        elif lower in seen:
            problems[where] = "is given twice (header names are case-insensitive)"
        elif HEADER_VALUE_FORBIDDEN.search(value):
            problems[where] = "value must not contain line breaks or control characters"
        elif len(value) > MAX_HEADER_VALUE:
            problems[where] = f"value must be at most {MAX_HEADER_VALUE} characters"
        seen.add(lower)
    return problems


async def webhook_metadata_problems(
    metadata: destinations_pb2.DestinationMetadata,
    fields: tuple[str, ...],
    at: str,
    policy: ApiPolicy,
) -> dict[str, str]:
    """Problems with the given metadata keys (JSON names) of a webhook, named `at.<key>`."""
    problems: dict[str, str] = {}
    for descriptor, _ in metadata.ListFields():
        if descriptor.json_name not in WEBHOOK_METADATA and descriptor.json_name in fields:
            problems[f"{at}.{descriptor.json_name}"] = "does not apply to webhook destinations"
    if "url" in fields:
        why = await webhook_url_problem(metadata.url, policy)
        if why:
            problems[f"{at}.url"] = why
    if "headers" in fields:
        problems.update(webhook_header_problems(metadata.headers, f"{at}.headers"))
    return problems


# --- secrets ----------------------------------------------------------------------------


def new_signing_key() -> str:
    return SIGNING_KEY_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


# --- the service ------------------------------------------------------------------------


def _metadata(row: asyncpg.Record) -> destinations_pb2.DestinationMetadata:
    return json_format.ParseDict(
        json.loads(row["metadata"]),
        destinations_pb2.DestinationMetadata(),
        ignore_unknown_fields=True,
    )


def _metadata_json(metadata: destinations_pb2.DestinationMetadata) -> str:
    return json.dumps(json_format.MessageToDict(metadata))


def to_message(row: asyncpg.Record) -> destinations_pb2.Destination:
    return with_times(
        destinations_pb2.Destination(
            id=str(row["id"]), name=row["name"], type=row["type"], metadata=_metadata(row)
        ),
        row["created_at"],
        row["updated_at"],
    )


def _with_secrets(
    row: asyncpg.Record, signing_key: str | None
) -> destinations_pb2.DestinationWithSecrets:
    plain = to_message(row)
    revealed = destinations_pb2.DestinationWithSecrets(
        id=plain.id,
        name=plain.name,
        type=plain.type,
        metadata=plain.metadata,
        create_time=plain.create_time,
    )
    if plain.HasField("update_time"):
        revealed.update_time.CopyFrom(plain.update_time)
    if signing_key is not None:
        revealed.secrets.webhook_signing_key = signing_key
    return revealed


def _match(id_or_name: str) -> tuple[uuid.UUID | None, str | None]:
    """Parameters $2 and $3 of `(id = $2 OR name = $3)` for a destination's id or name
    (names never parse as UUIDs)."""
    if is_uuid(id_or_name):
        return uuid.UUID(id_or_name), None
    return None, id_or_name


async def find_destination(
    pool: asyncpg.Pool, project_id: str, id_or_name: str
) -> asyncpg.Record | None:
    """The project's destination with this id or name, or None."""
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT * FROM destinations WHERE project_id = $1 AND (id = $2 OR name = $3)",
        uuid.UUID(project_id),
        *_match(id_or_name),
    )
    return row


class Destinations(destinations_pb2_grpc.DestinationServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _find(self, context: Any, project: ProjectRow, id_or_name: str) -> asyncpg.Record:
        row = await find_destination(self.ctx.pool, project.id, id_or_name)
        if row is None:
            await abort_missing(context, "destination", id_or_name)
        return row

    async def CreateDestination(
        self, request: destinations_pb2.CreateDestinationRequest, context: grpc.aio.ServicerContext
    ) -> destinations_pb2.Destination:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        destination = request.destination
        problems: dict[str, str] = {}
        if why := name_problem(destination.name):
            problems["body.name"] = why
        if why := type_problem(destination.type):
            problems["body.type"] = why
        else:
            problems.update(
                await webhook_metadata_problems(
                    destination.metadata,
                    tuple(f.json_name for f in destination.metadata.DESCRIPTOR.fields),
                    "body.metadata",
                    self.ctx.policy,
                )
            )
            for descriptor, _ in destination.secrets.ListFields():
                problems[f"body.secrets.{descriptor.json_name}"] = (
                    "does not apply to webhook destinations (ampmesh generates their signing key)"
                )
        if problems:
            await abort_invalid(context, problems)
        destination_id = str(uuid.uuid4())
        sealed = seal_secrets(
            self.ctx.secrets, destination_id, {"webhookSigningKey": new_signing_key()}
        )
        try:
            row = await self.ctx.pool.fetchrow(
                "INSERT INTO destinations (id, project_id, name, type, metadata, "
                "secrets_sealed, secrets_key_id) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) "
                "RETURNING *",
                uuid.UUID(destination_id),
                uuid.UUID(project.id),
                destination.name,
                destination.type,
                _metadata_json(destination.metadata),
                sealed.data,
                sealed.key_id,
            )
        except asyncpg.UniqueViolationError:
            await abort_conflict(context, f"a destination named {destination.name!r} exists")
        return to_message(row)

    async def ListDestinations(
        self, request: destinations_pb2.ListDestinationsRequest, context: grpc.aio.ServicerContext
    ) -> destinations_pb2.ListDestinationsResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        rows = await list_in_project(self.ctx.pool, "destinations", project)
        return destinations_pb2.ListDestinationsResponse(destinations=[to_message(r) for r in rows])

    async def GetDestination(
        self, request: destinations_pb2.GetDestinationRequest, context: grpc.aio.ServicerContext
    ) -> destinations_pb2.DestinationWithSecrets:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        if request.rotate and not request.include_secrets:
            # Rotating without seeing the new key would leave the receivers unable to
            # verify anything until another call reveals it.
            await abort_invalid(
                context, {"query.rotate": "needs includeSecrets=true, to receive the new key"}
            )
        row = await self._find(context, project, request.destination_id_or_name)
        if not request.include_secrets:
            return _with_secrets(row, None)
        if request.rotate:
            signing_key = new_signing_key()
            sealed = seal_secrets(
                self.ctx.secrets, str(row["id"]), {"webhookSigningKey": signing_key}
            )
            row = await self.ctx.pool.fetchrow(
                "UPDATE destinations SET secrets_sealed = $3, secrets_key_id = $4, "
                "updated_at = now() WHERE project_id = $1 AND id = $2 RETURNING *",
                uuid.UUID(project.id),
                row["id"],
                sealed.data,
                sealed.key_id,
            )
            if row is None:  # deleted meanwhile
                await abort_missing(context, "destination", request.destination_id_or_name)
            return _with_secrets(row, signing_key)
        stored = open_secrets(
            self.ctx.secrets, str(row["id"]), row["secrets_key_id"], row["secrets_sealed"]
        )
        return _with_secrets(row, stored.get("webhookSigningKey", ""))

    async def UpdateDestination(
        self, request: destinations_pb2.UpdateDestinationRequest, context: grpc.aio.ServicerContext
    ) -> destinations_pb2.Destination:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        fields = await check_update_mask(context, request.update_mask, UPDATABLE)
        current = await self._find(context, project, request.destination_id_or_name)
        given = request.destination
        problems: dict[str, str] = {}
        name = current["name"]
        if "name" in fields:
            name = given.name
            if why := name_problem(name):
                problems["body.destination.name"] = why
        metadata = _metadata(current)
        if "metadata" in fields:
            # The whole metadata replaced: checked as on create.
            metadata.CopyFrom(given.metadata)
            keys = tuple(f.json_name for f in metadata.DESCRIPTOR.fields)
        else:
            keys = tuple(p.removeprefix("metadata.") for p in fields if p.startswith("metadata."))
            if "url" in keys:
                metadata.url = given.metadata.url
            if "headers" in keys:
                metadata.ClearField("headers")
                metadata.headers.update(given.metadata.headers)
        problems.update(
            await webhook_metadata_problems(
                metadata, keys, "body.destination.metadata", self.ctx.policy
            )
        )
        if problems:
            await abort_invalid(context, problems)
        try:
            row = await self.ctx.pool.fetchrow(
                "UPDATE destinations SET name = $3, metadata = $4::jsonb, updated_at = now() "
                "WHERE project_id = $1 AND id = $2 RETURNING *",
                uuid.UUID(project.id),
                current["id"],
                name,
                _metadata_json(metadata),
            )
        except asyncpg.UniqueViolationError:
            await abort_conflict(context, f"a destination named {name!r} exists")
        if row is None:  # deleted meanwhile
            await abort_missing(context, "destination", request.destination_id_or_name)
        return to_message(row)

    async def DeleteDestination(
        self, request: destinations_pb2.DeleteDestinationRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        deleted = await self.ctx.pool.fetchval(
            "DELETE FROM destinations WHERE project_id = $1 AND (id = $2 OR name = $3) "
            "RETURNING id",
            uuid.UUID(project.id),
            *_match(request.destination_id_or_name),
        )
        if deleted is None:
            await abort_missing(context, "destination", request.destination_id_or_name)
        return empty_pb2.Empty()


def service(ctx: ApiContext) -> Service:
    return partially_built(
        destinations_pb2.DESCRIPTOR.services_by_name["DestinationService"],
        destinations_pb2_grpc.add_DestinationServiceServicer_to_server,
        Destinations(ctx),
        "",
    )
