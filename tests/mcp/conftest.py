"""What the MCP tests share: the stack's REST admin client and sandbox control, and
builder-mcp served in the test process with the auth settings a test asks for (the same
code the builder-mcp process runs, against the stack's api)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from services.builder_mcp.tools import BuilderMcpSettings, build_server
from services.runtime.mcp_service import serving_mcp
from tests.support.control_plane import admin_client
from tests.support.sandbox import controlling
from tests.support.stack import Stack


@pytest.fixture(scope="module")
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The API's root, with the org admin key."""
    async with admin_client(stack) as http:
        yield http


@pytest.fixture
async def sandbox(stack: Stack) -> AsyncIterator[Any]:
    """The stack's sandbox control service; faults a test injected are cleared after it."""
    async with controlling(stack) as control:
        yield control


@pytest.fixture
def builder_mcp(stack: Stack) -> Callable[..., AbstractAsyncContextManager[str]]:
    """builder-mcp as the launcher configures it, with the given settings changed."""

    @asynccontextmanager
    async def serve(**changes: Any) -> AsyncIterator[str]:
        settings = BuilderMcpSettings(
            **{
                "service_name": "builder-mcp",
                "identity": "builder-mcp",
                "api_address": stack.mesh.service("api").address,
                "api_identity": "api",
                "api_key": SecretStr(stack.admin_api_key),
                "mcp_host": "127.0.0.1",
                "mcp_port": 0,
                "proxy_url": stack.endpoints["proxy"],
                **changes,
            }
        )
        async with serving_mcp(build_server, settings, stack.credentials("builder-mcp")) as url:
            yield url

    return serve
