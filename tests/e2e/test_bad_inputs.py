"""The bad-input suite (issues 4 and 5): every kind of bad request a builder or an attacker
can send the control plane and its connections through the REST edge is refused with one
clear problem+json (status, title, a detail naming what is wrong, the request id the
response header carries, and issues[] naming the field where there is one), and changes
nothing: project A's whole observable state and the row count of every table the requests
could write (all but those background work writes) are re-read after each request."""

from __future__ import annotations

import base64
import json
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.control_plane import connect_group
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

HOOK = "http://127.0.0.1:9/ampmesh-bad-inputs"
DESTINATION = "crmWebhook"
INTEGRATION = "crm-sync"
MANIFEST = textwrap.dedent(
    f"""\
    specVersion: 1.0.0
    integrations:
      - name: {INTEGRATION}
        provider: hubspot
        module: crm
        read:
          objects:
            - objectName: companies
              destination: {DESTINATION}
              schedule: "*/30 * * * *"
        proxy:
          enabled: true
    """
)
# The edge refuses request bodies over 1 MiB.
EDGE_BODY_LIMIT = 1024 * 1024
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    413: "Content Too Large",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def line_of(text: str, needle: str) -> int:
    """The 1-based number of the first line of text containing needle."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def b64url(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class World:
    """Project A with everything a builder configures, and project B next to it."""

    stack: Stack
    admin: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    database_url: str
    a_id: str
    a_name: str
    a_key: str
    b_id: str
    b_key: str
    kid: str
    signing_key: rsa.RSAPrivateKey
    integration_id: str
    topic: str
    connection_id: str
    installation_id: str

    @property
    def a(self) -> str:
        return f"/v1/projects/{self.a_id}"

    def token(self, *, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        """A customer JWT for A's registered kid, signed by its key unless told otherwise."""
        now = int(time.time())
        body: dict[str, Any] = {
            "sub": "alice@acme.example",
            "groupRef": "acme",
            "consumerRef": "alice",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        return jwt.encode(
            body, key or self.signing_key, algorithm="RS256", headers={"kid": self.kid}
        )

    async def snapshot(self) -> dict[str, Any]:
        """A's observable state through REST, and the row count of every table."""
        state: dict[str, Any] = {}
        for name, path in (
            ("projects", "/v1/projects"),
            ("project", self.a),
            ("apiKeys", f"{self.a}/api-keys"),
            ("jwtKeys", f"{self.a}/jwt-keys"),
            ("providerApps", f"{self.a}/provider-apps"),
            ("destinations", f"{self.a}/destinations"),
            ("topics", f"{self.a}/topics"),
            ("integrations", f"{self.a}/integrations"),
            ("integration", f"{self.a}/integrations/{self.integration_id}"),
            ("installations", f"{self.a}/installations"),
            ("eventRoutes", f"{self.a}/notification-event-topic-routes"),
            ("destinationRoutes", f"{self.a}/topic-destination-routes"),
            ("connections", f"{self.a}/connections"),
            # With its credentials: a refused rotation must leave them as they were.
            ("connection", f"{self.a}/connections/{self.connection_id}?includeCreds=true"),
        ):
            response = await self.admin.get(path)
            assert response.status_code == 200, (path, response.text)
            state[name] = response.json()
        state["rows"] = await row_counts(self.database_url)
        return state


# Tables the mesh's background work writes whenever it runs (scribe, messenger, the
# read workflows, the outbox relays), for whichever test's installations and schedules:
# their counts move on their own, so they say nothing about the requests under test.
BACKGROUND_TABLES = frozenset(
    {
        "backfill_progress",
        "connection_events",
        "event_outbox",
        "operation_logs",
        "operations",
        # The api's proxy call rollup flushes every few seconds, whatever the request.
        "proxy_call_counts",
        "read_watermarks",
        "scribe_dead_letters",
        "scribe_ingestion",
        # The token-manager pays its Redis debts when Redis lets it, not per request.
        "token_cache_debts",
        "webhook_deliveries",
        "webhook_delivery_attempts",
        "webhook_endpoints",
    }
)


async def row_counts(database_url: str) -> dict[str, int]:
    connection = await asyncpg.connect(database_url)
    try:
        tables = await connection.fetch(
            "SELECT tablename, format('%I.%I', schemaname, tablename) AS quoted "
            "FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        counts: dict[str, int] = {}
        for table in tables:
            if table["tablename"] in BACKGROUND_TABLES:
                continue
            # The name comes from the catalogue, quoted by PostgreSQL itself.
            query = f"SELECT count(*) FROM {table['quoted']}"  # noqa: S608
            counts[table["tablename"]] = await connection.fetchval(query)
    finally:
        await connection.close()
    return counts


def answer(response: httpx.Response, status: int = 201) -> Any:
    """The JSON of a setup call that must succeed with status."""
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[World]:
    postgres = next(c for c in stack.mesh.components if c.name == "postgres")
    database_url: str = postgres.database_url  # type: ignore[attr-defined]
    async with (
        httpx.AsyncClient(
            base_url=stack.endpoints["api"],
            headers={"X-Api-Key": stack.admin_api_key},
            timeout=20,
        ) as admin,
        httpx.AsyncClient(base_url=stack.endpoints["api"], timeout=20) as anonymous,
    ):
        projects = []
        for prefix in ("bad-a", "bad-b"):
            project = answer(
                await admin.post("/v1/projects", json={"name": unique(prefix), "appName": "Bad"})
            )
            key = answer(
                await admin.post(
                    f"/v1/projects/{project['id']}/api-keys",
                    json={"label": "builder", "scopes": ["full"]},
                )
            )
            projects.append((project, key["key"]))
        (a, a_key), (b, b_key) = projects

        # A's own full key configures A, as a builder's tooling would.
        async def as_a(method: str, path: str, body: Any, status: int = 201) -> Any:
            response = await anonymous.request(
                method, f"/v1/projects/{a['id']}{path}", json=body, headers={"X-Api-Key": a_key}
            )
            return answer(response, status)

        signing_key = new_rsa_key()
        public_pem = signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        registered = await as_a(
            "POST",
            "/jwt-keys",
            {"label": "signer", "algorithm": "RS256", "publicKeyPem": public_pem.decode()},
        )
        # The reference answers 200 to this create.
        app = {"provider": "hubspot", "clientId": "id-1", "clientSecret": "s3cret-1"}
        await as_a("POST", "/provider-apps", app, 200)
        hook = {"name": DESTINATION, "type": "webhook", "metadata": {"url": HOOK}}
        await as_a("POST", "/destinations", hook)
        topic = await as_a("POST", "/topics", {"name": "alerts"})
        (integration,) = await as_a("PUT", "/integrations:batch", {"sourceYaml": MANIFEST}, 200)
        # The customer connects HubSpot before the installation that uses the connection.
        connection = await connect_group(admin, a["name"], "hubspot", "acme")
        companies = {"objectName": "companies", "destination": DESTINATION}
        installation = await as_a(
            "POST",
            f"/integrations/{integration['id']}/installations",
            {
                "groupRef": "acme",
                "config": {"content": {"read": {"objects": {"companies": companies}}}},
            },
        )
        yield World(
            stack=stack,
            admin=admin,
            anonymous=anonymous,
            database_url=database_url,
            a_id=a["id"],
            a_name=a["name"],
            a_key=a_key,
            b_id=b["id"],
            b_key=b_key,
            kid=registered["kid"],
            signing_key=signing_key,
            integration_id=integration["id"],
            topic=topic["name"],
            connection_id=connection["id"],
            installation_id=installation["id"],
        )


@dataclass(frozen=True)
class Bad:
    """One bad request and what its refusal must say.

    `path`, `words` and the strings of `body` may hold the placeholders `{a}` (A's path),
    `{a_name}`, `{integration}` and `{topic}`; `credential` picks the caller."""

    method: str
    path: str
    status: int
    words: str
    body: Any = None
    raw: bytes | None = None
    credential: Callable[[World], dict[str, str]] = field(default=lambda w: {"X-Api-Key": w.a_key})
    # "<in>.<name>" -> what its detail must hold (the line, where the API knows one).
    issues: dict[str, tuple[str, ...]] = field(default_factory=dict)


MALFORMED = MANIFEST.replace("module: crm", "module: crm: all")
UNKNOWN_PROVIDER = MANIFEST.replace("provider: hubspot", "provider: hubspt")
UNKNOWN_DESTINATION = MANIFEST.replace(f"destination: {DESTINATION}", "destination: ledger")
BAD_CRON = MANIFEST.replace('"*/30 * * * *"', '"0 25 * * *"')
FREQUENT_CRON = MANIFEST.replace('"*/30 * * * *"', '"*/5 * * * *"')
SCHEDULE = "integrations[0].read.objects[0].schedule"


def in_manifest(source: str, needle: str, *why: str) -> tuple[str, ...]:
    """What an issue of the manifest's one integration says: why, the line of needle, and
    the integration's name."""
    return (*why, f"line {line_of(source, needle)}", f"integration '{INTEGRATION}'")


def jwt_bearer(make: Callable[[World], str]) -> Callable[[World], dict[str, str]]:
    return lambda w: {"Authorization": f"Bearer {make(w)}"}


def unsigned_token(w: World) -> str:
    now = int(time.time())
    header = {"alg": "none", "typ": "JWT", "kid": w.kid}
    claims = {"groupRef": "acme", "consumerRef": "alice", "iat": now, "exp": now + 60}
    return f"{b64url(header)}.{b64url(claims)}."


def expired_token(w: World) -> str:
    now = int(time.time())
    return w.token(iat=now - 400, exp=now - 100)


# The JWT cases ask for what a valid token of A may do (read A; see the setup test), so
# only the token's fault can refuse them.
OAUTH_CONNECT = {"projectIdOrName": "{a_name}", "groupRef": "acme", "consumerRef": "alice"}

CASES: dict[str, Bad] = {
    "oauth-connect: unknown provider": Bad(
        "POST", "/v1/oauth-connect", 400, "hubspt", {**OAUTH_CONNECT, "provider": "hubspt"}
    ),
    "oauth-connect: a provider without OAuth": Bad(
        "POST",
        "/v1/oauth-connect",
        400,
        "'anthropic' does not connect through an OAuth authorization (it uses apiKey)",
        {**OAUTH_CONNECT, "provider": "anthropic"},
    ),
    "oauth-connect: no group": Bad(
        "POST",
        "/v1/oauth-connect",
        400,
        "body.groupRef: is required",
        {**OAUTH_CONNECT, "provider": "hubspot", "groupRef": ""},
        issues={"body.groupRef": ("is required",)},
    ),
    "connection update: unknown path": Bad(
        "PATCH",
        "{a}/connections/{connection}",
        400,
        "nickname cannot be updated",
        {"updateMask": ["nickname"], "connection": {}},
    ),
    "connection update: an API key for an OAuth connection": Bad(
        "PATCH",
        "{a}/connections/{connection}",
        400,
        "the connection authenticates with oauth2/authorizationCode, not apiKey",
        {"updateMask": ["apiKey"], "connection": {"apiKey": "k-1"}},
    ),
    "connection: an API key for an OAuth provider": Bad(
        "POST",
        "{a}/connections:generate",
        400,
        "'hubspot' authenticates with oauth2/authorizationCode",
        {"provider": "hubspot", "groupRef": "acme", "consumerRef": "bob", "apiKey": "k-1"},
    ),
    "malformed YAML": Bad(
        "PUT",
        "{a}/integrations:batch",
        400,
        "invalid YAML",
        {"sourceYaml": MALFORMED},
        issues={"body.sourceYaml": ("invalid YAML", f"line {line_of(MALFORMED, 'crm: all')}")},
    ),
    "unknown provider": Bad(
        "PUT",
        "{a}/integrations:batch",
        400,
        "hubspt",
        {"sourceYaml": UNKNOWN_PROVIDER},
        issues={
            "body.integrations[0].provider": in_manifest(
                UNKNOWN_PROVIDER, "hubspt", "unknown provider 'hubspt'; did you mean 'hubspot'?"
            )
        },
    ),
    "unknown destination": Bad(
        "PUT",
        "{a}/integrations:batch",
        400,
        "ledger",
        {"sourceYaml": UNKNOWN_DESTINATION},
        issues={
            "body.integrations[0].read.objects[0].destination": in_manifest(
                UNKNOWN_DESTINATION, "ledger", "the project has no destination named 'ledger'"
            )
        },
    ),
    "bad cron": Bad(
        "PUT",
        "{a}/integrations:batch",
        400,
        "0 25 * * *",
        {"sourceYaml": BAD_CRON},
        issues={
            f"body.{SCHEDULE}": in_manifest(
                BAD_CRON, "0 25 * * *", "'0 25 * * *' is not a valid cron expression"
            )
        },
    ),
    "too-frequent cron": Bad(
        "PUT",
        "{a}/integrations:batch",
        400,
        "*/5 * * * *",
        {"sourceYaml": FREQUENT_CRON},
        issues={
            f"body.{SCHEDULE}": in_manifest(
                FREQUENT_CRON,
                "*/5 * * * *",
                "'*/5 * * * *' fires 5 minute(s) apart",
                "at most every 10 minutes",
            )
        },
    ),
    "oversize body": Bad(
        "PUT",
        "{a}/integrations:batch",
        413,
        "larger than this API accepts (1 MiB)",
        raw=json.dumps({"sourceYaml": MANIFEST + "#" * EDGE_BODY_LIMIT}).encode(),
    ),
    "wrong JSON type: project name a number": Bad(
        "POST",
        "/v1/projects",
        400,
        "invalid value 5",
        {"name": 5, "appName": "Typed"},
        credential=lambda w: {"X-Api-Key": w.stack.admin_api_key},
    ),
    "wrong JSON type: key scopes a string": Bad(
        "POST", "{a}/api-keys", 400, "scopes", {"label": "typed", "scopes": "full"}
    ),
    "wrong JSON type: destination url a number": Bad(
        "POST",
        "{a}/destinations",
        400,
        "invalid value 5",
        {"name": "typed", "type": "webhook", "metadata": {"url": 5}},
    ),
    "missing key": Bad("GET", "{a}/destinations", 401, "X-Api-Key", credential=lambda w: {}),
    "unknown key": Bad(
        "GET",
        "{a}/destinations",
        401,
        "API key",
        credential=lambda w: {"X-Api-Key": f"amp_{'0' * 12}_{'a' * 43}"},
    ),
    "expired JWT": Bad("GET", "{a}", 401, "expired", credential=jwt_bearer(expired_token)),
    "JWT signed by another private key": Bad(
        "GET", "{a}", 401, "signature", credential=jwt_bearer(lambda w: w.token(key=new_rsa_key()))
    ),
    "alg none JWT": Bad("GET", "{a}", 401, "RS256", credential=jwt_bearer(unsigned_token)),
    "duplicate project name": Bad(
        "POST",
        "/v1/projects",
        409,
        "{a_name}",
        {"name": "{a_name}", "appName": "Again"},
        credential=lambda w: {"X-Api-Key": w.stack.admin_api_key},
    ),
    "duplicate destination name": Bad(
        "POST",
        "{a}/destinations",
        409,
        DESTINATION,
        {"name": DESTINATION, "type": "webhook", "metadata": {"url": HOOK}},
    ),
    "duplicate topic name": Bad("POST", "{a}/topics", 409, "{topic}", {"name": "{topic}"}),
    "duplicate integration name": Bad(
        "POST",
        "{a}/integrations",
        409,
        INTEGRATION,
        {
            "name": INTEGRATION,
            "provider": "hubspot",
            "latestRevision": {
                "specVersion": "1.0.0",
                "content": {
                    "read": {"objects": [{"objectName": "deals", "destination": DESTINATION}]}
                },
            },
        },
    ),
}


# --- object metadata and hydrated revisions (refused before any provider is called) -----

METADATA = "{a}/integrations/{integration}/objects/companies/metadata"
HYDRATE = "{a}/integrations/{integration}/revisions/any:hydrate"
UPSERT = "{a}/providers/hubspot/object-metadata"


def custom_fields(*definitions: dict[str, Any], group: str = "acme") -> dict[str, Any]:
    return {"groupRef": group, "fields": {"contacts": list(definitions)}}


TIER = {"fieldName": "tier", "displayName": "Tier", "valueType": "string"}

CASES.update(
    {
        "object metadata: no groupRef": Bad(
            "GET", METADATA, 400, "is required", issues={"query.groupRef": ("is required",)}
        ),
        "object metadata: a group without an installation": Bad(
            "GET", METADATA + "?groupRef=globex", 404, "installation 'of group globex' not found"
        ),
        "object metadata: a provider not in the catalog": Bad(
            "GET",
            "{a}/providers/hubspt/objects/contacts/metadata?groupRef=acme",
            400,
            "'hubspt' is not in the catalog",
            issues={"path.provider": ("'hubspt' is not in the catalog",)},
        ),
        "object metadata: a group without a connection to the provider": Bad(
            "GET",
            "{a}/providers/salesforce/objects/Account/metadata?groupRef=acme",
            404,
            "connection 'salesforce of group acme' not found",
        ),
        "object metadata: a customer of another group": Bad(
            "GET",
            METADATA + "?groupRef=acme",
            404,
            "not found",
            credential=jwt_bearer(lambda w: w.token(groupRef="globex")),
        ),
        "custom field: an unknown value type": Bad(
            "PUT",
            UPSERT,
            400,
            "'money' is not a value type",
            custom_fields({**TIER, "valueType": "money"}),
            issues={"body.fields.contacts[0].valueType": ("'money' is not a value type",)},
        ),
        "custom field: no field name": Bad(
            "PUT",
            UPSERT,
            400,
            "is required",
            custom_fields(TIER, {**TIER, "fieldName": ""}),
            issues={"body.fields.contacts[1].fieldName": ("is required",)},
        ),
        "custom field: a select without values": Bad(
            "PUT",
            UPSERT,
            400,
            "needs its values",
            custom_fields({**TIER, "valueType": "singleSelect"}),
            issues={"body.fields.contacts[0].stringOptions.values": ("needs its values",)},
        ),
        "custom field: an attribute the definition does not have": Bad(
            "PUT",
            UPSERT,
            400,
            "colour",
            custom_fields({**TIER, "colour": "red"}),
            issues={"body.fields.contacts[0]": ("colour",)},
        ),
        "custom field: no groupRef": Bad(
            "PUT",
            UPSERT,
            400,
            "is required",
            custom_fields(TIER, group=""),
            issues={"body.groupRef": ("is required",)},
        ),
        "hydrate: no connectionId": Bad(
            "GET", HYDRATE, 400, "is required", issues={"query.connectionId": ("is required",)}
        ),
        "hydrate: a connection another group's customer may not see": Bad(
            "GET",
            HYDRATE + "?connectionId={connection}",
            404,
            "connection '{connection}' not found",
            credential=jwt_bearer(lambda w: w.token(groupRef="globex")),
        ),
        "hydrate: a connection that does not exist": Bad(
            "GET",
            HYDRATE + f"?connectionId={uuid.UUID(int=7)}",
            404,
            f"connection '{uuid.UUID(int=7)}' not found",
        ),
    }
)


def fill(value: Any, w: World) -> Any:
    """value with the world's names put in place of their placeholders."""
    names = {
        "{a}": w.a,
        "{a_name}": w.a_name,
        "{integration}": w.integration_id,
        "{topic}": w.topic,
        "{connection}": w.connection_id,
    }
    if isinstance(value, str):
        for placeholder, name in names.items():
            value = value.replace(placeholder, name)
        return value
    if isinstance(value, dict):
        return {k: fill(v, w) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, w) for v in value]
    return value


def check_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The shape every refusal shares; returns the problem."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert body["title"] == TITLES[status], body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert body["requestId"] == response.headers["x-request-id"], body
    return body


def issues_of(body: dict[str, Any]) -> dict[str, str]:
    return {f"{i['in']}.{i['name']}": i["detail"] for i in body.get("issues", [])}


async def send(w: World, bad: Bad) -> httpx.Response:
    headers = bad.credential(w)
    path = fill(bad.path, w)
    if bad.raw is not None:
        return await w.anonymous.request(
            bad.method,
            path,
            content=bad.raw,
            headers={**headers, "content-type": "application/json"},
        )
    return await w.anonymous.request(bad.method, path, json=fill(bad.body, w), headers=headers)


async def test_the_setup_works_so_refusals_are_the_inputs_fault(world: World) -> None:
    """Each credential and path the cases spoil works when it is not spoiled."""
    as_a = {"X-Api-Key": world.a_key}
    assert (await world.anonymous.get(f"{world.a}/destinations", headers=as_a)).is_success
    token = {"Authorization": f"Bearer {world.token()}"}
    assert (await world.anonymous.get(world.a, headers=token)).json()["id"] == world.a_id
    state = await world.snapshot()
    assert [i["name"] for i in state["integrations"]] == [INTEGRATION]
    assert len(state["installations"]) == 1 and len(state["providerApps"]) == 1
    assert state["rows"]["revisions"] >= 1


# Cases a defect outside this file makes fail; strict, so its fix shows here as an XPASS.
KNOWN_DEFECTS: dict[str, str] = {}


def case_params() -> list[Any]:
    return [
        pytest.param(
            name,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_DEFECTS[name])]
            if name in KNOWN_DEFECTS
            else [],
        )
        for name in CASES
    ]


