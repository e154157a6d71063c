"""Client channels to other mesh services: mTLS, deadlines, retries, default metadata.

    channel = mesh_channel(
        "127.0.0.1:50061", creds, server_identity="token-manager",
        services=["ampmesh.token.v1.TokenService"], timeout=2.0,
        metadata=header_from_request(CONNECTION_ID_HEADER, lambda req: hash_id(req.connection_id)),
    )
    stub = token_pb2_grpc.TokenServiceStub(channel)

- The server's certificate must name `server_identity` in its SAN (we set
  grpc.ssl_target_name_override to it), so dialling by IP or through a shared address still
  checks we reached the service we meant, not merely some holder of a mesh certificate.
- A service config gives every method a default deadline and retries UNAVAILABLE with
  exponential backoff (grpc's own retry machinery, grpc.enable_retries). Retry only
  idempotent RPCs; creates carry a request_id (AIP-155) so a retry cannot duplicate.
- A client interceptor adds headers computed from each request (the token-manager's
  consistent-hash key, for instance) and forwards the current x-request-id and, with
  tracing on, the current span's `traceparent`, so call sites never set them by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from services.runtime import tracing as _tracing
from services.runtime.request_id import REQUEST_ID_HEADER, current_request_id
from services.runtime.tls import ServiceCredentials, channel_credentials

# The header Envoy hashes on to pick a token-manager shard (DESIGN.md: every caller sets it).
CONNECTION_ID_HEADER = "x-ampmesh-connection-id"

# (full method name "/pkg.Service/Method", request message) -> headers to add.
MetadataProvider = Callable[[str, Any], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC retryPolicy (grpc/service_config/service_config.proto)."""

    max_attempts: int = 3
    initial_backoff: float = 0.1
    max_backoff: float = 1.0
    backoff_multiplier: float = 2.0
    retryable_status_codes: tuple[str, ...] = ("UNAVAILABLE",)

    def __post_init__(self) -> None:
        # grpc rejects the whole service config (every call then fails) for attempts < 2,
        # and silently caps them at 5: fail here, where the mistake is.
        if not 2 <= self.max_attempts <= 5:
            raise ValueError("RetryPolicy.max_attempts must be between 2 and 5")
        if self.initial_backoff <= 0 or self.max_backoff <= 0 or self.backoff_multiplier <= 0:
            raise ValueError("RetryPolicy backoffs and multiplier must be positive")
        unknown = set(self.retryable_status_codes) - set(grpc.StatusCode.__members__)
        if unknown or not self.retryable_status_codes:
            raise ValueError(f"RetryPolicy: bad retryable status codes {sorted(unknown)}")

    def to_json(self) -> dict[str, Any]:
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": _duration(self.initial_backoff),
            "maxBackoff": _duration(self.max_backoff),
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.retryable_status_codes),
        }


DEFAULT_RETRY = RetryPolicy()


def service_config(
    services: Sequence[str] = (),
    *,
    timeout: float | None = 5.0,
    retry: RetryPolicy | None = DEFAULT_RETRY,
) -> str:
    """A gRPC service config JSON: a default deadline and retry policy for the services
    named (every method of the channel when none is named)."""
    names: list[dict[str, str]] = [{"service": s} for s in services] or [{}]
    method_config: dict[str, Any] = {"name": names}
    if timeout is not None:
        method_config["timeout"] = _duration(timeout)
    if retry is not None:
        method_config["retryPolicy"] = retry.to_json()
    return json.dumps({"methodConfig": [method_config]})


