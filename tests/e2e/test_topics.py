"""Topics and notification routes through the edge: event type -> topic -> destination,
lists filtered by query, routes confined to their project's topics and destinations, and
every refusal as problem+json that changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from ampmesh.platform.v1 import destinations_pb2, destinations_pb2_grpc

from tests.support.control_plane import (
    HOOK,
    admin_client,
    create_api_key,
    create_project,
    issue_names,
    listed,
    problem,
    unique,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

EVENT_ROUTES = "/notification-event-topic-routes"
DESTINATION_ROUTES = "/topic-destination-routes"


async def new_project(admin: httpx.AsyncClient) -> str:
    name: str = (await create_project(admin, "topics", "Topics"))["name"]
    return name


@pytest.fixture(scope="module")
async def project(admin: httpx.AsyncClient) -> str:
    return await new_project(admin)


def client_for(stack: Stack, project: str) -> httpx.AsyncClient:
    return admin_client(stack, f"/v1/projects/{project}")


@pytest.fixture
async def api(stack: Stack, project: str) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(stack, project) as http:
        yield http


async def created(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def new_topic(api: httpx.AsyncClient) -> dict[str, Any]:
    return await created(api, "/topics", {"name": unique("alerts")})


async def new_destination(api: httpx.AsyncClient) -> dict[str, Any]:
    return await created(
        api, "/destinations", {"name": unique("hook"), "type": "webhook", "metadata": {"url": HOOK}}
    )


async def test_topic_lifecycle(api: httpx.AsyncClient) -> None:
    name = unique("system-alerts")
    topic = await created(api, "/topics", {"name": name})
    assert topic["name"] == name and topic["id"] and topic["projectId"] and topic["createTime"]
    assert topic in await listed(api, "/topics")

    renamed = await api.patch(f"/topics/{topic['id']}", json={"name": f"{name}-2"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == f"{name}-2" and renamed.json()["updateTime"]
    assert renamed.json()["id"] == topic["id"]

    deleted = await api.delete(f"/topics/{topic['id']}")
    assert deleted.status_code == 204, deleted.text
    assert topic["id"] not in {t["id"] for t in await listed(api, "/topics")}
    problem(await api.delete(f"/topics/{topic['id']}"), 404)
    problem(await api.patch(f"/topics/{topic['id']}", json={"name": unique("x")}), 404)


async def test_topic_refusals_change_nothing(api: httpx.AsyncClient) -> None:
    taken = await new_topic(api)
    other = await new_topic(api)
    before = await listed(api, "/topics")
    problem(await api.post("/topics", json={"name": taken["name"]}), 409)
    for bad in ("", "has space", "under_score", "dots.too", "x" * 65):
        refused = problem(await api.post("/topics", json={"name": bad}), 400)
        assert issue_names(refused) == {"body.name"}, bad
    problem(await api.patch(f"/topics/{other['id']}", json={"name": taken["name"]}), 409)
    refused = problem(await api.patch(f"/topics/{other['id']}", json={"name": "no way"}), 400)
    assert issue_names(refused) == {"body.name"}
    problem(await api.delete("/topics/not-an-id"), 404)
    assert await listed(api, "/topics") == before


async def test_event_routes(api: httpx.AsyncClient) -> None:
    topic, other = await new_topic(api), await new_topic(api)
    route = await created(
        api, EVENT_ROUTES, {"eventType": "read.backfill.done", "topicId": topic["id"]}
    )
    assert route["eventType"] == "read.backfill.done" and route["topicId"] == topic["id"]
    assert route["id"] and route["projectId"] and route["createTime"]
    second = await created(
        api, EVENT_ROUTES, {"eventType": "connection.error", "topicId": other["id"]}
    )

    assert [r["id"] for r in await listed(api, EVENT_ROUTES, topicId=topic["id"])] == [route["id"]]
    assert [r["id"] for r in await listed(api, EVENT_ROUTES, eventType="connection.error")] == [
        second["id"]
    ]
    assert await listed(api, EVENT_ROUTES, topicId=topic["id"], eventType="connection.error") == []
    assert {route["id"], second["id"]} <= {r["id"] for r in await listed(api, EVENT_ROUTES)}

    before = await listed(api, EVENT_ROUTES)
    problem(
        await api.post(
            EVENT_ROUTES, json={"eventType": "read.backfill.done", "topicId": topic["id"]}
        ),
        409,
    )
    for body, names in [
        ({"eventType": "read.backfill.finished", "topicId": topic["id"]}, {"body.eventType"}),
        ({"topicId": topic["id"]}, {"body.eventType"}),
        ({"eventType": "write.async.done", "topicId": str(uuid.uuid4())}, {"body.topicId"}),
        ({"eventType": "write.async.done", "topicId": "alerts"}, {"body.topicId"}),
        ({"eventType": "nope", "topicId": ""}, {"body.eventType", "body.topicId"}),
    ]:
        refused = problem(await api.post(EVENT_ROUTES, json=body), 400)
        assert issue_names(refused) == names, (body, refused)
    valid = problem(
        await api.post(EVENT_ROUTES, json={"eventType": "nope", "topicId": topic["id"]}), 400
    )
    assert "installation.created" in valid["detail"]  # the valid types are listed
    for query, names in [
        ({"eventType": "nope"}, {"query.eventType"}),
        ({"topicId": "nope"}, {"query.topicId"}),
    ]:
        refused = problem(await api.get(EVENT_ROUTES, params=query), 400)
        assert issue_names(refused) == names
    assert await listed(api, EVENT_ROUTES) == before

    deleted = await api.delete(f"{EVENT_ROUTES}/{route['id']}")
    assert deleted.status_code == 204, deleted.text
    problem(await api.delete(f"{EVENT_ROUTES}/{route['id']}"), 404)
    assert route["id"] not in {r["id"] for r in await listed(api, EVENT_ROUTES)}

    # Deleting a topic deletes its routes.
    assert (await api.delete(f"/topics/{other['id']}")).status_code == 204
    assert await listed(api, EVENT_ROUTES, topicId=other["id"]) == []


async def test_destination_routes(api: httpx.AsyncClient) -> None:
    topic, other_topic = await new_topic(api), await new_topic(api)
    destination, other_destination = await new_destination(api), await new_destination(api)
    route = await created(
        api, DESTINATION_ROUTES, {"topicId": topic["id"], "destinationId": destination["id"]}
    )
    assert route["topicId"] == topic["id"] and route["destinationId"] == destination["id"]
    assert route["id"] and route["projectId"] and route["createTime"]
    second = await created(
        api,
        DESTINATION_ROUTES,
        {"topicId": topic["id"], "destinationId": other_destination["id"]},
    )
    third = await created(
        api,
        DESTINATION_ROUTES,
        {"topicId": other_topic["id"], "destinationId": destination["id"]},
    )

    def ids(routes: list[dict[str, Any]]) -> set[str]:
        return {r["id"] for r in routes}

    assert ids(await listed(api, DESTINATION_ROUTES, topicId=topic["id"])) == {
        route["id"],
        second["id"],
    }
    assert ids(await listed(api, DESTINATION_ROUTES, destinationId=destination["id"])) == {
        route["id"],
        third["id"],
    }
    assert ids(
        await listed(api, DESTINATION_ROUTES, topicId=topic["id"], destinationId=destination["id"])
    ) == {route["id"]}

    before = await listed(api, DESTINATION_ROUTES)
    problem(
        await api.post(
            DESTINATION_ROUTES, json={"topicId": topic["id"], "destinationId": destination["id"]}
        ),
        409,
    )
    for body, names in [
        ({"topicId": topic["id"], "destinationId": str(uuid.uuid4())}, {"body.destinationId"}),
        ({"topicId": str(uuid.uuid4()), "destinationId": destination["id"]}, {"body.topicId"}),
        # The destination's name is not its id.
        ({"topicId": topic["id"], "destinationId": destination["name"]}, {"body.destinationId"}),
        ({}, {"body.topicId", "body.destinationId"}),
    ]:
        refused = problem(await api.post(DESTINATION_ROUTES, json=body), 400)
        assert issue_names(refused) == names, (body, refused)
    refused = problem(await api.get(DESTINATION_ROUTES, params={"destinationId": "x"}), 400)
    assert issue_names(refused) == {"query.destinationId"}
    assert await listed(api, DESTINATION_ROUTES) == before

    assert (await api.delete(f"{DESTINATION_ROUTES}/{route['id']}")).status_code == 204
    problem(await api.delete(f"{DESTINATION_ROUTES}/{route['id']}"), 404)
    # Deleting a destination deletes its routes.
    assert (await api.delete(f"/destinations/{other_destination['id']}")).status_code == 204
    assert ids(await listed(api, DESTINATION_ROUTES, topicId=topic["id"])) == set()


async def test_routes_reach_only_their_projects_topics_and_destinations(
    stack: Stack, admin: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    topic, destination = await new_topic(api), await new_destination(api)
    event_route = await created(
        api, EVENT_ROUTES, {"eventType": "installation.created", "topicId": topic["id"]}
    )
    other = await new_project(admin)
    async with client_for(stack, other) as elsewhere:
        theirs = await new_topic(elsewhere)
        refused = problem(
            await elsewhere.post(
                EVENT_ROUTES, json={"eventType": "installation.created", "topicId": topic["id"]}
            ),
            400,
        )
        assert issue_names(refused) == {"body.topicId"}
        refused = problem(
            await elsewhere.post(
                DESTINATION_ROUTES,
                json={"topicId": theirs["id"], "destinationId": destination["id"]},
            ),
            400,
        )
        assert issue_names(refused) == {"body.destinationId"}
        problem(await elsewhere.delete(f"{EVENT_ROUTES}/{event_route['id']}"), 404)
        problem(await elsewhere.delete(f"/topics/{topic['id']}"), 404)
        problem(await elsewhere.patch(f"/topics/{topic['id']}", json={"name": unique("x")}), 404)
        assert await listed(elsewhere, EVENT_ROUTES) == []
        assert [t["id"] for t in await listed(elsewhere, "/topics")] == [theirs["id"]]
    assert event_route in await listed(api, EVENT_ROUTES)
    assert topic in await listed(api, "/topics")


async def test_grpc_clients_reach_the_same_topics(stack: Stack, project: str) -> None:
    metadata = (("x-api-key", stack.admin_api_key),)
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        topics = destinations_pb2_grpc.TopicServiceStub(channel)
        topic = await topics.CreateTopic(
            destinations_pb2.CreateTopicRequest(
                project_id_or_name=project, topic=destinations_pb2.Topic(name=unique("grpc"))
            ),
            metadata=metadata,
            timeout=10,
        )
        with pytest.raises(grpc.aio.AioRpcError) as duplicate:
            await topics.CreateTopic(
                destinations_pb2.CreateTopicRequest(
                    project_id_or_name=project, topic=destinations_pb2.Topic(name=topic.name)
                ),
                metadata=metadata,
                timeout=10,
            )
        listed = await topics.ListTopics(
            destinations_pb2.ListTopicsRequest(project_id_or_name=project),
            metadata=metadata,
            timeout=10,
        )
    assert duplicate.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert topic in listed.topics


async def test_only_builder_keys_of_the_project_configure_notifications(
    stack: Stack, project: str, admin: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    topic, destination = await new_topic(api), await new_destination(api)
    frontend = await create_api_key(admin, project, ["frontend"])
    stranger = await create_api_key(admin, await new_project(admin), ["full"])
    paths = [
        ("GET", "/topics", None),
        ("POST", "/topics", {"name": unique("t")}),
        ("PATCH", f"/topics/{topic['id']}", {"name": unique("t")}),
        ("DELETE", f"/topics/{topic['id']}", None),
        ("GET", EVENT_ROUTES, None),
        ("POST", EVENT_ROUTES, {"eventType": "connection.error", "topicId": topic["id"]}),
        ("GET", DESTINATION_ROUTES, None),
        (
            "POST",
            DESTINATION_ROUTES,
            {"topicId": topic["id"], "destinationId": destination["id"]},
        ),
        ("GET", "/destinations", None),
        ("GET", f"/destinations/{destination['name']}?includeSecrets=true", None),
        ("DELETE", f"/destinations/{destination['id']}", None),
        # (a frontend key may list provider apps, without secrets: the embeddable UI
        # does on its Salesforce screen; tests/e2e/test_ui_gaps.py)
        (
            "POST",
            "/provider-apps",
            {"provider": "salesforce", "clientId": "id", "clientSecret": "s"},
        ),
    ]
    async with client_for(stack, project) as client:
        for method, path, body in paths:
            for key, status in ((frontend, 403), (stranger, 404)):
                response = await client.request(method, path, json=body, headers={"X-Api-Key": key})
                problem(response, status)
    assert topic in await listed(api, "/topics")
    assert destination in await listed(api, "/destinations")
    assert await listed(api, DESTINATION_ROUTES, topicId=topic["id"]) == []
