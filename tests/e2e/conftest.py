"""REST clients of the session's stack that many end-to-end modules use (the helpers they
share are in control_plane.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import Stack
from tests.e2e.control_plane import admin_client, client


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
