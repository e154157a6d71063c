"""Fixtures for the runtime tests: one CA per session, fresh metrics per test."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from services.runtime.interceptors import RpcMetrics
from services.runtime.tls import ServiceCredentials

SERVER_IDENTITY = "token-manager"


@pytest.fixture(scope="session")
def server_creds(creds_for: Callable[[str], ServiceCredentials]) -> ServiceCredentials:
    return creds_for(SERVER_IDENTITY)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> RpcMetrics:
    """Metrics on a registry of this test's own, so counts start at zero."""
    return RpcMetrics(registry)
