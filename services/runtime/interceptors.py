"""Server interceptors every ampmesh service runs, outermost first:

    RequestIdInterceptor      x-request-id from the caller or new; contextvar; echoed back
    TelemetryInterceptor      one JSON access-log line and Prometheus metrics per RPC
    AuthorizationInterceptor  caller identity from its certificate; AccessPolicy check
    errors.ErrorInterceptor   unexpected exceptions -> INTERNAL without their text

server.default_interceptors() builds this list. Each wraps the handler (see _handlers.py)
for all four RPC kinds, so streaming RPCs are timed, logged and authorized too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health as _health
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from services.runtime._handlers import RpcInfo, method_name, wrap_handler
from services.runtime.identity import (
    AccessPolicy,
    caller_identity,
    reset_current_caller,
    set_current_caller,
)
from services.runtime.logs import get_logger
from services.runtime.request_id import (
    REQUEST_ID_HEADER,
    accept_request_id,
    reset_request_id,
    set_request_id,
)

_log = get_logger("ampmesh.rpc")

# Codes that mean "the server failed", logged as errors; the rest are the caller's problem
# or normal outcomes and are logged at info.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)

# Label value for methods the server does not have: method names come from the client, and
# one label value per made-up name would let any caller grow our metrics without bound.
UNKNOWN_METHOD = "unknown"


def metadata_value(metadata: Iterable[tuple[str, Any]] | None, key: str) -> Any:
    for k, v in metadata or ():
        if k == key:
            return v
    return None


class RequestIdInterceptor(grpc.aio.ServerInterceptor):
    """Give every RPC a request id, visible to the handler and sent back to the caller.

    The id goes back in the *trailing* metadata, set before the handler runs: grpc.aio
    keeps it when the handler later calls context.abort(code, message) without trailers of
    its own (verified on 1.85.1), which is when a caller most needs the id. Not in the
    initial metadata: response headers commit a call, and a committed call is never
    retried (gRFC A6), so sending them early would switch off every retry policy.
    A handler that aborts with trailers of its own should use errors.abort_with_details,
    which keeps the id.
    """

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        return wrap_handler(handler, method_name(details), self._around)

    @asynccontextmanager
    async def _around(self, rpc: RpcInfo, context: Any) -> AsyncIterator[None]:
        request_id = accept_request_id(
            metadata_value(context.invocation_metadata(), REQUEST_ID_HEADER)
        )
        token = set_request_id(request_id)
        echo = (REQUEST_ID_HEADER, request_id)
        context.set_trailing_metadata((echo,))
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                yield
            # The handler may have replaced the trailers (on success; after an abort they
            # are fixed): put the id back.
            trailers = tuple(context.trailing_metadata() or ())
            if echo not in trailers:
                context.set_trailing_metadata((*trailers, echo))
        finally:
            reset_request_id(token)


class RpcMetrics:
    """Per-RPC Prometheus metrics, named and labelled as go-grpc-prometheus does, so the
    usual dashboards and alerts work unchanged."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by method and status code.",
            ["grpc_service", "grpc_method", "grpc_type", "grpc_code"],
            registry=registry,
        )
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its status, on the server.",
            ["grpc_service", "grpc_method", "grpc_type"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )

    def observe(self, rpc: RpcInfo, code: grpc.StatusCode, seconds: float) -> None:
        self.handled.labels(rpc.service, rpc.name, rpc.kind, code.name).inc()
        self.handling_seconds.labels(rpc.service, rpc.name, rpc.kind).observe(seconds)


@lru_cache(maxsize=1)
def default_metrics() -> RpcMetrics:
    """The process-wide metrics on the default registry (metrics register only once)."""
    return RpcMetrics()


class TelemetryInterceptor(grpc.aio.ServerInterceptor):
    """Access log and metrics per RPC: method, status code, duration, peer, request id.

    Never the request or response bodies: they can carry credentials and customer data.
    It also answers methods this server does not have, so that they are logged and
    counted (UNIMPLEMENTED) instead of being refused below every interceptor.
    """

    def __init__(self, metrics: RpcMetrics | None = None) -> None:
        self._metrics = metrics or default_metrics()

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        method = method_name(details)
        handler = await continuation(details)
        if handler is None:
            return wrap_handler(_unknown_method_handler(method), _UNKNOWN_RPC, self._around)
        return wrap_handler(handler, method, self._around)

    @asynccontextmanager
    async def _around(self, rpc: RpcInfo, context: Any) -> AsyncIterator[None]:
        start = time.perf_counter()
        code: grpc.StatusCode | None = None
        try:
            yield
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            remaining = context.time_remaining()
            expired = remaining is not None and remaining <= 0
            code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = grpc.StatusCode.UNKNOWN  # only if ErrorInterceptor is not installed
            raise
        finally:
            seconds = time.perf_counter() - start
            if code is None:
                code = context.code() or grpc.StatusCode.OK
            self._metrics.observe(rpc, code, seconds)
            self._log(rpc, code, seconds, context)

    @staticmethod
    def _log(rpc: RpcInfo, code: grpc.StatusCode, seconds: float, context: Any) -> None:
        fields: dict[str, Any] = {
            "method": rpc.method,
            "grpc_type": rpc.kind,
            "code": code.name,
            "duration_ms": round(seconds * 1000, 3),
            "peer": caller_identity(context),
        }
        if code is not grpc.StatusCode.OK:
            details = context.details()
            if details:
                # The message the client saw (never exception text: see errors.py).
                fields["message"] = str(details)[:300]
        if rpc.service == _health.SERVICE_NAME:
            _log.debug("rpc", **fields)  # probed every few seconds by load balancers
        elif code in _SERVER_FAULTS:
            _log.error("rpc", **fields)
        else:
            _log.info("rpc", **fields)


class AuthorizationInterceptor(grpc.aio.ServerInterceptor):
    """Reject callers the AccessPolicy does not allow; expose the caller to handlers.

    The identity is read from the peer certificate in the ServicerContext, which only the
    wrapped handler can see; the check runs before the handler does (and, for client
    streams, before any request is read).
    """

    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        return wrap_handler(handler, method_name(details), self._around)

    @asynccontextmanager
    async def _around(self, rpc: RpcInfo, context: Any) -> AsyncIterator[None]:
        identity = caller_identity(context)
        denial = self.policy.denial(identity, rpc.method)
        if denial is not None:
            code = (
                grpc.StatusCode.UNAUTHENTICATED
                if identity is None
                else grpc.StatusCode.PERMISSION_DENIED
            )
            await context.abort(code, denial)
        token = set_current_caller(identity)
        try:
            yield
        finally:
            reset_current_caller(token)


_UNKNOWN_RPC = f"/{UNKNOWN_METHOD}/{UNKNOWN_METHOD}"


def _unknown_method_handler(method: str) -> Any:
    # stream_stream reads nothing before aborting, so it answers any kind of client call.
    async def unknown(request_iterator: Any, context: Any) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {method[:200]}")

    return grpc.stream_stream_rpc_method_handler(unknown)
