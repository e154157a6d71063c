"""Rebuild a grpc.RpcMethodHandler of any of the four kinds around new behaviour.

Server interceptors in grpc.aio see only the method name and metadata, never the request
or the ServicerContext; to act per RPC (set contextvars, time it, read the peer's
certificate, translate exceptions) they replace the handler's behaviour with a wrapper.
rewrap() does that for unary and streaming handlers alike, so no kind of RPC slips past
the authorization check; interceptors.MeshInterceptor supplies the wrappers.
"""

from __future__ import annotations

from collections.abc import Callable
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


_KINDS = {
    (False, False): "unary",
    (True, False): "client_stream",
    (False, True): "server_stream",
    (True, True): "bidi_stream",
}


def rpc_kind(handler: Any) -> str:
    return _KINDS[(bool(handler.request_streaming), bool(handler.response_streaming))]


def method_name(details: Any) -> str:
    method = details.method
    return method.decode() if isinstance(method, bytes) else str(method)


# (behaviour, response_streaming) -> the behaviour grpc.aio will call instead.
Rewrap = Callable[[Any, bool], Any]


def rewrap(
    handler: Any,
    wrap: Rewrap,
    check_request: Callable[[Callable[[bytes], Any] | None], Callable[[bytes], Any] | None]
    | None = None,
) -> Any:
    """A handler of the same kind and serializers whose behaviour is wrap(behaviour, ...).

    check_request, given the request deserializer, returns the one to use instead; it
    applies to single requests only (a client stream's messages are read by the handler,
    whose exceptions the interceptor already turns into INTERNAL)."""
    req_stream, resp_stream = bool(handler.request_streaming), bool(handler.response_streaming)
    if not req_stream and not resp_stream:
        behaviour, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
    elif not req_stream:
        behaviour, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
    elif not resp_stream:
        behaviour, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
    else:
        behaviour, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
    deserializer = handler.request_deserializer
    if check_request is not None and not req_stream:
        deserializer = check_request(deserializer)
    return factory(
        wrap(behaviour, resp_stream),
        request_deserializer=deserializer,
        response_serializer=handler.response_serializer,
    )
