"""Fixtures every test folder shares: a session CA for in-process servers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.runtime.tls import ServiceCredentials, ensure_service_credentials


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="session")
def creds_for(cert_dir: Path) -> Callable[[str], ServiceCredentials]:
    """Credentials for an identity, issued by the session's CA."""
    return lambda identity: ensure_service_credentials(cert_dir, identity)
