"""`python -m services.api`: the public API service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import Field

from services.api.catalog import load_catalog, provider_catalog_service
from services.api.routes import NOT_BUILT_YET, ROUTE_GROUPS
from services.runtime.config import ServiceSettings
from services.runtime.entrypoint import run_service
from services.runtime.server import Service
from services.runtime.unimplemented import with_fallback

# Who may call the api service directly: the edge, and the MCP servers that drive it.
CALLERS = ("envoy", "builder-mcp", "mcpanda")


class ApiSettings(ServiceSettings):
    """The api service's settings: which route groups this deployment serves."""

    enable_platform_routes: bool = Field(True, description="serve the platform API")
    enable_read_routes: bool = Field(True, description="serve the Read API")
    enable_write_routes: bool = Field(True, description="serve the Write API")
    enable_search_routes: bool = Field(True, description="serve the Search API")
    enable_proxy_routes: bool = Field(True, description="serve the proxy")


def build_services(settings: ApiSettings) -> list[Service]:
    """The public services of every enabled route group (placeholders until built).

    The providers catalog is read here, at start: a data file our contract cannot hold
    stops the service with CatalogError rather than serving a partial catalog.
    """
    enabled = [
        service
        for group, services in ROUTE_GROUPS.items()
        if getattr(settings, f"enable_{group}_routes")
        for service in services
    ]
    implemented: list[Service] = []
    if settings.enable_platform_routes:
        implemented.append(provider_catalog_service(load_catalog()))
    return with_fallback(enabled, implemented=implemented, reasons=NOT_BUILT_YET)


@asynccontextmanager
async def open_services(settings: ApiSettings) -> AsyncIterator[list[Service]]:
    yield build_services(settings)


def main() -> None:
    run_service(
        name="api", services=open_services, allowed_callers=CALLERS, settings_cls=ApiSettings
    )


if __name__ == "__main__":
    main()
