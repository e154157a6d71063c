"""The server interceptor every ampmesh service runs: MeshInterceptor, which for each RPC

    request id       x-request-id from the caller or new; contextvar; echoed back
    authorization    caller identity from its certificate; AccessPolicy check
    decoding         a request that is not its message, or holds a NUL in a string:
                     INVALID_ARGUMENT naming the field (request_decoding.py)
    errors           unexpected exceptions -> INTERNAL without their text (errors.py)
    telemetry        one JSON access-log line and Prometheus metrics per RPC; with
                     tracing on, a SERVER span continuing the caller's `traceparent`

in that order on the way in, and the reverse on the way out. It is one interceptor, not
four, because each grpc.aio interceptor layer costs an extra await of the continuation, a
rebuilt handler and a wrapper coroutine per RPC: layered, they halved the throughput of a
trivial RPC (bench/runtime_overhead.py). The handler wrapping is built once per method and
reused; per RPC there is one wrapper coroutine with plain try/except/finally.

server.default_interceptors() installs it. It wraps all four RPC kinds (see _handlers.py),
so streaming RPCs are timed, logged and authorized too.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health as _health
from opentelemetry import context as _otel_context
from opentelemetry import trace as _trace
from opentelemetry.trace import Status, StatusCode
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from services.runtime import tracing as _tracing
from services.runtime._handlers import RpcInfo, method_name, rewrap, rpc_kind
from services.runtime.errors import abort_invalid_argument, abort_unexpected
from services.runtime.identity import (
    TRUSTED_FORWARDERS,
    XFCC_HEADER,
    AccessPolicy,
    caller_identity,
    reset_current_caller,
    resolve_caller,
    set_current_caller,
)
from services.runtime.logs import get_logger
from services.runtime.request_decoding import Undecodable, checked_deserializer
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

# Wrapped handlers kept per method name. Only methods a registered handler answers are
# kept (unknown ones are never cached), so this is the server's method count in practice;
# the bound only matters for a generic handler that answers any name it is given.
MAX_CACHED_METHODS = 4096

_bind_log_context = structlog.contextvars.bind_contextvars
_reset_log_context = structlog.contextvars.reset_contextvars
_perf_counter = time.perf_counter
_AbortError = grpc.aio.AbortError
_CancelledError = asyncio.CancelledError
_OK = grpc.StatusCode.OK
_UNKNOWN = grpc.StatusCode.UNKNOWN


def metadata_value(metadata: Iterable[tuple[str, Any]] | None, key: str) -> Any:
    for k, v in metadata or ():
        if k == key:
            return v
    return None


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

    def for_method(self, rpc: RpcInfo) -> MethodMetrics:
        """The metrics of one method, with its labelled children looked up once."""
        return MethodMetrics(self, rpc)


class MethodMetrics:
    """RpcMetrics.observe for one method, without a .labels() lookup per RPC."""

    __slots__ = ("_handled", "_metrics", "_rpc", "_seconds")

    def __init__(self, metrics: RpcMetrics, rpc: RpcInfo) -> None:
        self._metrics = metrics
        self._rpc = rpc
        self._handled: dict[grpc.StatusCode, Any] = {}
        self._seconds: Any = None  # created on the first observation, as .labels() would

    def observe(self, code: grpc.StatusCode, seconds: float) -> None:
        handled = self._handled.get(code)
        if handled is None:
            rpc = self._rpc
            handled = self._handled[code] = self._metrics.handled.labels(
                rpc.service, rpc.name, rpc.kind, code.name
            )
        handled.inc()
        if self._seconds is None:
            rpc = self._rpc
            self._seconds = self._metrics.handling_seconds.labels(rpc.service, rpc.name, rpc.kind)
        self._seconds.observe(seconds)


@lru_cache(maxsize=1)
def default_metrics() -> RpcMetrics:
    """The process-wide metrics on the default registry (metrics register only once)."""
    return RpcMetrics()


class MeshInterceptor(grpc.aio.ServerInterceptor):
    """Request id, authorization, error mapping, access log and metrics for every RPC.

    Request id: the id goes back in the *trailing* metadata, set before the handler runs:
    grpc.aio keeps it when the handler later calls context.abort(code, message) without
    trailers of its own (verified on 1.85.1), which is when a caller most needs the id.
    Not in the initial metadata: response headers commit a call, and a committed call is
    never retried (gRFC A6), so sending them early would switch off every retry policy.
    A handler that aborts with trailers of its own should use errors.abort_with_details,
    which keeps the id.

    Authorization: the identity is read from the peer certificate in the ServicerContext,
    which only the wrapped handler can see; the check runs before the handler does (and,
    for client streams, before any request is read). Callers the AccessPolicy refuses get
    PERMISSION_DENIED (UNAUTHENTICATED without a mesh identity), naming them. When the peer
    is Envoy, the caller is the identity Envoy forwards in XFCC (identity.resolve_caller).

    Telemetry: method, status code, duration, peer, request id; never the request or
    response bodies, which can carry credentials and customer data. Methods this server
    does not have are answered here (UNIMPLEMENTED), so that they are logged and counted
    under one "unknown" label instead of being refused below every interceptor.
    """

    def __init__(self, policy: AccessPolicy, metrics: RpcMetrics | None = None) -> None:
        self.policy = policy
        self._metrics = metrics or default_metrics()
        # method -> (the handler grpc gave us, our wrapping of it). grpc.aio hands over the
        # same handler object for a method on every call; if it ever does not, rewrap.
        self._wrapped: dict[str, tuple[Any, Any]] = {}
        self._unknown = _Route(RpcInfo(_UNKNOWN_RPC, "bidi_stream"), self._metrics, None)

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        handler = await continuation(details)
        method = method_name(details)
        if handler is None:
            return rewrap(_unknown_method_handler(method), self._unknown.wrap)
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        route = _Route(RpcInfo(method, rpc_kind(handler)), self._metrics, self.policy)
        wrapped = rewrap(handler, route.wrap, lambda parse: checked_deserializer(parse, method))
        if cached is not None or len(self._wrapped) < MAX_CACHED_METHODS:
            self._wrapped[method] = (handler, wrapped)
        return wrapped


@dataclass(slots=True)
class _Call:
    """What one RPC carries from its start to its end."""

    start: float
    echo: tuple[str, str]
    request_id_token: object
    log_tokens: Any
    identity: str | None
    caller_token: object
    span: Any = None  # the RPC's span, with tracing on
    span_token: object = None


class _Route:
    """Everything per method that does not change between RPCs, and the per-RPC steps.

    policy None: no authorization (the unknown-method answer, which any caller may get).
    """

    __slots__ = ("_health", "_metrics", "_span_attributes", "_span_name", "info", "policy")

    def __init__(self, info: RpcInfo, metrics: RpcMetrics, policy: AccessPolicy | None) -> None:
        self.info = info
        self.policy = policy
        self._metrics = metrics.for_method(info)
        self._health = info.service == _health.SERVICE_NAME
        self._span_name = info.method.lstrip("/")
        self._span_attributes = {
            "rpc.system": "grpc",
            "rpc.service": info.service,
            "rpc.method": info.name,
        }

    def wrap(self, behaviour: Any, response_streaming: bool) -> Any:
        """The behaviour grpc.aio runs instead of `behaviour`, for this method's RPCs."""
        # grpc.aio awaits a handler only when it is a coroutine function, and tells a
        # streaming handler that writes with `await context.write(...)` from a generator
        # by iscoroutinefunction: the wrapper is `async def` of the same shape.
        if response_streaming and not inspect.iscoroutinefunction(behaviour):
            return self._wrap_generator(behaviour)
        return self._wrap_coroutine(behaviour)

    def _wrap_coroutine(self, behaviour: Any) -> Any:
        enter, refusal, leave, method = self.enter, self.refusal, self.leave, self.info.method
        awaits = inspect.iscoroutinefunction(behaviour)

        async def run(request: Any, context: Any) -> Any:
            call = enter(context)
            code = None
            try:
                refused = refusal(call)
                if refused is not None:
                    await context.abort(*refused)
                if request.__class__ is Undecodable:
                    await _refuse_undecodable(context, request)
                try:
                    if awaits:
                        result = await behaviour(request, context)
                    else:
                        result = behaviour(request, context)
                        if inspect.isawaitable(result):
                            result = await result
                except _AbortError:
                    raise  # the handler chose its status
                except Exception as error:
                    await abort_unexpected(context, method, error)
                _echo_request_id(call, context)
                return result
            except _AbortError:
                code = context.code() or _UNKNOWN
                raise
            except BaseException as error:
                code = _failure_code(error, context)
                raise
            finally:
                leave(call, context, code)

        return run

    def _wrap_generator(self, behaviour: Any) -> Any:
        enter, refusal, leave, method = self.enter, self.refusal, self.leave, self.info.method

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            call = enter(context)
            code = None
            try:
                refused = refusal(call)
                if refused is not None:
                    await context.abort(*refused)
                if request.__class__ is Undecodable:
                    await _refuse_undecodable(context, request)
                try:
                    responses = behaviour(request, context)
                    if hasattr(responses, "__aiter__"):
                        async for response in responses:
                            yield response
                    else:
                        for response in responses:
                            yield response
                except _AbortError:
                    raise
                except Exception as error:
                    await abort_unexpected(context, method, error)
                _echo_request_id(call, context)
            except _AbortError:
                code = context.code() or _UNKNOWN
                raise
            except BaseException as error:
                code = _failure_code(error, context)
                raise
            finally:
                leave(call, context, code)

        return stream

    def enter(self, context: Any) -> _Call:
        """Start an RPC: its request id (contextvar, log context, trailers) and caller."""
        start = _perf_counter()
        metadata = context.invocation_metadata()
        request_id = accept_request_id(metadata_value(metadata, REQUEST_ID_HEADER))
        echo = (REQUEST_ID_HEADER, request_id)
        context.set_trailing_metadata((echo,))
        request_id_token = set_request_id(request_id)
        log_tokens = _bind_log_context(request_id=request_id)
        identity = caller_identity(context)
        if identity in TRUSTED_FORWARDERS:
            identity = resolve_caller(identity, metadata_value(metadata, XFCC_HEADER))
        call = _Call(
            start, echo, request_id_token, log_tokens, identity, set_current_caller(identity)
        )
        if _tracing.TRACER is not None and not self._health:  # probes would be most spans
            self._start_span(call, metadata)
        return call

    def _start_span(self, call: _Call, metadata: Any) -> None:
        span = _tracing.start_server_span(self._span_name, self._span_attributes, metadata)
        call.span = span
        call.span_token = _otel_context.attach(_trace.set_span_in_context(span))

    def refusal(self, call: _Call) -> tuple[grpc.StatusCode, str] | None:
        """The status to abort with when the policy does not let the caller call this
        method: PERMISSION_DENIED naming the caller (UNAUTHENTICATED without one)."""
        if self.policy is None:
            return None
        identity = call.identity
        denial = self.policy.denial(identity, self.info.method)
        if denial is None:
            return None
        if identity is None:
            return grpc.StatusCode.UNAUTHENTICATED, denial
        return grpc.StatusCode.PERMISSION_DENIED, denial

    def leave(self, call: _Call, context: Any, code: grpc.StatusCode | None) -> None:
        """End an RPC: metrics and the access-log line, then unset what enter() set."""
        try:
            seconds = _perf_counter() - call.start
            if code is None:
                code = context.code() or _OK
            self._metrics.observe(code, seconds)
            self._log(code, seconds, call.identity, context)
        finally:
            if call.span is not None:
                _end_span(call, code)
            reset_current_caller(call.caller_token)
            _reset_log_context(**call.log_tokens)
            reset_request_id(call.request_id_token)

    def _log(
        self, code: grpc.StatusCode, seconds: float, identity: str | None, context: Any
    ) -> None:
        fields: dict[str, Any] = {
            "method": self.info.method,
            "grpc_type": self.info.kind,
            "code": code.name,
            "duration_ms": round(seconds * 1000, 3),
            "peer": identity,
        }
        if code is not _OK:
            details = context.details()
            if details:
                # The message the client saw (never exception text: see errors.py).
                fields["message"] = str(details)[:300]
        if self._health:
            _log.debug("rpc", **fields)  # probed every few seconds by load balancers
        elif code in _SERVER_FAULTS:
            _log.error("rpc", **fields)
        else:
            _log.info("rpc", **fields)


