"""JWT keys of a project: the RSA public keys that verify the customer JWTs a builder signs
(services/api/auth.py verifies them). Register, list, get, rename or (de)activate, delete.

Registering parses the PEM with `cryptography` and keeps a normalized copy (the
SubjectPublicKeyInfo form, whichever of the PEM forms was sent). Only RSA keys of 2048 to
8192 bits: smaller ones can be factored, larger ones make each verification a chore a
caller could impose on us. Builder-only, as everything that configures a project.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
from ampmesh.platform.v1 import jwt_keys_pb2, jwt_keys_pb2_grpc
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from google.protobuf import empty_pb2

from services.api.auth import ProjectRow
from services.api.common import (
    abort_invalid,
    abort_missing,
    check_update_mask,
    find_in_project,
    timestamp,
)
from services.api.context import ApiContext
from services.runtime.server import Service
from services.runtime.unimplemented import partially_built

# The reference's create request says RS256; its key objects say RSA. Both are accepted
# and the key is stored as "RSA" (tokens are verified as RS256 whatever was sent).
ACCEPTED_ALGORITHMS = ("RS256", "RSA")
STORED_ALGORITHM = "RSA"
MIN_BITS = 2048
MAX_BITS = 8192
MAX_LABEL = 255
# "name" is the reference examples' spelling of label.
UPDATABLE = ("active", "label", "name")
KIND = "JWT key"


class KeyRefused(ValueError):
    """A public key we do not register; the message says why."""


def normalized_public_key(pem: str) -> str:
    """pem as a SubjectPublicKeyInfo PEM, if it is an RSA public key of an accepted size;
    KeyRefused otherwise."""
    try:
        key = load_pem_public_key(pem.strip().encode())
    except (ValueError, UnsupportedAlgorithm):
        raise KeyRefused(
            "is not a PEM public key: send the text from -----BEGIN PUBLIC KEY----- to "
            "-----END PUBLIC KEY-----"
        ) from None
    if not isinstance(key, RSAPublicKey):
        raise KeyRefused("must be an RSA public key (tokens are verified as RS256)")
    if not MIN_BITS <= key.key_size <= MAX_BITS:
        raise KeyRefused(f"is a {key.key_size}-bit RSA key; use {MIN_BITS} to {MAX_BITS} bits")
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def _label_problem(label: str) -> str | None:
    if not label.strip():
        return "is required: a name for the key, 1 to 255 characters"
    if len(label) > MAX_LABEL:
        return f"must be at most {MAX_LABEL} characters"
    return None


def to_message(row: asyncpg.Record) -> jwt_keys_pb2.JWTKey:
    key = jwt_keys_pb2.JWTKey(
        id=str(row["id"]),
        project_id=str(row["project_id"]),
        label=row["label"],
        algorithm=row["algorithm"],
        public_key_pem=row["public_key_pem"],
        active=row["active"],
        create_time=timestamp(row["created_at"]),
    )
    # The reference always has updateTime: until a first change, the creation time.
    key.update_time.CopyFrom(timestamp(row["updated_at"] or row["created_at"]))
    return key


class JwtKeys(jwt_keys_pb2_grpc.JwtKeyServiceServicer):
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _find(self, context: Any, project: ProjectRow, key_id: str) -> asyncpg.Record:
        return await find_in_project(context, self.ctx.pool, "jwt_keys", project, key_id, KIND)

    async def CreateJwtKey(
        self, request: jwt_keys_pb2.CreateJwtKeyRequest, context: grpc.aio.ServicerContext
    ) -> jwt_keys_pb2.CreateJwtKeyResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        label = request.label or (request.name if request.HasField("name") else "")
        problems: dict[str, str] = {}
        if why := _label_problem(label):
            problems["body.label"] = why
        if request.algorithm not in ACCEPTED_ALGORITHMS:
            problems["body.algorithm"] = (
                f"must be RS256 (got {request.algorithm!r})"
                if request.algorithm
                else "is required: RS256"
            )
        pem = ""
        try:
            pem = normalized_public_key(request.public_key_pem)
        except KeyRefused as refused:
            problems["body.publicKeyPem"] = (
                str(refused) if request.public_key_pem.strip() else "is required"
            )
        if problems:
            await abort_invalid(context, problems)
        kid = await self.ctx.pool.fetchval(
            "INSERT INTO jwt_keys (project_id, label, algorithm, public_key_pem) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            uuid.UUID(project.id),
            label.strip(),
            STORED_ALGORITHM,
            pem,
        )
        return jwt_keys_pb2.CreateJwtKeyResponse(kid=str(kid))

    async def ListJwtKeys(
        self, request: jwt_keys_pb2.ListJwtKeysRequest, context: grpc.aio.ServicerContext
    ) -> jwt_keys_pb2.ListJwtKeysResponse:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        only_active = request.HasField("active") and request.active
        rows = await self.ctx.pool.fetch(
            "SELECT * FROM jwt_keys WHERE project_id = $1 AND (active OR NOT $2) "
            "ORDER BY created_at, id",
            uuid.UUID(project.id),
            only_active,
        )
        return jwt_keys_pb2.ListJwtKeysResponse(jwt_keys=[to_message(r) for r in rows])

    async def GetJwtKey(
        self, request: jwt_keys_pb2.GetJwtKeyRequest, context: grpc.aio.ServicerContext
    ) -> jwt_keys_pb2.JWTKey:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        return to_message(await self._find(context, project, request.key_id))

    async def UpdateJwtKey(
        self, request: jwt_keys_pb2.UpdateJwtKeyRequest, context: grpc.aio.ServicerContext
    ) -> jwt_keys_pb2.JWTKey:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        current = await self._find(context, project, request.key_id)
        fields = await check_update_mask(context, request.update_mask, UPDATABLE)
        wanted = request.jwt_key
        label, active = current["label"], current["active"]
        if "label" in fields or "name" in fields:
            # Either spelling, whichever the body carries.
            label = wanted.label or (wanted.name if wanted.HasField("name") else "")
            field = "label" if "label" in fields else "name"
            if why := _label_problem(label):
                await abort_invalid(context, {f"body.jwtKey.{field}": why})
        if "active" in fields:
            if not wanted.HasField("active"):
                await abort_invalid(
                    context, {"body.jwtKey.active": "is required when updateMask names it"}
                )
            active = wanted.active
        row = await self.ctx.pool.fetchrow(
            "UPDATE jwt_keys SET label = $2, active = $3, updated_at = now() "
            "WHERE id = $1 RETURNING *",
            current["id"],
            label.strip(),
            active,
        )
        if row is None:  # deleted meanwhile
            await abort_missing(context, KIND, request.key_id)
        return to_message(row)

    async def DeleteJwtKey(
        self, request: jwt_keys_pb2.DeleteJwtKeyRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        project = await self.ctx.auth.builder_project(context, request.project_id_or_name)
        current = await self._find(context, project, request.key_id)
        await self.ctx.pool.execute("DELETE FROM jwt_keys WHERE id = $1", current["id"])
        return empty_pb2.Empty()


def service(ctx: ApiContext) -> Service:
    return partially_built(
        jwt_keys_pb2.DESCRIPTOR.services_by_name["JwtKeyService"],
        jwt_keys_pb2_grpc.add_JwtKeyServiceServicer_to_server,
        JwtKeys(ctx),
        "",
    )
