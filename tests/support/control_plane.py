"""What the control plane's tests share: unique names, problem+json checks, REST clients of
the edge, projects and keys made with the org admin key, the stack's database, and customer
JWTs signed as a builder's servers sign them."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.sandbox import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from tests.support.stack import Stack

# A webhook URL the local mesh accepts (loopback http) and nothing listens on.
HOOK = "http://127.0.0.1:9/ampmesh-hook"


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, patience: float = 20.0
) -> None:
    """Wait until `check` holds; the mesh's background work (scribe, reads) lands later
    than the request that started it."""
    deadline = time.monotonic() + patience
    while not await check():
        assert time.monotonic() < deadline, f"did not {what} within {patience} s"
        await asyncio.sleep(0.2)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """The 1-based line of the nth line of text containing needle."""
    return [n for n, line in enumerate(text.splitlines(), 1) if needle in line][nth - 1]


# --- REST through the edge -------------------------------------------------------------


def settled(installation: dict[str, Any]) -> dict[str, Any]:
    """An installation as shown, without its connection's updateTime: the connection is
    shown as it is now, and the token-manager's announcements may touch it between two
    reads of the same installation."""
    connection = {k: v for k, v in installation["connection"].items() if k != "updateTime"}
    return {**installation, "connection": connection}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem+json body of a refusal with status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


def issue_names(body: dict[str, Any]) -> set[str]:
    """A problem's issues as `<in>.<name>`, e.g. `body.name`."""
    return {f"{i['in']}.{i['name']}" for i in body.get("issues", [])}


def as_key(key: str) -> dict[str, str]:
    return {"X-Api-Key": key}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def client(
    stack: Stack, path: str = "", headers: Mapping[str, str] | None = None
) -> httpx.AsyncClient:
    """A REST client of the edge's api host, rooted at path (e.g. /v1/projects/x)."""
    return httpx.AsyncClient(
        base_url=f"{stack.endpoints['api']}{path}", headers=dict(headers or {}), timeout=20
    )


def admin_client(stack: Stack, path: str = "") -> httpx.AsyncClient:
    """As client, with the org admin key `ampmesh up` made."""
    return client(stack, path, as_key(stack.admin_api_key))


async def listed(http: httpx.AsyncClient, path: str, **query: str) -> list[dict[str, Any]]:
    """What GET path answers (a bare array, as the reference's lists are)."""
    response = await http.get(path, params=query)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


async def create_project(admin: httpx.AsyncClient, prefix: str, app_name: str) -> dict[str, Any]:
    """A new project named prefix-<random>, made with admin (a client at the API's root)."""
    created = await admin.post("/v1/projects", json={"name": unique(prefix), "appName": app_name})
    assert created.status_code == 201, created.text
    project: dict[str, Any] = created.json()
    return project


async def create_api_key(
    admin: httpx.AsyncClient, project: str, scopes: list[str], label: str = "test"
) -> str:
    """The secret of a new API key of project (its id or name) holding scopes."""
    created = await admin.post(
        f"/v1/projects/{project}/api-keys", json={"label": label, "scopes": scopes}
    )
    assert created.status_code == 201, created.text
    key: str = created.json()["key"]
    return key


# --- the stack's PostgreSQL ------------------------------------------------------------


def database_url(stack: Stack) -> str:
    postgres = next(c for c in stack.mesh.components if c.name == "postgres")
    url: str = postgres.database_url  # type: ignore[attr-defined]
    return url