def _end_span(call: _Call, code: grpc.StatusCode | None) -> None:
    span = call.span
    if code is not None:
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_FAULTS:
            span.set_status(Status(StatusCode.ERROR, code.name))
    span.end()
    _otel_context.detach(call.span_token)  # type: ignore[arg-type]


def _echo_request_id(call: _Call, context: Any) -> None:
    # The handler may have replaced the trailers (on success; after an abort they are
    # fixed): put the id back.
    trailers = context.trailing_metadata()
    if not trailers or call.echo not in trailers:
        context.set_trailing_metadata((*(trailers or ()), call.echo))


async def _refuse_undecodable(context: Any, request: Undecodable) -> None:
    """A request the deserializer refused (request_decoding.py): INVALID_ARGUMENT naming
    the field, before the handler runs."""
    violations = [(request.field, request.reason)] if request.field else []
    await abort_invalid_argument(context, request.message, violations)


def _failure_code(error: BaseException, context: Any) -> grpc.StatusCode:
    if isinstance(error, _CancelledError):
        remaining = context.time_remaining()
        expired = remaining is not None and remaining <= 0
        return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
    return _UNKNOWN  # not an Exception (those become INTERNAL): GeneratorExit, SystemExit…


_UNKNOWN_RPC = f"/{UNKNOWN_METHOD}/{UNKNOWN_METHOD}"


def _unknown_method_handler(method: str) -> Any:
    # stream_stream reads nothing before aborting, so it answers any kind of client call.
    async def unknown(request_iterator: Any, context: Any) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"unknown method {method[:200]}")

    return grpc.stream_stream_rpc_method_handler(unknown)
