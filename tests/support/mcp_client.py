"""An MCP client session to one of the mesh's MCP servers, as a builder's tool opens it.

`mcp_session(url, bearer=...)` is the real `mcp` client over streamable HTTP, with an
`Authorization: Bearer` header when a credential is given; `call(session, tool, args)`
returns the tool's structured content, or raises `ToolFailed` with the error text the
tool answered (an MCP error is a result, not an exception, so a test would otherwise
have to remember to look).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


class ToolFailed(AssertionError):
    """A tool answered an MCP error; `text` is what it said."""

    def __init__(self, tool: str, text: str) -> None:
        super().__init__(f"{tool}: {text}")
        self.tool = tool
        self.text = text


@asynccontextmanager
async def mcp_session(
    url: str, *, bearer: str | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[Client]:
    """An initialized MCP client session to `url` (the server's /mcp endpoint)."""
    sent = dict(headers or {})
    if bearer is not None:
        sent["Authorization"] = f"Bearer {bearer}"
    async with (
        create_mcp_http_client(headers=sent) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", str(block)) for block in result.content)


async def call(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    """Call `tool`; its structured content (or text, if it has none), else ToolFailed."""
    result = await client.call_tool(tool, arguments or {})
    if result.is_error:
        raise ToolFailed(tool, _text(result))
    if result.structured_content is not None:
        return result.structured_content
    return _text(result)


async def call_failing(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> str:
    """Call `tool` expecting an MCP error; the error's text."""
    result = await client.call_tool(tool, arguments or {})
    assert result.is_error, f"{tool} succeeded: {result.structured_content or result.content}"
    return _text(result)
