"""Wrap a grpc.RpcMethodHandler of any of the four kinds with an async context manager.

Server interceptors in grpc.aio see only the method name and metadata, never the request
or the ServicerContext; to act per RPC (set contextvars, time it, read the peer's
certificate, translate exceptions) they wrap the handler's behaviour. Doing it here, once,
for unary and streaming handlers alike, keeps each interceptor to its one concern and means
no kind of RPC slips past the authorization check.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import grpc


@dataclass(frozen=True, slots=True)
class RpcInfo:
    """What an interceptor knows about the RPC besides its ServicerContext."""

    method: str  # "/pkg.Service/Method"
    kind: str  # unary, client_stream, server_stream, bidi_stream (go-grpc-prometheus names)

    @property
    def service(self) -> str:
        return self.method.lstrip("/").split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.method.rsplit("/", 1)[-1]


# (rpc, context) -> context manager entered around the handler's whole run.
Around = Callable[[RpcInfo, Any], AbstractAsyncContextManager[None]]


def rpc_kind(handler: Any) -> str:
    return {
        (False, False): "unary",
        (True, False): "client_stream",
        (False, True): "server_stream",
        (True, True): "bidi_stream",
    }[(bool(handler.request_streaming), bool(handler.response_streaming))]


def method_name(details: Any) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


def wrap_handler(handler: Any, method: str, around: Around) -> Any:
    """A handler of the same kind and serializers, running `handler` inside `around`."""
    req_stream, resp_stream = handler.request_streaming, handler.response_streaming
    info = RpcInfo(method, rpc_kind(handler))
    if not req_stream and not resp_stream:
        behaviour, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    elif not req_stream:
        behaviour, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    elif not resp_stream:
        behaviour, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    else:
        behaviour, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    wrapped = (_wrap_streaming if resp_stream else _wrap_unary)(behaviour, info, around)
    return factory(
        wrapped,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _wrap_unary(behaviour: Any, info: RpcInfo, around: Around) -> Any:
    # grpc.aio awaits a handler only when it is a coroutine function, so the wrapper is
    # always `async def`, whatever the wrapped behaviour is.
    async def unary_response(request: Any, context: Any) -> Any:
        async with around(info, context):
            result = behaviour(request, context)
            if inspect.isawaitable(result):
                result = await result
            return result

    return unary_response


def _wrap_streaming(behaviour: Any, info: RpcInfo, around: Around) -> Any:
    if inspect.iscoroutinefunction(behaviour):
        # A handler that writes with `await context.write(...)` and returns None: grpc.aio
        # tells it from a generator by iscoroutinefunction, so keep it a coroutine.
        async def writer(request: Any, context: Any) -> None:
            async with around(info, context):
                await behaviour(request, context)

        return writer

    async def generator(request: Any, context: Any) -> AsyncIterator[Any]:
        async with around(info, context):
            responses = behaviour(request, context)
            if hasattr(responses, "__aiter__"):
                async for response in responses:
                    yield response
            else:
                for response in responses:
                    yield response

    return generator
