"""Placeholder services: every method answers UNIMPLEMENTED with a message saying why.

A contract can be served before its implementation exists: clients, Envoy's transcoder and
health checks see the real service name and methods, and a call tells the caller which
piece of work builds it ("/ampmesh.write.v1.WriteService/CreateRecord is not built yet:
the Write API is built by issue 7") instead of grpc's "Method not found!".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NoReturn

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

from services.runtime.entrypoint import run_service
from services.runtime.server import Service

# Runs before a placeholder answers, with the call's context: a service that authenticates
# its callers passes its check, so an anonymous caller learns nothing about what is built
# (and gets the 401 every other call gives it). It aborts to refuse.
Gate = Callable[[Any], Awaitable[object]]


def unimplemented_message(method: str, reason: str) -> str:
    return f"{method} is not built yet: {reason}"


def unimplemented_handler(service: ServiceDescriptor, reason: str, gate: Gate | None = None) -> Any:
    """A grpc.GenericRpcHandler for service whose every method aborts UNIMPLEMENTED."""
    handlers = {m.name: _method_handler(service, m, reason, gate) for m in service.methods}
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def unimplemented_service(
    service: ServiceDescriptor, reason: str, gate: Gate | None = None
) -> Service:
    """unimplemented_handler as a Service the server can register (and report healthy)."""
    handler = unimplemented_handler(service, reason, gate)
    return Service.from_handler(service.full_name, handler)


def with_fallback(
    services: Iterable[ServiceDescriptor],
    implemented: Iterable[Service],
    reasons: str | Mapping[str, str],
    gate: Gate | None = None,
) -> list[Service]:
    """The implemented services, plus an UNIMPLEMENTED placeholder for every other one.

    reasons: one message for all placeholders, or one per full service name (a name
    missing from the mapping gets "not scheduled"). gate: see Gate.
    """
    real = list(implemented)
    done = {s.name for s in real}
    result = list(real)
    for descriptor in services:
        if descriptor.full_name in done:
            continue
        reason = (
            reasons
            if isinstance(reasons, str)
            else reasons.get(descriptor.full_name, "not scheduled")
        )
        result.append(unimplemented_service(descriptor, reason, gate))
    return result


def partially_built(
    service: ServiceDescriptor,
    add_to_server: Callable[[Any, Any], None],
    servicer: Any,
    reason: str,
    gate: Gate | None = None,
) -> Service:
    """A generated servicer that implements some of its service's methods; the others
    answer UNIMPLEMENTED with reason (after gate, see Gate), instead of the generated base
    class's "Method not implemented!" exception (which the runtime would report as an
    INTERNAL failure)."""
    base = next(
        (c for c in type(servicer).__mro__ if c.__name__ == f"{service.name}Servicer"), None
    )
    if base is None:
        raise TypeError(f"{type(servicer).__name__} is not a {service.name}Servicer")
    for method in service.methods:
        if getattr(type(servicer), method.name) is getattr(base, method.name):
            message = unimplemented_message(f"/{service.full_name}/{method.name}", reason)
            setattr(servicer, method.name, _aborting(message, gate))
    return Service.from_servicer(service, add_to_server, servicer)


def _aborting(message: str, gate: Gate | None) -> Callable[[Any, Any], Any]:
    async def abort(request: Any, context: Any) -> None:
        if gate is not None:
            await gate(context)
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    return abort


def _method_handler(
    service: ServiceDescriptor, method: MethodDescriptor, reason: str, gate: Gate | None
) -> Any:
    abort = _aborting(unimplemented_message(f"/{service.full_name}/{method.name}", reason), gate)

    # No deserializers: requests stay bytes, which is all a placeholder needs; the handler
    # kind follows the method's so that streaming clients get a clean status too.
    if method.client_streaming and method.server_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if method.client_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


def run_unbuilt_service(
    *, name: str, service: ServiceDescriptor, reason: str, allowed_callers: Iterable[str]
) -> NoReturn:
    """Run a service whose contract is served before its implementation exists."""
    run_service(
        name=name,
        services=[unimplemented_service(service, reason)],
        allowed_callers=allowed_callers,
    )
