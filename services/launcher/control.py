"""The running launcher's control channel: a Unix socket other `ampmesh` commands talk to.

One JSON object per line each way. The socket lives in the home (0600: only the user who
runs the mesh may restart its processes), or, when the home's path is too long for a
socket address, in the temporary directory under a name derived from the home; mesh.json
records where (`controlSocket`).

    {"command": "restart", "name": "redis"}
      -> {"ok": true, "name": "redis", "pid": 4242, "restarts": 1}
      -> {"ok": false, "error": "no process is named 'x'; the mesh runs: postgres, ..."}
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

SOCKET_FILE = "launcher.sock"
# sockaddr_un holds 108 bytes on Linux (104 on macOS), the terminating NUL included.
_MAX_SOCKET_PATH = 100
_MAX_LINE = 64 * 1024

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlError(RuntimeError):
    """The launcher could not be asked (none runs, or it did not answer)."""


def socket_path(home: Path) -> Path:
    path = home / SOCKET_FILE
    if len(str(path).encode()) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"ampmesh-{digest}.sock"


async def serve(path: Path, handler: Handler) -> asyncio.Server:
    """Answer requests on the socket at path until the returned server is closed."""
    path.unlink(missing_ok=True)  # left by a launcher that was killed

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not a JSON object")
            except ValueError as error:
                answer: dict[str, Any] = {"ok": False, "error": f"bad request: {error}"}
            else:
                answer = await handler(request)
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the asker went away; whatever it asked for still happened
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    server = await asyncio.start_unix_server(connected, path=str(path), limit=_MAX_LINE)
    path.chmod(0o600)
    return server


async def ask(path: Path, request: dict[str, Any], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109 (the whole exchange)
    """Send one request to the launcher and return its answer."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(str(path), limit=_MAX_LINE)
            try:
                writer.write(json.dumps(request).encode() + b"\n")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(f"no launcher listens on {path}") from None
    except TimeoutError:
        raise ControlError(f"the launcher did not answer within {timeout:.0f}s") from None
    if not line:
        raise ControlError("the launcher closed the connection without answering")
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ControlError("the launcher's answer is not a JSON object")
    return answer
