"""`python -m services.temporal`: the Temporal workers' process.

Its contract is `proto/ampmesh/workflows/v1`: the inputs and outputs of the workflows it
runs. The workers (one per task queue) are built by issue #6. Until then the process
connects to the Temporal server and checks our namespace at start (a mesh whose workers
could not reach Temporal must not report healthy), then serves gRPC health, so the
launcher and the edge supervise it like the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from pydantic import Field
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client

from services.runtime.config import ServiceSettings
from services.runtime.entrypoint import StartupError, run_service
from services.runtime.logs import get_logger
from services.runtime.server import Service

_log = get_logger("ampmesh.temporal")


class TemporalWorkerSettings(ServiceSettings):
    temporal_address: str = Field(
        ..., min_length=1, description="the Temporal frontend, host:port (e.g. 127.0.0.1:7233)"
    )
    temporal_namespace: str = Field("ampmesh", min_length=1, description="our namespace")
    temporal_connect_timeout: float = Field(
        30.0, gt=0, description="seconds to wait for Temporal at start"
    )


class TemporalUnreachable(StartupError):
    pass


async def connect(settings: TemporalWorkerSettings) -> Client:
    """A client of our namespace, once Temporal answers for it."""
    try:
        client = await asyncio.wait_for(
            Client.connect(settings.temporal_address, namespace=settings.temporal_namespace),
            settings.temporal_connect_timeout,
        )
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=settings.temporal_namespace),
            timeout=timedelta(seconds=settings.temporal_connect_timeout),
        )
    except Exception as error:
        # The SDK's messages name the address and the failure, never credentials (the
        # local dev server has none; a cloud API key would travel in metadata, not here).
        raise TemporalUnreachable(
            f"Temporal at {settings.temporal_address} (namespace "
            f"{settings.temporal_namespace!r}) is unreachable: {str(error)[:200] or type(error)}"
        ) from None
    return client


@asynccontextmanager
async def open_services(settings: TemporalWorkerSettings) -> AsyncIterator[list[Service]]:
    await connect(settings)
    _log.info(
        "temporal connected",
        address=settings.temporal_address,
        namespace=settings.temporal_namespace,
    )
    yield []


def main() -> None:
    run_service(name="temporal", services=open_services, settings_cls=TemporalWorkerSettings)


if __name__ == "__main__":
    main()
