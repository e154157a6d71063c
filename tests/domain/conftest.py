"""The in-process provider sandbox the connector tests call (tests/support/served_sandbox.py),
and the HTTP session connectors share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.domain.connectors.http import provider_session
from tests.support.served_sandbox import ServedSandbox, served_sandbox


@pytest.fixture(scope="module")
async def served() -> AsyncIterator[ServedSandbox]:
    async with served_sandbox() as sandbox:
        yield sandbox


@pytest.fixture
async def sandbox(served: ServedSandbox) -> ServedSandbox:
    """The served sandbox, reset for each test."""
    served.reset()
    return served


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with provider_session() as session:
        yield session