@pytest.mark.parametrize("case", case_params())
async def test_a_bad_request_is_refused_clearly_and_changes_nothing(
    world: World, case: str
) -> None:
    bad = CASES[case]
    before = await world.snapshot()
    body = check_problem(await send(world, bad), bad.status)
    assert fill(bad.words, world) in body["detail"], body
    issues = issues_of(body)
    for name, fragments in bad.issues.items():
        assert name in issues, body
        for fragment in fragments:
            assert fragment in issues[name], (name, issues[name])
    assert await world.snapshot() == before


async def test_another_projects_key_finds_nothing_of_a(world: World) -> None:
    """B's full key gets, for each of A's resources, the very answer a project that does
    not exist gets, and changes none of them."""
    as_b = {"X-Api-Key": world.b_key}
    missing = str(uuid.uuid4())
    before = await world.snapshot()

    def requests(project: str) -> list[tuple[str, str, Any]]:
        p = f"/v1/projects/{project}"
        return [
            ("GET", p, None),
            ("PATCH", p, {"updateMask": ["appName"], "project": {"appName": "taken"}}),
            ("GET", f"{p}/destinations", None),
            (
                "POST",
                f"{p}/destinations",
                {"name": "stolen", "type": "webhook", "metadata": {"url": HOOK}},
            ),
            ("DELETE", f"{p}/destinations/{DESTINATION}", None),
            ("GET", f"{p}/integrations/{world.integration_id}", None),
            ("PUT", f"{p}/integrations:batch", {"sourceYaml": MANIFEST}),
            ("DELETE", f"{p}/integrations/{INTEGRATION}", None),
            ("GET", f"{p}/installations", None),
            ("POST", f"{p}/topics", {"name": "stolen"}),
            ("GET", f"{p}/api-keys", None),
        ]

    for (method, path, payload), (_, missing_path, _) in zip(
        requests(world.a_id), requests(missing), strict=True
    ):
        theirs = check_problem(
            await world.anonymous.request(method, path, json=payload, headers=as_b), 404
        )
        nobody = check_problem(
            await world.anonymous.request(method, missing_path, json=payload, headers=as_b), 404
        )
        assert {k: v for k, v in theirs.items() if k != "requestId"} == {
            k: (v.replace(missing, world.a_id) if isinstance(v, str) else v)
            for k, v in nobody.items()
            if k != "requestId"
        }, (method, path)
        assert "not found" in theirs["detail"]
        assert await world.snapshot() == before, (method, path)
    by_name = check_problem(
        await world.anonymous.get(f"/v1/projects/{world.a_name}", headers=as_b), 404
    )
    assert by_name["detail"] == f"project {world.a_name!r} not found"


