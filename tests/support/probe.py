"""A tiny bytes-in/bytes-out service for exercising the runtime over real sockets.

No generated code: a generic handler for "ampmesh.test.v1.Probe", whose methods report
what the server saw (caller identity, request id, metadata) or misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from services.runtime.channels import RetryPolicy, mesh_channel
from services.runtime.errors import abort_invalid_argument, abort_not_found
from services.runtime.identity import AccessPolicy, current_caller
from services.runtime.interceptors import RpcMetrics
from services.runtime.request_id import current_request_id
from services.runtime.server import MeshServer, Service
from services.runtime.tls import ServiceCredentials

PROBE_SERVICE = "ampmesh.test.v1.Probe"
SECRET = "hunter2-db-password"  # must never reach a client or a log line


class Probe:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.flaky_attempts: Counter[bytes] = Counter()
        self.entered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def whoami(self, request: bytes, context: Any) -> bytes:
        self.calls["Whoami"] += 1
        return json.dumps(
            {"identity": current_caller(), "request_id": current_request_id()}
        ).encode()

    async def headers(self, request: bytes, context: Any) -> bytes:
        self.calls["Headers"] += 1
        return json.dumps(dict(context.invocation_metadata())).encode()

    async def slow(self, request: bytes, context: Any) -> bytes:
        self.calls["Slow"] += 1
        self.entered["Slow"].set()
        await asyncio.sleep(float(request.decode() or "0.5"))
        return b"done"

    async def boom(self, request: bytes, context: Any) -> bytes:
        self.calls["Boom"] += 1
        raise ValueError(f"connection string contains {SECRET}")

    async def not_found(self, request: bytes, context: Any) -> bytes:
        await abort_not_found(context, "connection", request.decode())

    async def invalid(self, request: bytes, context: Any) -> bytes:
        await abort_invalid_argument(
            context,
            "the installation is incomplete",
            {"installation.group_ref": "required", "installation.config": "unknown object"},
            reason="INSTALLATION_INCOMPLETE",
        )

    async def not_implemented(self, request: bytes, context: Any) -> bytes:
        # What a generated servicer base class does for a method nobody overrode.
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    async def flaky(self, request: bytes, context: Any) -> bytes:
        """UNAVAILABLE for the first N attempts of key (request = b"key:N")."""
        key, _, failures = request.partition(b":")
        self.flaky_attempts[key] += 1
        if self.flaky_attempts[key] <= int(failures or b"0"):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return b"ok after %d" % self.flaky_attempts[key]

    async def count(self, request: bytes, context: Any) -> AsyncIterator[bytes]:
        self.calls["Count"] += 1
        for i in range(int(request.decode() or "3")):
            yield str(i).encode()

    def handler(self) -> Any:
        u = grpc.unary_unary_rpc_method_handler
        return grpc.method_handlers_generic_handler(
            PROBE_SERVICE,
            {
                "Whoami": u(self.whoami),
                "Headers": u(self.headers),
                "Slow": u(self.slow),
                "Boom": u(self.boom),
                "NotFound": u(self.not_found),
                "Invalid": u(self.invalid),
                "NotImplemented": u(self.not_implemented),
                "Flaky": u(self.flaky),
                "Count": grpc.unary_stream_rpc_method_handler(self.count),
            },
        )

    def service(self) -> Service:
        return Service.from_handler(PROBE_SERVICE, self.handler())


def method(name: str) -> str:
    return f"/{PROBE_SERVICE}/{name}"


@asynccontextmanager
async def serving(
    credentials: ServiceCredentials,
    services: list[Service],
    *,
    policy: AccessPolicy | None = None,
    metrics: RpcMetrics | None = None,
    **kwargs: Any,
) -> AsyncIterator[MeshServer]:
    """A MeshServer on 127.0.0.1, any free port, for the length of the block."""
    server = MeshServer(
        credentials=credentials,
        services=services,
        host="127.0.0.1",
        port=0,
        policy=policy,
        metrics=metrics,
        grace_period=kwargs.pop("grace_period", 2.0),
        **kwargs,
    )
    async with server:
        yield server


def dial(
    server: MeshServer,
    credentials: ServiceCredentials,
    *,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> grpc.aio.Channel:
    """An mTLS channel to server, checking it is who it should be."""
    return mesh_channel(
        f"127.0.0.1:{server.port}",
        credentials,
        server_identity=server.credentials.identity,
        retry=retry,
        **kwargs,
    )
