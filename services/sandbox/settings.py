"""The sandbox's settings (AMPMESH_SANDBOX_*): where it serves HTTP and whom it accepts."""

from __future__ import annotations

from pydantic import Field

from services.runtime.config import ServiceSettings


class SandboxSettings(ServiceSettings):
    """Settings of `python -m services.sandbox`. The secrets here are sandbox values."""

    sandbox_http_host: str = Field("127.0.0.1", description="provider HTTP listen address")
    sandbox_http_port: int = Field(8400, ge=0, le=65535, description="provider HTTP port; 0 = any")
    sandbox_client_id: str = Field("sandbox-client", description="the OAuth client id accepted")
    sandbox_client_secret: str = Field(
        "sandbox-secret", description="the OAuth client's secret (a sandbox value)"
    )
    sandbox_redirect_uris: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1/callback"],
        description="redirect URIs allowed besides any http loopback URI (JSON list)",
    )
    sandbox_hubspot_app_id: int = Field(
        1_000_001, ge=1, description="the HubSpot developer app id of the OAuth client"
    )
    sandbox_developer_api_key: str = Field(
        "sandbox-developer-key",
        description="the HubSpot developer API key (hapikey) of that app (a sandbox value)",
    )
    sandbox_username: str = Field("sandbox-user", description="the test user (auto-approved)")
    sandbox_password: str = Field("sandbox-password", description="the test user's password")
    sandbox_access_token_lifetime: int = Field(
        3600, ge=1, description="seconds an access token lives"
    )
    sandbox_state_file: str = Field(
        "",
        description=(
            "keep records (deleted ones too), schemas, issued tokens and webhook "
            "subscriptions in this JSON file across restarts "
            "(loaded at start, written when they change and at stop); empty = in memory only"
        ),
    )