@pytest.mark.parametrize(
    ("case", "issue"),
    [
        ("wrong JSON type: project name a number", "body.name"),
        ("wrong JSON type: destination url a number", "body.metadata.url"),
    ],
)
async def test_a_wrong_json_type_is_named_as_the_client_sent_it(
    world: World, case: str, issue: str
) -> None:
    body = check_problem(await send(world, CASES[case]), 400)
    assert set(issues_of(body)) == {issue}, body
    assert "invalid value 5 for type TYPE_STRING" in issues_of(body)[issue]


# --- Search API (the search host) ---------------------------------------------------
# A's installation for acme reads companies and selects no field of it beyond the
# manifest's (none), so no field may be filtered on; each refusal names what is wrong.

SEARCH_PATH = "{a}/integrations/{integration}?groupRef=acme"
COMPANIES_BY_NAME = {
    "objectName": "companies",
    "fieldFilters": [{"fieldName": "name", "operator": "eq", "value": "Acme"}],
}


def search_case(
    words: str, issue: str = "", *, body: Any = None, path: str = SEARCH_PATH, status: int = 400
) -> Bad:
    return Bad(
        "POST",
        path,
        status,
        words,
        COMPANIES_BY_NAME if body is None else body,
        issues={issue: (words,)} if issue else {},
    )


