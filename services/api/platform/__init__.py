"""The platform route group's services, one module each, built from an ApiContext.

Each module exposes `service(ctx: ApiContext) -> Service` (usually
`runtime.unimplemented.partially_built(...)`, so a method not built yet says so). BUILDERS
maps the full gRPC service name to it; services missing here answer UNIMPLEMENTED with
the reason in services/domain/routes.py NOT_BUILT_YET.
"""

from __future__ import annotations

from collections.abc import Callable

from services.api.context import ApiContext
from services.api.platform import (
    api_keys,
    connections,
    deliveries,
    destinations,
    installations,
    integrations,
    jwt_keys,
    object_metadata,
    operations,
    projects,
    provider_apps,
    topics,
)
from services.runtime.server import Service

PlatformBuilder = Callable[[ApiContext], Service]

BUILDERS: dict[str, PlatformBuilder] = {
    "ampmesh.platform.v1.ProjectService": projects.service,
    "ampmesh.platform.v1.ApiKeyService": api_keys.service,
    "ampmesh.platform.v1.JwtKeyService": jwt_keys.service,
    "ampmesh.platform.v1.OperationService": operations.service,
    "ampmesh.platform.v1.ProviderAppService": provider_apps.service,
    "ampmesh.platform.v1.DestinationService": destinations.service,
    "ampmesh.platform.v1.DeliveryService": deliveries.service,
    "ampmesh.platform.v1.TopicService": topics.topic_service,
    "ampmesh.platform.v1.NotificationEventTopicRouteService": topics.event_topic_route_service,
    "ampmesh.platform.v1.TopicDestinationRouteService": topics.topic_destination_route_service,
    "ampmesh.platform.v1.IntegrationService": integrations.service,
    "ampmesh.platform.v1.InstallationService": installations.service,
    "ampmesh.platform.v1.ConnectionService": connections.service,
    "ampmesh.platform.v1.ObjectMetadataService": object_metadata.service,
}
