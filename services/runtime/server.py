"""The asyncio gRPC server every service runs: mTLS, health, interceptors, graceful stop.

    async with MeshServer(credentials=creds, services=[...], policy=...) as server:
        ...  # server.port is bound (port 0 picks a free one)

serve(settings, services) runs one until SIGTERM or SIGINT. Shutdown is graceful: health
turns NOT_SERVING first (so Envoy and other balancers stop sending), optionally waits
`drain_delay`, then server.stop(grace) refuses new RPCs and lets in-flight ones finish.
With provisioned certificates (create_certs false), a renewed leaf on disk ends it the
same way, within AMPMESH_CERT_RENEWAL_JITTER seconds, so the process is started again with
it (cert_watch.py).

With `health_port` (AMPMESH_HEALTH_PORT) a second, plaintext server on the same host
serves grpc.health.v1 and nothing else, from the same HealthServicer: Kubernetes' `grpc:`
probes cannot present a client certificate, and what they see (SERVING, NOT_SERVING from
the start of the drain) is what the mTLS port's callers see. It stops after the main one.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2
from grpc_health.v1 import health_pb2_grpc as _health_grpc
from grpc_reflection.v1alpha import reflection

from services.runtime.cert_watch import CertificateWatch
from services.runtime.config import ServiceSettings
from services.runtime.identity import AccessPolicy
from services.runtime.interceptors import MeshInterceptor, RpcMetrics
from services.runtime.logs import get_logger
from services.runtime.metrics_http import MetricsHttpServer, start_metrics_http
from services.runtime.tls import ServiceCredentials, ensure_service_credentials, server_credentials

_log = get_logger("ampmesh.server")


# Above the edge's max_request_headers_kb (Envoy's default, 60 KiB).
MAX_METADATA_BYTES = 64 * 1024


class BindError(RuntimeError):
    """The gRPC port could not be bound."""


@dataclass(frozen=True)
class Service:
    """One gRPC service to serve: its full name (for health and reflection) and how to add
    it to a server."""

    name: str
    register: Callable[[Any], None]

    @classmethod
    def from_servicer(
        cls,
        service: ServiceDescriptor | str,
        add_to_server: Callable[[Any, Any], None],
        servicer: object,
    ) -> Service:
        """A generated servicer: Service.from_servicer(
        token_pb2.DESCRIPTOR.services_by_name["TokenService"],
        token_pb2_grpc.add_TokenServiceServicer_to_server, TokenServicer(...))"""
        name = service.full_name if isinstance(service, ServiceDescriptor) else service
        return cls(name, lambda server: add_to_server(servicer, server))

    @classmethod
    def from_handler(cls, name: str, handler: Any) -> Service:
        """A grpc.GenericRpcHandler serving the service called name."""
        return cls(name, lambda server: server.add_generic_rpc_handlers((handler,)))


def default_interceptors(
    policy: AccessPolicy, metrics: RpcMetrics | None = None
) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors every service runs, outermost first (see interceptors.py)."""
    return [MeshInterceptor(policy, metrics)]