SEARCH_CASES: dict[str, Bad] = {
    "search: unknown object": search_case(
        "'nosuchobject' is not an object this installation reads",
        "body.objectName",
        body={**COMPANIES_BY_NAME, "objectName": "nosuchobject"},
    ),
    "search: an object the installation does not read": search_case(
        "'contacts' is not an object this installation reads (it reads companies)",
        "body.objectName",
        body={**COMPANIES_BY_NAME, "objectName": "contacts"},
    ),
    "search: a field that does not exist": search_case(
        "'nosuchfield' is not a field this installation reads of object 'companies'",
        "body.fieldFilters[0].fieldName",
        body={
            "objectName": "companies",
            "fieldFilters": [{"fieldName": "nosuchfield", "operator": "eq", "value": "x"}],
        },
    ),
    "search: an operator other than eq": search_case(
        "must be one of eq (found 'like')",
        "body.fieldFilters[0].operator",
        body={
            "objectName": "companies",
            "fieldFilters": [{"fieldName": "name", "operator": "like", "value": "x"}],
        },
    ),
    "search: a filter without a value": search_case(
        "is required: a string, a boolean or a number",
        "body.fieldFilters[0].value",
        body={"objectName": "companies", "fieldFilters": [{"fieldName": "name", "operator": "eq"}]},
    ),
    "search: no filter": search_case(
        "needs at least one filter",
        "body.fieldFilters",
        body={"objectName": "companies", "fieldFilters": []},
    ),
    "search: no groupRef": search_case(
        "is required: your identifier of the customer group",
        "query.groupRef",
        path="{a}/integrations/{integration}",
    ),
    "search: a group without an installation": search_case(
        "group 'umbrella' has no installation of integration",
        path="{a}/integrations/{integration}?groupRef=umbrella",
        status=404,
    ),
    "search: an integration of no project": search_case(
        "integration 'no-such-integration' not found",
        path="{a}/integrations/no-such-integration?groupRef=acme",
        status=404,
    ),
}


