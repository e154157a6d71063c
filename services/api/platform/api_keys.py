"""API keys of a project: create (the secret is returned once, by create), list, get,
update label/active/scopes, delete.

Keys are builder credentials' business: every RPC needs a `full` principal (an org admin
key, or a `full` key of the project). A key is named in paths by its public prefix
(`amp_<12 hex>`) or by the whole key; responses other than create show only the prefix.
Scopes are `full` and `frontend` (services/api/auth.py says what each allows); a caller
may not hand out a scope it does not hold. Deleting or deactivating a key refuses it at
once: authentication reads the row on every call.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import grpc
from ampmesh.platform.v1 import api_keys_pb2, api_keys_pb2_grpc
from google.protobuf import empty_pb2

from services.api.auth import (
    FULL_SCOPE,
    KEY_PREFIX,
    KNOWN_SCOPES,
    PREFIX_LENGTH,
    Principal,
    ProjectRow,
    abort_forbidden,
    grants,
    key_digest,
    new_api_key,
)
from services.api.common import abort_invalid, abort_missing, check_update_mask
from services.api.context import ApiContext
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

UPDATABLE = ("active", "label", "scopes")
MAX_LABEL = 255
KIND = "API key"


def to_message(row: asyncpg.Record, key: str | None = None) -> api_keys_pb2.ApiKey:
    """key: the whole secret, only in the create response; the prefix otherwise."""
    return api_keys_pb2.ApiKey(
        key=key or row["prefix"],
        label=row["label"],
        scopes=list(row["scopes"]),
        project_id=str(row["project_id"]),
        active=row["active"],
    )


def _label_problem(label: str) -> str | None:
    if not label.strip():
        return "is required: a short name for the key"
    if len(label) > MAX_LABEL:
        return f"must be at most {MAX_LABEL} characters"
    return None


def _scopes_problem(scopes: Sequence[str]) -> str | None:
    unknown = sorted({s for s in scopes if s not in KNOWN_SCOPES})
    if unknown:
        return f"unknown scope {', '.join(map(repr, unknown))} (known: {', '.join(KNOWN_SCOPES)})"
    return None


def _distinct(scopes: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(scopes))


def _prefix_of(key: str) -> str | None:
    """The public prefix a path names, whether it gives the prefix or the whole key."""
    prefix = key[:PREFIX_LENGTH]
    if not prefix.startswith(KEY_PREFIX) or len(prefix) != PREFIX_LENGTH:
        return None
    if len(key) > PREFIX_LENGTH and key[PREFIX_LENGTH] != "_":
        return None
    return prefix


class ApiKeys(api_keys_pb2_grpc.ApiKeyServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _find(self, context: Any, project: ProjectRow, key: str) -> asyncpg.Record:
        """The key of project named by its prefix or its whole self; NOT_FOUND otherwise
        (a whole key whose secret part is wrong names no key)."""
        prefix = _prefix_of(key)
        row = None
        if prefix is not None:
            row = await self.ctx.pool.fetchrow(
                "SELECT * FROM api_keys WHERE project_id = $1 AND prefix = $2",
                uuid.UUID(project.id),
                prefix,
            )
        if row is None or (len(key) > PREFIX_LENGTH and row["secret_sha256"] != key_digest(key)):
            await abort_missing(context, KIND, prefix or key)
        return row

    @staticmethod
    async def _require_grantable(context: Any, principal: Principal, scopes: Sequence[str]) -> None:
        if not grants(principal.scopes, scopes):
            await abort_forbidden(
                context,
                f"{principal.via} cannot grant scopes it does not hold "
                f"({', '.join(sorted(set(scopes) - principal.scopes))})",
            )

    async def ListApiKeys(
        self, request: api_keys_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.ListApiKeysResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        only_active = request.HasField("active") and request.active
        rows = await self.ctx.pool.fetch(
            "SELECT * FROM api_keys WHERE project_id = $1 AND (active OR NOT $2) "
            "ORDER BY created_at, id",
            uuid.UUID(project.id),
            only_active,
        )
        return api_keys_pb2.ListApiKeysResponse(api_keys=[to_message(r) for r in rows])

    async def CreateApiKey(
        self, request: api_keys_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.ApiKey:
        principal, project = await self.ctx.auth.builder_caller(context, request.project_id_or_name)
        wanted = request.api_key
        # No scopes asked: a builder's key, as the reference's keys are by default.
        scopes = _distinct(wanted.scopes) or [FULL_SCOPE]
        problems = {
            f"body.{name}": why
            for name, why in (
                ("label", _label_problem(wanted.label)),
                ("scopes", _scopes_problem(scopes)),
            )
            if why
        }
        if problems:
            await abort_invalid(context, problems)
        await self._require_grantable(context, principal, scopes)
        key = new_api_key()
        row = await self.ctx.pool.fetchrow(
            "INSERT INTO api_keys (org_id, project_id, prefix, secret_sha256, label, scopes, "
            "active) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
            uuid.UUID(project.org_id),
            uuid.UUID(project.id),
            key.prefix,
            key.digest,
            wanted.label.strip(),
            scopes,
            wanted.active if wanted.HasField("active") else True,
        )
        return to_message(row, key=key.secret)

    async def GetApiKey(
        self, request: api_keys_pb2.GetApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.ApiKey:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        return to_message(await self._find(context, project, request.api_key))

    async def UpdateApiKey(
        self, request: api_keys_pb2.UpdateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.ApiKey:
        principal, project = await self.ctx.auth.builder_caller(context, request.project_id_or_name)
        current = await self._find(context, project, request.key)
        fields = await check_update_mask(context, request.update_mask, UPDATABLE)
        wanted = request.api_key
        problems: dict[str, str] = {}
        label, scopes, active = current["label"], list(current["scopes"]), current["active"]
        if "label" in fields:
            label = wanted.label.strip()
            if why := _label_problem(wanted.label):
                problems["body.apiKey.label"] = why
        if "scopes" in fields:
            scopes = _distinct(wanted.scopes)
            why = _scopes_problem(scopes) if scopes else "needs at least one scope"
            if why:
                problems["body.apiKey.scopes"] = why
        if "active" in fields:
            if wanted.HasField("active"):
                active = wanted.active
            else:
                problems["body.apiKey.active"] = "is required when updateMask names it"
        if problems:
            await abort_invalid(context, problems)
        if "scopes" in fields:
            await self._require_grantable(context, principal, scopes)
        row = await self.ctx.pool.fetchrow(
            "UPDATE api_keys SET label = $2, scopes = $3, active = $4, updated_at = now() "
            "WHERE id = $1 RETURNING *",
            current["id"],
            label,
            scopes,
            active,
        )
        if row is None:  # deleted meanwhile
            await abort_missing(context, KIND, current["prefix"])
        return to_message(row)

    async def DeleteApiKey(
        self, request: api_keys_pb2.DeleteApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        current = await self._find(context, project, request.api_key)
        await self.ctx.pool.execute("DELETE FROM api_keys WHERE id = $1", current["id"])
        return empty_pb2.Empty()


def service(ctx: ApiContext) -> Service:
    return partially_built(
        api_keys_pb2.DESCRIPTOR.services_by_name["ApiKeyService"],
        api_keys_pb2_grpc.add_ApiKeyServiceServicer_to_server,
        ApiKeys(ctx),
        "",
    )
