"""A Temporal client of the session stack's server (namespace ampmesh), for tests that run
their own workers on task queues of their own beside the mesh's."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client

from tests.conftest import Stack


@pytest.fixture(scope="session")
async def temporal(stack: Stack) -> Client:
    return await Client.connect(stack.endpoints["temporal"], namespace="ampmesh")


@pytest.fixture
def task_queue() -> str:
    """A queue no mesh worker polls: only the test's own worker takes its tasks."""
    return f"test-{uuid.uuid4().hex[:12]}"
