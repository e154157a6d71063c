"""Who is calling the public API, which project they may touch, and what they may do there.

Every platform RPC (but the providers catalog) starts with one of

    project = await ctx.auth.builder_project(context, request.project_id_or_name)
    principal, project = await ctx.auth.caller(context, request.project_id_or_name)

the first for calls only builders may make, the second for calls open to frontend
principals too. Both `authenticate` the caller, then resolve the `project` it names, so
nothing is read before the caller is known.

`authenticate` accepts an API key (`X-Api-Key`, or `?apiKey=` on the read and write hosts,
which the edge turns into that header) or a bearer JWT signed by one of the project's
registered JWT keys. `project` resolves an id or a name and answers NOT_FOUND, with the
same words, whether the project does not exist or belongs to someone else: a key of
project A cannot learn that project B exists.

API keys are `amp_<12 hex>_<43 url-safe chars>`. The first part (`amp_<12 hex>`) is the
key's public prefix: lists show it, and paths accept it as the key's id. The database keeps
only a SHA-256 of the whole key.

Scopes. A principal holds one or both of:

- `full`: everything in its project (an org admin key: in every project of its org, and
  creating projects). This is a builder's credential, used from the builder's servers.
- `frontend`: only what a browser embedding the connect UI needs: reading the project
  (its appName), listing its provider apps (never a secret), connections and the OAuth
  connect flow, and installations of a group.
  Everything that configures the project is builder-only and refused with
  PERMISSION_DENIED (403): changing projects, API keys, JWT keys, provider apps,
  destinations, topics, routes, integration deploys. Those RPCs start with
  `builder_project` (or `builder_caller`), which calls `require_builder` right after
  `project(...)`.

Customer JWTs (issued by the builder for one end user, signed RS256 with a private key whose
public half the project registered; header `kid` = that key's id) always authenticate as
`frontend`, and carry `groupRef` and `consumerRef`: such a principal may touch only its own
group. Servicers that take a group call `await ctx.auth.require_group(context, principal,
group_ref)` (NOT_FOUND for another group) and list with `principal.group_ref` as a filter.
A frontend API key (no group in it) may touch every group of its project, as in the
reference, where the connect UI names the group itself.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import asyncpg
import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from services.runtime.database import is_uuid
from services.runtime.errors import abort_not_found, abort_with_details, error_info

API_KEY_HEADER = "x-api-key"
AUTHORIZATION_HEADER = "authorization"
KEY_PREFIX = "amp_"
# amp_ + 12 hex: the public part of a key, its id in paths and lists.
PREFIX_LENGTH = len(KEY_PREFIX) + 12
FULL_SCOPE = "full"
FRONTEND_SCOPE = "frontend"
KNOWN_SCOPES = (FULL_SCOPE, FRONTEND_SCOPE)
DOMAIN = "api.ampmesh"

JWT_ALGORITHM = "RS256"
# The reference's limit: a customer token lives at most ten minutes (exp - iat).
MAX_JWT_LIFETIME_SECONDS = 600
# Clock skew tolerated between the builder's servers and ours, for exp and iat.
JWT_LEEWAY_SECONDS = 30
GROUP_REF_CLAIM = "groupRef"
CONSUMER_REF_CLAIM = "consumerRef"


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

    @property
    def is_builder(self) -> bool:
        """May configure the project (holds `full`), as opposed to a frontend caller."""
        return FULL_SCOPE in self.scopes


@dataclass(frozen=True)
class ProjectRow:
    id: str
    org_id: str
    name: str
    app_name: str
    created_at: datetime
    updated_at: datetime | None = field(default=None)

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> ProjectRow:
        return cls(
            id=str(row["id"]),
            org_id=str(row["org_id"]),
            name=row["name"],
            app_name=row["app_name"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


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


def grants(held: Iterable[str], wanted: Iterable[str]) -> bool:
    """Whether a holder of `held` scopes may hand out `wanted` ones: `full` covers every
    scope; otherwise only scopes it holds itself."""
    held = set(held)
    return FULL_SCOPE in held or set(wanted) <= held


def metadata_values(context: Any, name: str) -> list[str]:
    return [str(v) for k, v in (context.invocation_metadata() or ()) if k == name]


async def abort_unauthenticated(context: Any, message: str) -> NoReturn:
    await abort_with_details(
        context, grpc.StatusCode.UNAUTHENTICATED, message, error_info("UNAUTHENTICATED")
    )


async def abort_forbidden(context: Any, message: str) -> NoReturn:
    await abort_with_details(
        context, grpc.StatusCode.PERMISSION_DENIED, message, error_info("FORBIDDEN")
    )


class TokenRejected(Exception):
    """A customer JWT that is not accepted; the message says why, never quoting the token."""


@dataclass(frozen=True)
class CustomerClaims:
    group_ref: str
    consumer_ref: str


def token_key_id(token: str) -> str:
    """The `kid` header of a JWT, read before its signature is checked (it picks the key)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenRejected("the bearer token is not a well-formed JWT") from None
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected(
            "the bearer JWT has no kid header: set it to the id of the project's JWT key "
            "that signed it"
        )
    return kid


