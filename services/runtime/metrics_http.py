"""Prometheus exposition over plain HTTP on the service's metrics port.

prometheus_client's own WSGI server on a daemon thread: scrapes then never wait on the
event loop, and a busy loop does not make a scrape time out. It binds 127.0.0.1 unless
told otherwise, because /metrics is unauthenticated.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server


@dataclass
class MetricsHttpServer:
    httpd: Any
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_port)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start_metrics_http(
    port: int, host: str = "127.0.0.1", registry: CollectorRegistry = REGISTRY
) -> MetricsHttpServer:
    """Serve GET /metrics for registry on host:port (0 = any free port)."""
    httpd, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsHttpServer(httpd, thread)
