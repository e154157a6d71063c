"""ProviderService: the providers catalog, GET /v1/providers and GET /v1/providers/{provider}.

Both RPCs are public, as in the reference: they need no API key or JWT, and whoever adds
API authentication to the api service must leave ANONYMOUS_METHODS open. Provider names
are case-sensitive, as the reference's catalog lookup is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from ampmesh.platform.v1 import providers_pb2, providers_pb2_grpc

from services.runtime.errors import (
    abort_invalid_argument,
    abort_with_details,
    bad_request,
    resource_info,
)
from services.runtime.server import Service

SERVICE = providers_pb2.DESCRIPTOR.services_by_name["ProviderService"]
ANONYMOUS_METHODS = frozenset(f"/{SERVICE.full_name}/{m.name}" for m in SERVICE.methods)

# BadRequest field paths name where a value came from, so that the edge can say so in
# problem+json issues (notes/problem-json.md): the provider is a path variable.
_PROVIDER_FIELD = "path.provider"


class ProviderCatalog(providers_pb2_grpc.ProviderServiceServicer):
    """Serves a catalog loaded once at start; it never changes while the process runs."""

    def __init__(self, providers: Mapping[str, providers_pb2.ProviderInfo]) -> None:
        self._providers = dict(providers)
        # Built once: every ListProviders answers the same message.
        self._listing = providers_pb2.ListProvidersResponse(providers=self._providers)
        self._by_folded_name = {name.casefold(): name for name in self._providers}

    async def ListProviders(
        self, request: providers_pb2.ListProvidersRequest, context: Any
    ) -> providers_pb2.ListProvidersResponse:
        return self._listing

    async def GetProvider(
        self, request: providers_pb2.GetProviderRequest, context: Any
    ) -> providers_pb2.ProviderInfo:
        name = request.provider
        if not name:
            await abort_invalid_argument(
                context,
                "the provider name is missing; GET /v1/providers lists every provider",
                {_PROVIDER_FIELD: "required"},
            )
        info = self._providers.get(name)
        if info is None:
            await abort_with_details(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"provider {name!r} is not in the catalog",
                resource_info("provider", name),
                bad_request({_PROVIDER_FIELD: self._not_found_hint(name)}),
            )
        return info

    def _not_found_hint(self, name: str) -> str:
        same_but_case = self._by_folded_name.get(name.casefold())
        if same_but_case is not None:
            return f"not in the catalog; names are case-sensitive: did you mean {same_but_case!r}?"
        return "not in the catalog; GET /v1/providers lists every provider"


def provider_catalog_service(providers: Mapping[str, providers_pb2.ProviderInfo]) -> Service:
    """The ProviderService serving providers, ready for MeshServer."""
    return Service.from_servicer(
        SERVICE,
        providers_pb2_grpc.add_ProviderServiceServicer_to_server,
        ProviderCatalog(providers),
    )
