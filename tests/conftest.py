"""Fixtures every test folder shares: a session CA for in-process servers, and the whole
mesh (`stack`) for end-to-end tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from services.launcher.mesh import MeshOptions, running_mesh
from services.runtime.tls import ServiceCredentials, ensure_service_credentials
from tests.support.stack import Stack


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


@pytest.fixture(scope="session")
def creds_for(cert_dir: Path) -> Callable[[str], ServiceCredentials]:
    """Credentials for an identity, issued by the session's CA."""
    return lambda identity: ensure_service_credentials(cert_dir, identity)


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    """Brings up PostgreSQL, Redis, Temporal, the Pub/Sub emulator, every service, the
    provider sandbox and the Envoy edge once per session, on free ports in a temporary
    home; tears it all down."""
    # Not under pytest's tmp_path: that is private to root (0700), and PostgreSQL runs as
    # an unprivileged user when the tests run as root.
    home = Path(tempfile.mkdtemp(prefix="ampmesh-test-"))
    home.chmod(0o755)
    # With the provider sandbox: the catalog's hubspot and salesforce point at it, so
    # connecting and refreshing run the real client code against a real OAuth server.
    async with running_mesh(home, MeshOptions(sandbox=True)) as mesh:
        yield Stack(mesh, mesh.endpoints())
    shutil.rmtree(home, ignore_errors=True)
