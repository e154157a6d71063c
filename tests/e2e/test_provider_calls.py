"""The api calling a customer's provider through their connection
(services/api/provider_calls.py), as the object-metadata RPCs show it: a token the provider
refuses is refreshed once and the call made again, a provider that limits the rate
answers 503 with its Retry-After, one that does not answer in time answers 503 too, and no
answer carries a credential."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ampmesh.sandbox.v1 import sandbox_pb2

from tests.support.control_plane import problem
from tests.support.metadata import MetadataWorld, metadata_world
from tests.support.sandbox import duration
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

GROUP = "calls"
HUBSPOT = sandbox_pb2.PROVIDER_HUBSPOT


@pytest.fixture(scope="module")
async def world(stack: Stack) -> AsyncIterator[MetadataWorld]:
    made = await metadata_world(stack)
    await made.connect("hubspot", GROUP)
    try:
        yield made
    finally:
        await made.http.aclose()


async def refreshes(sandbox: Any) -> int:
    """refresh_token requests the sandbox's HubSpot has answered so far."""
    counters = await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())
    hubspot = next(p for p in counters.providers if p.provider == HUBSPOT)
    return int(hubspot.token_requests_by_grant_type.get("refresh_token", 0))


async def inject(sandbox: Any, **fault: Any) -> None:
    await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(
            fault=sandbox_pb2.Fault(
                endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS, provider=HUBSPOT, **fault
            )
        )
    )


def metadata_path(object_name: str) -> str:
    return f"/providers/hubspot/objects/{object_name}/metadata"


async def test_a_token_the_provider_refuses_is_refreshed_once_and_the_call_made_again(
    world: MetadataWorld, sandbox: Any
) -> None:
    seen = await refreshes(sandbox)
    await inject(sandbox, kind=sandbox_pb2.FAULT_KIND_EXPIRED_TOKEN, object_name="deals", count=1)
    described = await world.http.get(metadata_path("deals"), params={"groupRef": GROUP})
    assert described.status_code == 200, described.text
    assert described.json()["name"] == "deals"
    assert await refreshes(sandbox) == seen + 1


async def test_a_provider_limiting_the_rate_answers_503_with_its_retry_after(
    world: MetadataWorld, sandbox: Any
) -> None:
    connection = world.connections[("hubspot", GROUP)]
    # Longer than a caller should wait: answered at once, with the provider's advice.
    await inject(
        sandbox,
        kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT,
        object_name="companies",
        retry_after=duration(120),
    )
    limited = await world.http.get(metadata_path("companies"), params={"groupRef": GROUP})
    body = problem(limited, 503)
    assert limited.headers["retry-after"] == "120"
    assert "could not describe object 'companies'" in body["detail"]
    tokens = await world.http.get(
        f"/connections/{connection['id']}", params={"includeRefreshToken": "true"}
    )
    secrets = tokens.json()["oauth2AuthorizationCode"]
    assert secrets["accessToken"]["token"] not in limited.text
    assert secrets["refreshToken"]["token"] not in limited.text

    # Once the provider answers again, so does the api (nothing was cached meanwhile).
    await sandbox.ClearFaults(sandbox_pb2.ClearFaultsRequest())
    described = await world.http.get(metadata_path("companies"), params={"groupRef": GROUP})
    assert described.status_code == 200, described.text


async def test_a_provider_that_does_not_answer_in_time_answers_503(
    world: MetadataWorld, sandbox: Any
) -> None:
    # Slower than the api's budget for a call a person waits on (CALL_BUDGET, 20 s).
    await inject(
        sandbox,
        kind=sandbox_pb2.FAULT_KIND_SLOW_RESPONSE,
        object_name="contacts",
        delay=duration(25),
    )
    slow = await world.http.get(metadata_path("contacts"), params={"groupRef": GROUP}, timeout=60)
    body = problem(slow, 503)
    assert "did not answer within 20 s" in body["detail"]
    assert int(slow.headers["retry-after"]) > 0
