"""Fixtures for the runtime tests: one CA per session, fresh metrics per test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from services.runtime.interceptors import RpcMetrics
from services.runtime.tls import ServiceCredentials, ensure_service_credentials

SERVER_IDENTITY = "token-manager"


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="session")
def creds_for(cert_dir: Path) -> Callable[[str], ServiceCredentials]:
    """Credentials for an identity, issued by the session's CA."""
    return lambda identity: ensure_service_credentials(cert_dir, identity)


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
