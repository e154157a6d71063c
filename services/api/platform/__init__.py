"""The platform route group's services, one module each, built from an ApiContext.

Each module exposes `service(ctx: ApiContext) -> Service` (usually
`runtime.unimplemented.partially_built(...)`, so a method not built yet says so). BUILDERS
maps the full gRPC service name to it; services missing here answer UNIMPLEMENTED with
the reason in services/api/routes.py NOT_BUILT_YET.
"""

from __future__ import annotations

from collections.abc import Callable

from services.api.context import ApiContext
from services.api.platform import projects
from services.runtime.server import Service

PlatformBuilder = Callable[[ApiContext], Service]

BUILDERS: dict[str, PlatformBuilder] = {
    "ampmesh.platform.v1.ProjectService": projects.service,
}
