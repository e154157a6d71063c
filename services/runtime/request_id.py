"""The request id: one id per RPC, taken from the caller or made here, carried in a contextvar.

It ties together the access log line, any log line the handler writes, the "internal error
(request id …)" message a client sees, and the calls this RPC makes to other services
(channels.py forwards it), so one id follows a request across the mesh.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

REQUEST_ID_HEADER = "x-request-id"

# Accept a caller's id only when it is short and plain: it ends up in logs and in headers we
# send on, so a hostile value must not be able to forge log lines or bloat every call.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_request_id: ContextVar[str | None] = ContextVar("ampmesh_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the RPC being handled by this task, or None outside an RPC."""
    return _request_id.get()


def new_request_id() -> str:
    """A random (version 4) UUID, as 32 hex digits."""
    # uuid.uuid4().hex without building a UUID object: this runs for most RPCs.
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


def accept_request_id(candidate: str | bytes | None) -> str:
    """The caller's id when it is acceptable, else a fresh one."""
    if isinstance(candidate, bytes):
        candidate = candidate.decode("ascii", "replace")
    if candidate and _ACCEPTABLE.fullmatch(candidate):
        return candidate
    return new_request_id()


def set_request_id(request_id: str | None) -> object:
    """Set the id for the current context; returns a token for reset_request_id."""
    return _request_id.set(request_id)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]