class DefaultMetadataInterceptor(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """Adds headers to every call: the current request id, and those a provider computes
    from the request (None for client-streaming calls, whose requests come later).
    Headers the call site set itself are left as they are."""

    def __init__(
        self, provider: MetadataProvider | None = None, *, propagate_request_id: bool = True
    ) -> None:
        self._provider = provider
        self._propagate_request_id = propagate_request_id

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_metadata(details, request), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._with_metadata(details, request), request)

    async def intercept_stream_unary(
        self, continuation: Any, details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self._with_metadata(details, None), request_iterator)

    async def intercept_stream_stream(
        self, continuation: Any, details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self._with_metadata(details, None), request_iterator)

    def _with_metadata(self, details: Any, request: Any) -> Any:
        metadata = grpc.aio.Metadata.from_tuple(tuple(details.metadata or ()))
        extra: list[tuple[str, str]] = []
        if self._propagate_request_id:
            request_id = current_request_id()
            if request_id:
                extra.append((REQUEST_ID_HEADER, request_id))
        if self._provider is not None:
            method = details.method
            method = method.decode() if isinstance(method, bytes) else str(method)
            extra.extend(self._provider(method, request))
        if _tracing.TRACER is not None:
            carrier: dict[str, str] = {}
            _tracing.inject(carrier)
            extra.extend(carrier.items())
        for key, value in extra:
            if key not in metadata:
                metadata.add(key, value)
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


def header_from_request(header: str, compute: Callable[[Any], str | None]) -> MetadataProvider:
    """A provider adding one header computed from the request; nothing when the value is
    None or empty, or when there is no single request (client-streaming calls)."""

    def provider(method: str, request: Any) -> Iterable[tuple[str, str]]:
        value = compute(request) if request is not None else None
        return [(header, value)] if value else []

    return provider


def mesh_channel(
    target: str,
    credentials: ServiceCredentials,
    *,
    server_identity: str | None,
    services: Sequence[str] = (),
    timeout: float | None = 5.0,
    retry: RetryPolicy | None = DEFAULT_RETRY,
    metadata: MetadataProvider | None = None,
    propagate_request_id: bool = True,
    interceptors: Sequence[Any] = (),
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """An mTLS grpc.aio channel to another mesh service (create inside the running loop).

    server_identity: the identity the server's certificate must name; None accepts the host
    part of target as the name (e.g. "localhost"), which any mesh certificate carries.
    """
    channel_options: list[tuple[str, Any]] = [
        ("grpc.service_config", service_config(services, timeout=timeout, retry=retry)),
        ("grpc.enable_retries", 1 if retry is not None else 0),
        # A peer of the mesh (Envoy, a service) that dies is restarted within seconds by
        # the supervisor; grpc's default reconnect backoff grows to two minutes, during
        # which every call on the channel fails at once although the peer is back.
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    if server_identity is not None:
        channel_options.append(("grpc.ssl_target_name_override", server_identity))
    channel_options.extend(options)
    return grpc.aio.secure_channel(
        target,
        channel_credentials(credentials),
        options=channel_options,
        interceptors=[
            DefaultMetadataInterceptor(metadata, propagate_request_id=propagate_request_id),
            *interceptors,
        ],
    )


def _duration(seconds: float) -> str:
    # Service config durations are JSON-mapped google.protobuf.Duration: "0.1s", "5s".
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def connection_id_of(request: Any) -> str | None:
    """The connection a token-manager request is about: `connection_id`, or the
    `connection.connection_id` of requests that carry a whole connection context."""
    direct = getattr(request, "connection_id", None)
    if direct:
        return str(direct)
    context = getattr(request, "connection", None)
    nested = getattr(context, "connection_id", None)
    return str(nested) if nested else None


def token_manager_channel(
    target: str,
    credentials: ServiceCredentials,
    *,
    server_identity: str = "envoy",
    **kwargs: Any,
) -> grpc.aio.Channel:
    """A channel to the token-manager shards through the edge's ring hash.

    Every call carries x-ampmesh-connection-id = the request's connection_id, which is what
    Envoy hashes on to pick the shard; call sites never set it themselves. target is the
    edge's internal listener, whose certificate names "envoy".
    """
    return mesh_channel(
        target,
        credentials,
        server_identity=server_identity,
        services=("ampmesh.token.v1.TokenManagerService",),
        metadata=header_from_request(CONNECTION_ID_HEADER, connection_id_of),
        **kwargs,
    )