class MeshServer:
    """A started-on-demand grpc.aio server with our defaults; an async context manager."""

    def __init__(
        self,
        *,
        credentials: ServiceCredentials,
        services: Sequence[Service],
        host: str = "127.0.0.1",
        port: int = 0,
        policy: AccessPolicy | None = None,
        reflection: bool = False,
        grace_period: float = 10.0,
        drain_delay: float = 0.0,
        metrics: RpcMetrics | None = None,
        extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        max_concurrent_rpcs: int | None = None,
        options: Sequence[tuple[str, Any]] = (),
        health_port: int | None = None,
    ) -> None:
        names = [s.name for s in services]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"services registered twice: {', '.join(duplicates)}")
        self.credentials = credentials
        self.services = list(services)
        self.host = host
        self.requested_port = port
        self.policy = policy or AccessPolicy.any_peer()
        self.reflection = reflection
        self.grace_period = grace_period
        self.drain_delay = drain_delay
        self._metrics = metrics
        self._extra_interceptors = list(extra_interceptors)
        self._max_concurrent_rpcs = max_concurrent_rpcs
        self._options = list(options)
        self._server: Any = None
        self._health = health.aio.HealthServicer()
        self._port = 0
        self.requested_health_port = health_port
        self._health_server: Any = None
        self._health_port: int | None = None
        self._shutdown_started = False
        self._stopped = asyncio.Event()

    @classmethod
    def from_settings(
        cls,
        settings: ServiceSettings,
        *,
        credentials: ServiceCredentials,
        services: Sequence[Service],
        policy: AccessPolicy | None = None,
        **kwargs: Any,
    ) -> MeshServer:
        return cls(
            credentials=credentials,
            services=services,
            host=settings.listen_host,
            port=settings.listen_port,
            policy=policy,
            reflection=settings.reflection,
            grace_period=settings.grace_period,
            drain_delay=settings.drain_delay,
            max_concurrent_rpcs=settings.max_concurrent_rpcs,
            health_port=settings.health_port,
            **kwargs,
        )

    @property
    def port(self) -> int:
        """The bound port (meaningful once started)."""
        return self._port

    @property
    def health_port(self) -> int | None:
        """The plaintext health port once started; None when there is none."""
        return self._health_port

    @property
    def health(self) -> Any:
        """The grpc_health.v1.health.aio.HealthServicer; its calls are coroutines."""
        return self._health

    async def start(self) -> int:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = grpc.aio.server(
            interceptors=[
                *default_interceptors(self.policy, self._metrics),
                *self._extra_interceptors,
            ],
            # grpcio turns SO_REUSEPORT on by default: a second server on a busy port would
            # start "fine" and silently steal traffic. One process per port, unless chosen.
            options=[
                ("grpc.so_reuseport", 0),
                # Requests come through the edge with headers of up to Envoy's 60 KiB (it
                # answers 431 past that); gRPC's own limits (8 KiB soft, 16 KiB hard) would
                # refuse the rest as RESOURCE_EXHAUSTED, a 429 telling a client whose URL
                # is merely long to slow down.
                ("grpc.max_metadata_size", MAX_METADATA_BYTES),
                ("grpc.absolute_max_metadata_size", MAX_METADATA_BYTES),
                *self._options,
            ],
            maximum_concurrent_rpcs=self._max_concurrent_rpcs,
        )
        for service in self.services:
            service.register(self._server)
        _health_grpc.add_HealthServicer_to_server(self._health, self._server)
        if self.reflection:
            # Reflection lets anyone who can connect list every method: internal ports only.
            names = [s.name for s in self.services]
            reflection.enable_server_reflection(
                (*names, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
            )

        address = _address(self.host, self.requested_port)
        port = _bind(self._server, address, server_credentials(self.credentials))
        if port == 0:
            self._server = None
            raise BindError(f"cannot listen on {address}: address in use or not permitted")
        self._port = port

        health_server = None
        if self.requested_health_port is not None:
            health_server = self._plaintext_health_server()
            health_address = _address(self.host, self.requested_health_port)
            health_port = _bind(health_server, health_address, None)
            if health_port == 0:
                self._server = None
                raise BindError(
                    f"cannot listen on {health_address} (AMPMESH_HEALTH_PORT): address in "
                    "use or not permitted"
                )
            self._health_port = health_port

        for service in self.services:
            await self._health.set(service.name, health_pb2.HealthCheckResponse.SERVING)
        await self._health.set("", health_pb2.HealthCheckResponse.SERVING)
        await self._server.start()
        if health_server is not None:
            await health_server.start()
            self._health_server = health_server
        return port

    def _plaintext_health_server(self) -> Any:
        """Health only, no interceptors: no caller here has an identity to check, and a
        probe must not count as an RPC. Everything else answers UNIMPLEMENTED."""
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
        _health_grpc.add_HealthServicer_to_server(self._health, server)
        return server

    async def shutdown(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, wait drain_delay, then stop(grace): in-flight RPCs finish,
        new ones are refused. Safe to call more than once."""
        if self._server is None:
            return
        if self._shutdown_started:
            await self._stopped.wait()
            return
        self._shutdown_started = True
        grace = self.grace_period if grace is None else grace
        _log.info("shutting down", grace_period=grace, drain_delay=self.drain_delay)
        await self._health.enter_graceful_shutdown()
        if self.drain_delay > 0:
            await asyncio.sleep(self.drain_delay)
        await self._server.stop(grace)
        if self._health_server is not None:
            # Last: until the main server has stopped, a probe should see NOT_SERVING,
            # not a refused connection (which kubelet would count as a liveness failure).
            await self._health_server.stop(0)
        self._stopped.set()
        _log.info("stopped")

    async def wait_for_termination(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> MeshServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()


async def serve(
    settings: ServiceSettings,
    services: Sequence[Service],
    *,
    policy: AccessPolicy | None = None,
    credentials: ServiceCredentials | None = None,
    metrics: RpcMetrics | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run a MeshServer for settings until SIGTERM/SIGINT (or `stop` is set), then drain."""
    if credentials is None:
        credentials = ensure_service_credentials(
            settings.cert_dir, settings.identity, create=settings.create_certs
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    metrics_http: MetricsHttpServer | None = None
    watch: asyncio.Task[None] | None = None
    try:
        server = MeshServer.from_settings(
            settings, credentials=credentials, services=services, policy=policy, metrics=metrics
        )
        async with server:
            if settings.metrics_port is not None:
                metrics_http = start_metrics_http(settings.metrics_port, settings.metrics_host)
            _log.info(
                "serving",
                service=settings.service_name,
                identity=settings.identity,
                host=settings.listen_host,
                port=server.port,
                metrics_port=metrics_http.port if metrics_http else None,
                health_port=server.health_port,
                services=[s.name for s in services],
                reflection=settings.reflection,
            )
            if not settings.create_certs:
                # Provisioned certificates are renewed on disk while we run (cert_watch.py).
                watch = asyncio.create_task(
                    CertificateWatch(
                        settings.cert_dir,
                        credentials,
                        interval=settings.cert_watch_interval,
                        jitter=settings.cert_renewal_jitter,
                        restart=stop.set,
                    ).run()
                )
            await stop.wait()
    finally:
        if watch is not None:
            watch.cancel()
        for sig in signals:
            loop.remove_signal_handler(sig)
        if metrics_http is not None:
            metrics_http.close()


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind(server: Any, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """The bound port, or 0. grpcio 1.85 raises RuntimeError on a bind failure; older ones
    returned 0. Either way the caller raises one BindError naming the address."""
    try:
        if credentials is None:
            return int(server.add_insecure_port(address))
        return int(server.add_secure_port(address, credentials))
    except RuntimeError:
        return 0
