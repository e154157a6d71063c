"""Destinations through the edge: webhook lifecycle, the signing key shown only with
includeSecrets (and rotated on request), the URL and header rules of the local mesh
(loopback http allowed), and every refusal as problem+json that changes nothing."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.control_plane import (
    HOOK,
    admin_client,
    create_project,
    database_dump,
    issue_names,
    listed,
    problem,
    unique,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


def set_metadata(destination: dict[str, Any]) -> dict[str, Any]:
    """The metadata keys that hold something (the edge prints every key of the message, so
    a webhook's metadata also shows the other types' keys, empty)."""
    return {k: v for k, v in destination["metadata"].items() if v not in ("", {}, [], None)}


@pytest.fixture(scope="module")
async def project(admin: httpx.AsyncClient) -> str:
    name: str = (await create_project(admin, "dest", "Destinations"))["name"]
    return name


@pytest.fixture
async def api(stack: Stack, project: str) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(stack, f"/v1/projects/{project}") as http:
        yield http


async def create(api: httpx.AsyncClient, **metadata: Any) -> dict[str, Any]:
    response = await api.post(
        "/destinations",
        json={"name": unique("hook"), "type": "webhook", "metadata": {"url": HOOK, **metadata}},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_webhook_lifecycle(stack: Stack, api: httpx.AsyncClient) -> None:
    name = unique("leadConverted")
    created = await api.post(
        "/destinations",
        json={
            "name": name,
            "type": "webhook",
            "metadata": {"url": HOOK, "headers": {"Authorization": "Bearer 1234"}},
        },
    )
    assert created.status_code == 201, created.text
    destination = created.json()
    assert destination["name"] == name and destination["type"] == "webhook"
    assert destination["metadata"]["url"] == HOOK
    assert destination["metadata"]["headers"] == {"Authorization": "Bearer 1234"}
    assert "secrets" not in destination and destination["createTime"]
    assert destination in await listed(api, "/destinations")
    by_name = await api.get(f"/destinations/{name}")
    by_id = await api.get(f"/destinations/{destination['id']}")
    assert by_name.status_code == by_id.status_code == 200
    assert by_name.json() == by_id.json() == destination  # no secrets unless asked

    updated = await api.patch(
        f"/destinations/{destination['id']}",
        json={
            "updateMask": ["name", "metadata.url"],
            "destination": {
                "name": f"{name}-v2",
                "metadata": {
                    "url": "https://hooks.example.com/amp",
                    "headers": {"X-Not": "masked"},
                },
            },
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == f"{name}-v2"
    assert set_metadata(updated.json()) == {
        "url": "https://hooks.example.com/amp",
        "headers": {"Authorization": "Bearer 1234"},  # not in the mask: kept
    }
    assert updated.json()["updateTime"]
    headers = await api.patch(
        f"/destinations/{name}-v2",
        json={"updateMask": ["metadata.headers"], "destination": {"metadata": {"headers": {}}}},
    )
    assert headers.status_code == 200, headers.text
    assert set_metadata(headers.json()) == {"url": "https://hooks.example.com/amp"}

    deleted = await api.delete(f"/destinations/{name}-v2")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    problem(await api.get(f"/destinations/{destination['id']}"), 404)
    problem(await api.delete(f"/destinations/{destination['id']}"), 404)
    assert destination["id"] not in {d["id"] for d in await listed(api, "/destinations")}


async def test_the_signing_key_is_shown_only_with_include_secrets_and_rotates(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    destination = await create(api)
    name = destination["name"]
    plain = await api.get(f"/destinations/{name}")
    assert "secrets" not in plain.json()

    revealed = await api.get(f"/destinations/{name}", params={"includeSecrets": "true"})
    assert revealed.status_code == 200, revealed.text
    key = revealed.json()["secrets"]["webhookSigningKey"]
    assert key.startswith("whsec_")
    assert len(base64.b64decode(key.removeprefix("whsec_"), validate=True)) == 32
    again = await api.get(f"/destinations/{name}", params={"includeSecrets": "true"})
    assert again.json()["secrets"]["webhookSigningKey"] == key  # stable until rotated

    # Rotating needs includeSecrets (the new key must reach the caller); refused, the key
    # stays as it was.
    refused = problem(await api.get(f"/destinations/{name}", params={"rotate": "true"}), 400)
    assert issue_names(refused) == {"query.rotate"}
    rotated = await api.get(
        f"/destinations/{name}", params={"includeSecrets": "true", "rotate": "true"}
    )
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["secrets"]["webhookSigningKey"]
    assert new_key.startswith("whsec_") and new_key != key
    after = await api.get(f"/destinations/{name}", params={"includeSecrets": "true"})
    assert after.json()["secrets"]["webhookSigningKey"] == new_key

    # Never in a list, never in plaintext in the database.
    assert key not in (await api.get("/destinations")).text
    assert new_key not in (await api.get("/destinations")).text
    dump = await database_dump(stack)
    assert destination["id"] in dump  # the dump does hold the row
    for secret in (key, new_key, new_key.removeprefix("whsec_")):
        assert secret not in dump


async def test_http_is_refused_except_to_loopback(api: httpx.AsyncClient) -> None:
    accepted = await api.post(
        "/destinations",
        json={"name": unique("local"), "type": "webhook", "metadata": {"url": HOOK}},
    )
    assert accepted.status_code == 201, accepted.text
    before = await listed(api, "/destinations")
    for url in (
        "http://hooks.example.com/amp",
        "ftp://hooks.example.com/amp",
        "hooks.example.com/amp",
        "",
    ):
        refused = await api.post(
            "/destinations",
            json={"name": unique("remote"), "type": "webhook", "metadata": {"url": url}},
        )
        body = problem(refused, 400)
        assert issue_names(body) == {"body.metadata.url"}, (url, body)
    assert await listed(api, "/destinations") == before

    # The same rules on update; the destination keeps its URL.
    destination = accepted.json()
    refused = await api.patch(
        f"/destinations/{destination['name']}",
        json={
            "updateMask": ["metadata.url"],
            "destination": {"metadata": {"url": "http://hooks.example.com/amp"}},
        },
    )
    assert issue_names(problem(refused, 400)) == {"body.destination.metadata.url"}
    assert (await api.get(f"/destinations/{destination['id']}")).json() == destination


async def test_refusals_name_the_field_and_change_nothing(api: httpx.AsyncClient) -> None:
    existing = await create(api)
    before = await listed(api, "/destinations")
    cases: list[tuple[dict[str, Any], int, set[str]]] = [
        (
            {"name": existing["name"], "type": "webhook", "metadata": {"url": HOOK}},
            409,
            set(),
        ),
        ({"name": "has space", "type": "webhook", "metadata": {"url": HOOK}}, 400, {"body.name"}),
        ({"name": "under_score", "type": "webhook", "metadata": {"url": HOOK}}, 400, {"body.name"}),
        (
            {"name": str(uuid.uuid4()), "type": "webhook", "metadata": {"url": HOOK}},
            400,
            {"body.name"},
        ),
        (
            {"name": unique("k"), "type": "kinesis", "metadata": {"streamName": "s"}},
            400,
            {"body.type"},
        ),
        ({"name": unique("p"), "type": "carrier-pigeon", "metadata": {}}, 400, {"body.type"}),
        (
            {"name": unique("r"), "type": "webhook", "metadata": {"url": HOOK, "region": "eu"}},
            400,
            {"body.metadata.region"},
        ),
        (
            {
                "name": unique("s"),
                "type": "webhook",
                "metadata": {"url": HOOK},
                "secrets": {"password": "hunter2"},
            },
            400,
            {"body.secrets.password"},
        ),
        (
            {
                "name": unique("h"),
                "type": "webhook",
                "metadata": {
                    "url": HOOK,
                    "headers": {"Host": "evil", "webhook-signature": "v1,x", "X-Ok": "1"},
                },
            },
            400,
            {"body.metadata.headers.Host", "body.metadata.headers.webhook-signature"},
        ),
    ]
    for body, status, names in cases:
        refused = problem(await api.post("/destinations", json=body), status)
        if names:
            assert issue_names(refused) == names, (body, refused)
    kinesis = problem(
        await api.post(
            "/destinations", json={"name": unique("k"), "type": "kinesis", "metadata": {}}
        ),
        400,
    )
    assert "'kinesis'" in kinesis["detail"] and "not supported yet" in kinesis["detail"]

    second = await create(api)
    before = await listed(api, "/destinations")
    renamed = await api.patch(
        f"/destinations/{second['id']}",
        json={"updateMask": ["name"], "destination": {"name": existing["name"]}},
    )
    problem(renamed, 409)
    for mask in (["type"], ["secrets.password"], ["metadata.region"], []):
        attempt = await api.patch(
            f"/destinations/{second['id']}",
            json={"updateMask": mask, "destination": {"name": "x"}},
        )
        assert issue_names(problem(attempt, 400)) == {"body.updateMask"}, mask
    problem(
        await api.patch(
            f"/destinations/{uuid.uuid4()}",
            json={"updateMask": ["name"], "destination": {"name": unique("x")}},
        ),
        404,
    )
    assert await listed(api, "/destinations") == before


async def test_another_projects_destinations_cannot_be_reached(
    admin: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    mine = await create(api)
    other = (await create_project(admin, "other", "Other"))["name"]
    elsewhere = f"/v1/projects/{other}/destinations"
    for path in (mine["id"], mine["name"]):
        problem(await admin.get(f"{elsewhere}/{path}"), 404)
        problem(await admin.delete(f"{elsewhere}/{path}"), 404)
    assert (await admin.get(elsewhere)).json() == []
    # The same name is free in another project.
    again = await admin.post(
        elsewhere, json={"name": mine["name"], "type": "webhook", "metadata": {"url": HOOK}}
    )
    assert again.status_code == 201, again.text
    assert mine in await listed(api, "/destinations")