@pytest.mark.parametrize("case", list(SEARCH_CASES))
async def test_a_bad_search_is_refused_clearly_and_changes_nothing(world: World, case: str) -> None:
    bad = SEARCH_CASES[case]
    # The search host, not the api's: the same project, integration and key.
    on_search_host = Bad(
        bad.method,
        world.stack.endpoints["search"] + bad.path,
        bad.status,
        bad.words,
        bad.body,
        issues=bad.issues,
    )
    before = await world.snapshot()
    body = check_problem(await send(world, on_search_host), bad.status)
    assert fill(bad.words, world) in body["detail"], body
    issues = issues_of(body)
    for name, fragments in bad.issues.items():
        assert name in issues, body
        for fragment in fragments:
            assert fragment in issues[name], (name, issues[name])
    assert await world.snapshot() == before


# --- the proxy host ----------------------------------------------------------------


def proxy_headers(w: World, **changes: str | None) -> dict[str, str]:
    """The headers of a proxied call to A's installation, with changes (None: left out)."""
    headers: dict[str, str | None] = {
        "x-api-key": w.a_key,
        "x-amp-proxy-version": "1",
        "x-amp-project-id": w.a_id,
        "x-amp-installation-id": w.installation_id,
    }
    headers.update({name.replace("_", "-"): value for name, value in changes.items()})
    return {name: value for name, value in headers.items() if value is not None}


