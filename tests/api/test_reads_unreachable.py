"""The api's reads when Temporal cannot be reached at all: the lazy client's first call
fails to connect, which must reach the caller as ReadsUnavailable (UNAVAILABLE, 503,
"try again") rather than an unexpected error (500)."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime

import pytest
from temporalio.client import Client

from services.api.read_objects import ReadObject
from services.api.reads import InstallationFacts, Reads, ReadsUnavailable


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_a_triggered_read_without_a_reachable_temporal_is_unavailable() -> None:
    temporal = await Client.connect(f"127.0.0.1:{closed_port()}", namespace="ampmesh", lazy=True)
    facts = InstallationFacts(
        project_id=str(uuid.uuid4()),
        integration_id=str(uuid.uuid4()),
        installation_id=str(uuid.uuid4()),
        connection_id=str(uuid.uuid4()),
        provider="hubspot",
    )
    contacts = ReadObject(
        name="contacts", mapped_name="", schedule="", backfill=None, page_size=0, disabled=False
    )
    with pytest.raises(ReadsUnavailable, match="could not be reached"):
        await Reads(temporal).trigger(facts, contacts, None, datetime.now(UTC))
