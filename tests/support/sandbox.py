"""The provider sandbox as tests drive it: its OAuth client and user, its HTTP paths,
protobuf time helpers, seeding records, tokens from its OAuth server, and a control client
of the stack's sandbox."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from google.protobuf import duration_pb2, timestamp_pb2

from services.runtime.channels import mesh_channel
from tests.support.stack import Stack


@dataclass(frozen=True)
class SandboxProcess:
    """A sandbox started as its own process (tests/sandbox/conftest.py)."""

    grpc_address: str
    http_url: str
    log_path: Path


# The OAuth client and the user the sandbox knows (services/sandbox/settings.py).
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"
USERNAME, PASSWORD = "sandbox-user", "sandbox-password"

HS, SF = sandbox_pb2.PROVIDER_HUBSPOT, sandbox_pb2.PROVIDER_SALESFORCE
HS_TOKEN, SF_TOKEN = "/hubspot/oauth/v1/token", "/salesforce/services/oauth2/token"
CONTACTS = "/hubspot/crm/v3/objects/contacts"
SF_QUERY = "/salesforce/services/data/v59.0/query"
REDIRECT = "http://127.0.0.1:9/callback"
UNTIL = datetime(2026, 11, 1, tzinfo=UTC)


def timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    message = timestamp_pb2.Timestamp()
    message.FromDatetime(moment)
    return message


def duration(seconds: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(seconds=seconds))
    return message


async def seed_records(
    control: Any, provider: sandbox_pb2.Provider, name: str, count: int, seed: int = 7
) -> Any:
    return await control.SeedRecords(
        sandbox_pb2.SeedRecordsRequest(
            provider=provider,
            object_name=name,
            count=count,
            seed=seed,
            modified_from=timestamp(UTC_START),
            modified_until=timestamp(UNTIL),
            replace=True,
        )
    )


UTC_START = UNTIL - timedelta(days=10)


async def token_request(http: httpx.AsyncClient, path: str, **form: str) -> httpx.Response:
    return await http.post(path, data=form, auth=(CLIENT_ID, CLIENT_SECRET))


async def client_token(http: httpx.AsyncClient, path: str = HS_TOKEN) -> str:
    response = await token_request(http, path, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def password_tokens(http: httpx.AsyncClient, path: str = HS_TOKEN) -> dict[str, Any]:
    response = await token_request(
        http, path, grant_type="password", username=USERNAME, password=PASSWORD
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# The token endpoint of each sandboxed catalog provider.
TOKEN_PATHS = {"hubspot": HS_TOKEN, "salesforce": SF_TOKEN}


async def sandbox_connection(
    stack: Stack,
    http: httpx.AsyncClient,
    provider: str,
    group: str,
    *,
    expires_in: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A connection of group (http: the API rooted at the project) holding fresh sandbox
    tokens (password grant), and the tokens; expires_in overrides when the stored access
    token expires (negative: already expired, so the token-manager refreshes it)."""
    async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as sandbox:
        tokens = await password_tokens(sandbox, TOKEN_PATHS[provider])
    seconds = int(tokens["expires_in"]) if expires_in is None else expires_in
    expires = datetime.now(UTC) + timedelta(seconds=seconds)
    created = await http.post(
        "/connections:generate",
        json={
            "provider": provider,
            "groupRef": group,
            "consumerRef": f"{group}-user",
            "oauth2AuthorizationCode": {
                "accessToken": {
                    "token": tokens["access_token"],
                    "expiresAt": expires.isoformat().replace("+00:00", "Z"),
                },
                "refreshToken": {"token": tokens["refresh_token"]},
            },
        },
    )
    assert created.status_code == 201, created.text
    connection: dict[str, Any] = created.json()
    return connection, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def controlling(stack: Stack) -> AsyncIterator[sandbox_pb2_grpc.SandboxControlServiceStub]:
    """A control client of the stack's sandbox; the faults injected meanwhile are cleared
    when the block ends."""
    channel = mesh_channel(
        stack.endpoints["sandbox"], stack.credentials("tests"), server_identity="sandbox"
    )
    async with channel:
        control = sandbox_pb2_grpc.SandboxControlServiceStub(channel)
        yield control
        await control.ClearFaults(sandbox_pb2.ClearFaultsRequest())