@dataclass
class BadProxyCall:
    status: int
    words: str
    headers: Callable[[World], Mapping[str, str | bytes]] = field(default=proxy_headers)
    path: str = "/crm/v3/objects/companies"
    issues: tuple[str, ...] = ()  # the headers the problem's issues[] names


PROXY_CASES: dict[str, BadProxyCall] = {
    "proxy: no credential": BadProxyCall(
        401, "needs an API key", lambda w: proxy_headers(w, x_api_key=None)
    ),
    "proxy: a key that does not exist": BadProxyCall(
        401, "not valid", lambda w: proxy_headers(w, x_api_key="amp_0000_nope")
    ),
    "proxy: project B's key": BadProxyCall(
        404, "not found", lambda w: proxy_headers(w, x_api_key=w.b_key)
    ),
    "proxy: no version": BadProxyCall(
        400,
        "x-amp-proxy-version",
        lambda w: proxy_headers(w, x_amp_proxy_version=None),
        issues=("x-amp-proxy-version",),
    ),
    "proxy: version 2": BadProxyCall(
        400,
        "must be 1",
        lambda w: proxy_headers(w, x_amp_proxy_version="2"),
        issues=("x-amp-proxy-version",),
    ),
    "proxy: a project name for its id": BadProxyCall(
        400,
        "not its name",
        lambda w: proxy_headers(w, x_amp_project_id=w.a_name),
        issues=("x-amp-project-id",),
    ),
    "proxy: no installation named": BadProxyCall(
        400,
        "x-amp-group-ref",
        lambda w: proxy_headers(w, x_amp_installation_id=None),
        issues=("x-amp-installation-id",),
    ),
    "proxy: an installation that does not exist": BadProxyCall(
        404, "not found", lambda w: proxy_headers(w, x_amp_installation_id=str(uuid.UUID(int=9)))
    ),
    "proxy: a group without an installation": BadProxyCall(
        404,
        "umbrella",
        lambda w: proxy_headers(
            w,
            x_amp_installation_id=None,
            x_amp_integration_name=INTEGRATION,
            x_amp_group_ref="umbrella",
        ),
    ),
    "proxy: an unknown rate limiter mode": BadProxyCall(
        400,
        "throttle",
        lambda w: proxy_headers(w, x_amp_rate_limiter_mode="fast"),
        issues=("x-amp-rate-limiter-mode",),
    ),
    "proxy: a path climbing out of the base URL": BadProxyCall(
        400, "base URL", path="/crm/v3/../../../admin"
    ),
    "proxy: an encoded climb": BadProxyCall(400, "base URL", path="/crm/%2E%2e/admin"),
    "proxy: a group ref that is not ASCII": BadProxyCall(
        400,
        "x-amp-group-ref must be printable ASCII",
        lambda w: {
            **proxy_headers(w, x_amp_installation_id=None, x_amp_integration_name=INTEGRATION),
            "x-amp-group-ref": "acmé".encode(),  # UTF-8 bytes, as a client may send
        },
    ),
}


@pytest.mark.parametrize("case", list(PROXY_CASES))
async def test_a_bad_proxy_call_is_refused_clearly_and_changes_nothing(
    world: World, case: str
) -> None:
    bad = PROXY_CASES[case]
    before = await world.snapshot()
    proxy = world.stack.endpoints["proxy"]
    raw = [
        (name.encode(), value if isinstance(value, bytes) else value.encode())
        for name, value in bad.headers(world).items()
    ]
    request = world.anonymous.build_request("POST", f"{proxy}/", headers=raw, content=b"{}")
    request.extensions["target"] = bad.path.encode()  # as sent: httpx would resolve '..'
    response = await world.anonymous.send(request)
    body = check_problem(response, bad.status)
    assert response.headers["x-amp-proxy-origin"] == "ampmesh"
    assert bad.words in body["detail"], body
    named = {issue["name"] for issue in body.get("issues", [])}
    assert set(bad.issues) <= named, body
    assert world.a_key not in response.text
    assert await world.snapshot() == before
