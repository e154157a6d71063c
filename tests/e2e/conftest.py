"""REST clients of the session's stack, and a control client of its provider sandbox, that
many end-to-end modules use (the helpers they share are in tests/support/)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.control_plane import admin_client, client
from tests.support.sandbox import controlling
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The API's root, with the org admin key."""
    async with admin_client(stack) as http:
        yield http


@pytest.fixture(scope="module")
async def anonymous(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The API's root, without credentials (each request sends its own)."""
    async with client(stack) as http:
        yield http


@pytest.fixture
async def sandbox(stack: Stack) -> AsyncIterator[Any]:
    """The stack's sandbox control service; faults a test injected are cleared after it."""
    async with controlling(stack) as control:
        yield control
