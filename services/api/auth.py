"""Who is calling the public API, and which project they may touch.

Every platform RPC (but the providers catalog) starts with

    principal = await ctx.auth.authenticate(context)
    project = await ctx.auth.project(context, principal, request.project_id_or_name)

`authenticate` accepts an API key (`X-Api-Key`, or `?apiKey=` on the read and write hosts,
which the edge turns into that header) or a bearer JWT signed by one of the project's
registered JWT keys. `project` resolves an id or a name and answers NOT_FOUND, with the
same words, whether the project does not exist or belongs to someone else: a key of
project A cannot learn that project B exists.

API keys are `amp_<12 hex>_<43 url-safe chars>`. The first part (`amp_<12 hex>`) is the
key's public prefix: lists show it, and paths accept it as the key's id. The database keeps
only a SHA-256 of the whole key.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import asyncpg
import grpc

from services.runtime.errors import abort_not_found, abort_with_details, error_info

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"
KEY_PREFIX = "amp_"
# Scopes a key can hold. "full": everything in its project; an org admin key (no project)
# may also create projects and their keys.
FULL_SCOPE = "full"
DOMAIN = "api.ampmesh"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    org_id: str
    # None: an org admin key, which may act on every project of its org.
    project_id: str | None
    scopes: frozenset[str]
    # How it authenticated, for logs: "api-key:amp_1a2b…" or "jwt:<key id>".
    via: str
    # A customer JWT confines its bearer to one group (and consumer) of the project.
    group_ref: str | None = None
    consumer_ref: str | None = None

    @property
    def is_org_admin(self) -> bool:
        return self.project_id is None


@dataclass(frozen=True)
class ProjectRow:
    id: str
    org_id: str
    name: str
    app_name: str
    created_at: datetime
    updated_at: datetime | None = field(default=None)


@dataclass(frozen=True)
class NewApiKey:
    secret: str  # shown once, to whoever created it
    prefix: str
    digest: bytes


def new_api_key() -> NewApiKey:
    prefix = f"{KEY_PREFIX}{secrets.token_hex(6)}"
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(secret, prefix, key_digest(secret))


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def metadata_values(context: Any, name: str) -> list[str]:
    return [str(v) for k, v in (context.invocation_metadata() or ()) if k == name]


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def abort_unauthenticated(context: Any, message: str) -> NoReturn:
    await abort_with_details(
        context, grpc.StatusCode.UNAUTHENTICATED, message, error_info("UNAUTHENTICATED")
    )


async def abort_forbidden(context: Any, message: str) -> NoReturn:
    await abort_with_details(
        context, grpc.StatusCode.PERMISSION_DENIED, message, error_info("FORBIDDEN")
    )


class Authenticator:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def authenticate(self, context: Any) -> Principal:
        """The caller, or an UNAUTHENTICATED abort saying what is missing or wrong."""
        keys = metadata_values(context, API_KEY_HEADER)
        if keys:
            return await self._api_key(context, keys[0])
        for value in metadata_values(context, AUTHORIZATION_HEADER):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return await self._jwt(context, token.strip())
        await abort_unauthenticated(
            context, "this call needs an API key (X-Api-Key header) or a bearer JWT"
        )

    async def _api_key(self, context: Any, key: str) -> Principal:
        row = await self.pool.fetchrow(
            "SELECT org_id, project_id, scopes, active, prefix FROM api_keys "
            "WHERE secret_sha256 = $1",
            key_digest(key),
        )
        # One message for unknown and inactive keys; never the key itself.
        if row is None or not row["active"]:
            await abort_unauthenticated(context, "the API key is not valid or not active")
        project = row["project_id"]
        return Principal(
            org_id=str(row["org_id"]),
            project_id=str(project) if project is not None else None,
            scopes=frozenset(row["scopes"]),
            via=f"api-key:{row['prefix']}",
        )

    async def _jwt(self, context: Any, token: str) -> Principal:
        await abort_unauthenticated(context, "bearer JWTs are not accepted yet (issue #4)")

    async def project(
        self, context: Any, principal: Principal, project_id_or_name: str
    ) -> ProjectRow:
        """The project named in the request, if the principal may act on it; else
        NOT_FOUND (the same answer for a project that exists elsewhere)."""
        if not project_id_or_name:
            await abort_not_found(context, "project", "", "projectIdOrName is required")
        if is_uuid(project_id_or_name):
            row = await self.pool.fetchrow(
                "SELECT * FROM projects WHERE id = $1", uuid.UUID(project_id_or_name)
            )
        else:
            row = await self.pool.fetchrow(
                "SELECT * FROM projects WHERE lower(name) = lower($1)", project_id_or_name
            )
        if row is None or not self.may_see(principal, str(row["org_id"]), str(row["id"])):
            await abort_not_found(
                context,
                "project",
                project_id_or_name,
                f"project {project_id_or_name!r} not found",
            )
        return ProjectRow(
            id=str(row["id"]),
            org_id=str(row["org_id"]),
            name=row["name"],
            app_name=row["app_name"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @staticmethod
    def may_see(principal: Principal, org_id: str, project_id: str) -> bool:
        if principal.org_id != org_id:
            return False
        return principal.project_id is None or principal.project_id == project_id

    @staticmethod
    async def require_scope(context: Any, principal: Principal, needed: Iterable[str]) -> None:
        """PERMISSION_DENIED unless the principal holds one of the needed scopes."""
        wanted = set(needed)
        if principal.scopes & wanted or FULL_SCOPE in principal.scopes:
            return
        await abort_forbidden(
            context, f"this call needs one of the scopes {sorted(wanted)} ({principal.via})"
        )
