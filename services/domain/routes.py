"""The api service's route groups and the contracts each serves.

As in the reference deployment, one api binary serves every public surface; each route
group can be switched off (AMPMESH_ENABLE_<GROUP>_ROUTES=false) so that the groups can run
as separate deployments behind the edge.
"""

from __future__ import annotations

from ampmesh.platform.v1 import (
    api_keys_pb2,
    connections_pb2,
    deliveries_pb2,
    destinations_pb2,
    installations_pb2,
    integrations_pb2,
    jwt_keys_pb2,
    object_metadata_pb2,
    operations_pb2,
    orgs_pb2,
    project_metrics_pb2,
    projects_pb2,
    provider_apps_pb2,
    providers_pb2,
)
from ampmesh.proxy.v1 import proxy_pb2
from ampmesh.read.v1 import read_pb2
from ampmesh.search.v1 import search_pb2
from ampmesh.subscribe.v1 import provider_webhooks_pb2
from ampmesh.write.v1 import write_pb2
from google.protobuf.descriptor import ServiceDescriptor

_PLATFORM_MODULES = (
    orgs_pb2,
    projects_pb2,
    api_keys_pb2,
    jwt_keys_pb2,
    provider_apps_pb2,
    providers_pb2,
    integrations_pb2,
    installations_pb2,
    connections_pb2,
    destinations_pb2,
    deliveries_pb2,
    operations_pb2,
    object_metadata_pb2,
    project_metrics_pb2,
)


def _services(*modules: object) -> tuple[ServiceDescriptor, ...]:
    return tuple(
        service
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()  # type: ignore[attr-defined]
    )


ROUTE_GROUPS: dict[str, tuple[ServiceDescriptor, ...]] = {
    "platform": _services(*_PLATFORM_MODULES),
    "read": _services(read_pb2),
    "write": _services(write_pb2),
    "search": _services(search_pb2),
    "proxy": _services(proxy_pb2),
    # Providers' change webhooks: no API key, each provider's own verification.
    "subscribe": _services(provider_webhooks_pb2),
}

# Why each public service answers UNIMPLEMENTED for now, and which issue builds it.
NOT_BUILT_YET: dict[str, str] = {
    "ampmesh.platform.v1.OrgService": (
        "orgs have no issue filed yet (`ampmesh up` makes the default org and its admin key)"
    ),
    "ampmesh.proxy.v1.ProxyService": (
        "forwarding over native gRPC is not built: call the proxy host over HTTP (the edge "
        "forwards on its data path; README, 'Proxy')"
    ),
}