def verify_customer_jwt(token: str, public_key: RSAPublicKey | str) -> CustomerClaims:
    """The claims of a customer JWT signed RS256 by public_key's private half, or
    TokenRejected naming what is wrong.

    Only RS256 is allowed, so neither `alg: none` nor HS256 keyed with the public key's
    text can pass. `exp` and `iat` are required and at most ten minutes apart.
    """
    key = load_pem_public_key(public_key.encode()) if isinstance(public_key, str) else public_key
    if not isinstance(key, RSAPublicKey):
        raise TokenRejected("the JWT key registered under this kid is not an RSA key")
    try:
        claims: Mapping[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "iat"]},
            leeway=JWT_LEEWAY_SECONDS,
        )
    except jwt.InvalidAlgorithmError:
        raise TokenRejected(f"the bearer JWT must be signed with {JWT_ALGORITHM}") from None
    except jwt.InvalidSignatureError:
        raise TokenRejected(
            "the bearer JWT's signature does not verify with the key named by its kid"
        ) from None
    except jwt.ExpiredSignatureError:
        raise TokenRejected("the bearer JWT has expired (exp): issue a new one") from None
    except jwt.MissingRequiredClaimError as missing:
        raise TokenRejected(f"the bearer JWT lacks the {missing.claim} claim") from None
    except jwt.ImmatureSignatureError:
        raise TokenRejected(
            "the bearer JWT is not valid yet (iat or nbf is in the future)"
        ) from None
    except jwt.InvalidAudienceError:
        raise TokenRejected("the bearer JWT names an audience (aud); leave it out") from None
    except (jwt.InvalidIssuedAtError, jwt.DecodeError):
        raise TokenRejected(
            "the bearer JWT is malformed: exp, iat and nbf must be numbers (seconds since "
            "the epoch)"
        ) from None
    except jwt.InvalidTokenError:
        raise TokenRejected("the bearer JWT is not valid") from None
    # PyJWT has checked that both convert to integers (it accepts "123" as well as 123).
    if int(claims["exp"]) - int(claims["iat"]) > MAX_JWT_LIFETIME_SECONDS:
        raise TokenRejected(
            f"the bearer JWT lives too long: exp - iat must be at most "
            f"{MAX_JWT_LIFETIME_SECONDS} seconds"
        )
    refs: dict[str, str] = {}
    for claim in (GROUP_REF_CLAIM, CONSUMER_REF_CLAIM):
        value = claims.get(claim)
        if not isinstance(value, str) or not value.strip():
            raise TokenRejected(f"the bearer JWT lacks the {claim} claim (a non-empty string)")
        refs[claim] = value
    return CustomerClaims(refs[GROUP_REF_CLAIM], refs[CONSUMER_REF_CLAIM])


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
        try:
            kid = token_key_id(token)
        except TokenRejected as rejected:
            await abort_unauthenticated(context, str(rejected))
        row = None
        if is_uuid(kid):
            row = await self.pool.fetchrow(
                "SELECT k.project_id, k.public_key_pem, k.active, p.org_id FROM jwt_keys k "
                "JOIN projects p ON p.id = k.project_id WHERE k.id = $1",
                uuid.UUID(kid),
            )
        if row is None:
            await abort_unauthenticated(
                context, "the bearer JWT's kid names no JWT key registered with ampmesh"
            )
        if not row["active"]:
            await abort_unauthenticated(
                context, "the bearer JWT's kid names a JWT key that is not active"
            )
        try:
            claims = verify_customer_jwt(token, row["public_key_pem"])
        except TokenRejected as rejected:
            await abort_unauthenticated(context, str(rejected))
        return Principal(
            org_id=str(row["org_id"]),
            project_id=str(row["project_id"]),
            scopes=frozenset({FRONTEND_SCOPE}),
            via=f"jwt:{kid}",
            group_ref=claims.group_ref,
            consumer_ref=claims.consumer_ref,
        )

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
        return ProjectRow.from_record(row)

    async def caller(self, context: Any, project_id_or_name: str) -> tuple[Principal, ProjectRow]:
        """The caller and the project it names, for calls open to frontend principals."""
        principal = await self.authenticate(context)
        return principal, await self.project(context, principal, project_id_or_name)

    async def builder_caller(
        self, context: Any, project_id_or_name: str
    ) -> tuple[Principal, ProjectRow]:
        """As `caller`, for calls only builders may make: PERMISSION_DENIED for frontend
        principals, after NOT_FOUND for a project they may not see."""
        principal, project = await self.caller(context, project_id_or_name)
        await self.require_builder(context, principal)
        return principal, project

    async def builder_project(self, context: Any, project_id_or_name: str) -> ProjectRow:
        """The project of a call only builders may make (see `builder_caller`)."""
        _, project = await self.builder_caller(context, project_id_or_name)
        return project

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

    @staticmethod
    async def require_builder(context: Any, principal: Principal) -> None:
        """PERMISSION_DENIED unless the principal may configure its project (the `full`
        scope): frontend keys and customer JWTs may not. Call it after `project(...)`, so
        a caller of another project still gets NOT_FOUND."""
        if principal.is_builder:
            return
        await abort_forbidden(
            context,
            f"this call needs an API key with the {FULL_SCOPE!r} scope; {principal.via} "
            f"holds only {', '.join(sorted(principal.scopes)) or 'no scopes'}",
        )

    @staticmethod
    def sees_group(principal: Principal, group_ref: str | None) -> bool:
        """Whether the principal may see a resource of group_ref (None: of no group): a
        customer JWT only its own group's, every other principal all of its project's."""
        return principal.group_ref is None or principal.group_ref == group_ref

    @staticmethod
    async def require_group(
        context: Any,
        principal: Principal,
        group_ref: str,
        *,
        kind: str = "group",
        name: str | None = None,
    ) -> None:
        """NOT_FOUND unless the principal may touch group_ref: a customer JWT only its own
        group, every other principal every group of its project. kind and name say what
        was not found (e.g. kind="installation", name=<its id>); the group by default."""
        if Authenticator.sees_group(principal, group_ref):
            return
        shown = group_ref if name is None else name
        await abort_not_found(context, kind, shown, f"{kind} {shown!r} not found")
