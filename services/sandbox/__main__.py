"""`python -m services.sandbox`: the provider sandbox (HTTP provider APIs + gRPC control)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from services.runtime.entrypoint import run_service
from services.runtime.logs import get_logger
from services.runtime.mcp_http import serving_http
from services.runtime.server import Service
from services.sandbox.control import SandboxControl
from services.sandbox.http_api import SandboxHttp
from services.sandbox.oauth import OAuthConfig, SandboxClient
from services.sandbox.persistence import kept_in
from services.sandbox.settings import SandboxSettings
from services.sandbox.state import SandboxState
from services.sandbox.webhooks import Dispatcher, HubSpotApp

_log = get_logger("ampmesh.sandbox")


def oauth_config(settings: SandboxSettings) -> OAuthConfig:
    client = SandboxClient(
        client_id=settings.sandbox_client_id,
        client_secret=settings.sandbox_client_secret,
        redirect_uris=tuple(settings.sandbox_redirect_uris),
        app_id=str(settings.sandbox_hubspot_app_id),
        developer_api_key=settings.sandbox_developer_api_key,
    )
    return OAuthConfig(
        clients=(client,),
        users={settings.sandbox_username: settings.sandbox_password},
        access_token_lifetime=settings.sandbox_access_token_lifetime,
    )


@asynccontextmanager
async def build_services(settings: SandboxSettings) -> AsyncIterator[list[Service]]:
    """The HTTP face runs for as long as the gRPC control service does."""
    state = SandboxState()
    state.webhooks.app = HubSpotApp(
        app_id=settings.sandbox_hubspot_app_id,
        developer_api_key=settings.sandbox_developer_api_key,
        client_secret=settings.sandbox_client_secret,
    )
    config = oauth_config(settings)
    app = SandboxHttp(state, config).app()
    host = settings.sandbox_http_host
    async with AsyncExitStack() as stack:
        if settings.sandbox_state_file:
            # Outermost: written a last time once the HTTP face has stopped changing it.
            await stack.enter_async_context(kept_in(state, Path(settings.sandbox_state_file)))
        # Change events go out for as long as the provider APIs can raise them.
        await stack.enter_async_context(Dispatcher(state).running())
        port = await stack.enter_async_context(serving_http(app, host, settings.sandbox_http_port))
        url = f"http://{host}:{port}"
        _log.info("sandbox serving", url=url)
        control = SandboxControl(state, config, url)
        yield [
            Service.from_servicer(
                sandbox_pb2.DESCRIPTOR.services_by_name["SandboxControlService"],
                sandbox_pb2_grpc.add_SandboxControlServiceServicer_to_server,
                control,
            )
        ]


def main() -> None:
    # Tests, mcpanda, the launcher and the demo all drive it: any mesh identity may.
    run_service(name="sandbox", services=build_services, settings_cls=SandboxSettings)


if __name__ == "__main__":
    main()