async def database_dump(stack: Stack, url: str | None = None) -> str:
    """Everything a database of the stack's PostgreSQL holds (the mesh's unless url names
    another), as pg_dump writes it (data only)."""
    postgres: Any = next(c for c in stack.mesh.components if c.name == "postgres")
    process = await asyncio.create_subprocess_exec(
        str(postgres.binaries.bin_dir / "pg_dump"),
        "--data-only",
        "--dbname",
        url or postgres.database_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


def assert_not_logged(stack: Stack, *secrets: str) -> None:
    """No log of the mesh's services holds any of the secrets (the sandbox plays the
    provider: its logs are not ours)."""
    for log in (stack.home / "logs").glob("*.log"):
        if log.name != "sandbox.log":
            text = log.read_text(errors="replace")
            assert not [s for s in secrets if s in text], f"a secret is in {log.name}"


async def insert_webhook_destinations(stack: Stack, project_id: str, *names: str) -> None:
    """Webhook destination rows of the project: all a manifest's or a config's check needs
    of them (destinations are another service's, tested in test_destinations.py)."""
    connection = await asyncpg.connect(database_url(stack))
    try:
        for name in names:
            await connection.execute(
                "INSERT INTO destinations (project_id, name, type, metadata) "
                "VALUES ($1, $2, 'webhook', '{\"url\": \"https://example.com/hook\"}')",
                uuid.UUID(project_id),
                name,
            )
    finally:
        await connection.close()


# --- customer JWTs ---------------------------------------------------------------------


def new_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def spki_pem(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    """key as a SubjectPublicKeyInfo PEM, the form JWT keys are registered in."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def b64url(data: dict[str, Any]) -> str:
    """data as one part of a JWT (unpadded base64url of its JSON), to build tokens by hand."""
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def customer_claims(**overrides: Any) -> dict[str, Any]:
    """A customer JWT's claims: group acme, consumer alice, valid for five minutes from now.
    overrides replace claims; None leaves one out."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "alice@acme.example",
        "groupRef": "acme",
        "consumerRef": "alice",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign_jwt(private_key: rsa.RSAPrivateKey, claims: dict[str, Any], kid: str | None) -> str:
    """claims signed RS256 with private_key, the header naming kid (no kid when None)."""
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, private_key, algorithm="RS256", headers=headers)


async def register_jwt_key(
    admin: httpx.AsyncClient, project: str, pem: str, label: str = "signer"
) -> str:
    """The kid of a JWT key registered with project (its id or name): pem, RS256."""
    created = await admin.post(
        f"/v1/projects/{project}/jwt-keys",
        json={"label": label, "algorithm": "RS256", "publicKeyPem": pem},
    )
    assert created.status_code == 201, created.text
    assert list(created.json()) == ["kid"]
    kid: str = created.json()["kid"]
    return kid


# --- provider apps and connections -----------------------------------------------------

# The provider sandbox's OAuth client (README "The provider sandbox").
SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET


async def sandbox_tokens(stack: Stack) -> tuple[str, str]:
    """A fresh access and refresh token from the sandbox's HubSpot (password grant)."""
    async with httpx.AsyncClient(base_url=stack.endpoints["sandbox-http"]) as http:
        answer = await http.post(
            "/hubspot/oauth/v1/token",
            data={
                "grant_type": "password",
                "username": USERNAME,
                "password": PASSWORD,
                "client_id": SANDBOX_CLIENT_ID,
                "client_secret": SANDBOX_CLIENT_SECRET,
                "scope": "crm.objects.read",
            },
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["access_token"], body["refresh_token"]


async def create_provider_app(
    http: httpx.AsyncClient, project: str, provider: str, scopes: list[str] | None = None
) -> dict[str, Any]:
    """A provider app of project (its id or name) with the sandbox's OAuth client; http is
    a client at the API's root."""
    created = await http.post(
        f"/v1/projects/{project}/provider-apps",
        json={
            "provider": provider,
            "clientId": SANDBOX_CLIENT_ID,
            "clientSecret": SANDBOX_CLIENT_SECRET,
            "scopes": scopes or [],
        },
    )
    assert created.status_code == 200, created.text
    app: dict[str, Any] = created.json()
    return app


async def connect_group(
    http: httpx.AsyncClient,
    project: str,
    provider: str,
    group: str,
    consumer: str = "user-1",
) -> dict[str, Any]:
    """A connection of group to an OAuth provider (hubspot, salesforce, ...) made by
    importing tokens (connections:generate), for tests that need one to exist rather than
    an OAuth flow; http is a client at the API's root.

    Returns once scribe has applied the connection's creation event (its updateTime
    appears), so nothing about the connection changes under the test afterwards."""
    created = await http.post(
        f"/v1/projects/{project}/connections:generate",
        json={
            "provider": provider,
            "groupRef": group,
            "consumerRef": consumer,
            "oauth2AuthorizationCode": {"accessToken": {"token": f"imported-{uuid.uuid4().hex}"}},
        },
    )
    assert created.status_code == 201, created.text
    connection: dict[str, Any] = created.json()
    deadline = time.monotonic() + 30
    while "updateTime" not in connection:
        assert time.monotonic() < deadline, "scribe never recorded the connection's creation"
        await asyncio.sleep(0.1)
        current = await http.get(f"/v1/projects/{project}/connections/{connection['id']}")
        assert current.status_code == 200, current.text
        connection = current.json()
    return connection
