"""Tracing off (AMPMESH_OTLP_ENDPOINT unset, as the session's mesh runs): a backfill's
webhooks carry no `traceparent` (Envoy starts no trace, messenger adds none), and its
operation names no trace."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.sandbox import controlling
from tests.support.stack import Stack
from tests.support.webhooks import HOOK, Receiver, serve
from tests.tracing.tracing_world import backfilled

pytestmark = pytest.mark.e2e


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve(Receiver()) as running:
        yield running


async def test_without_tracing_no_trace_reaches_the_webhook_or_the_operation(
    stack: Stack, receiver: Receiver
) -> None:
    assert not (stack.mesh.service("api").settings or {}).get("AMPMESH_OTLP_ENDPOINT")
    control: Any
    async with controlling(stack) as control:
        _, _, operation = await backfilled(stack, control, receiver)
    assert operation["status"] == "success", operation
    assert not operation["metadata"].get("traceId"), operation
    requests = receiver.at(HOOK)
    assert requests
    assert not [r.headers["traceparent"] for r in requests if "traceparent" in r.headers]
