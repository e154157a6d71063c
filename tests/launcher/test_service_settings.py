"""The user's AMPMESH_* settings reach the processes the launcher starts (issue 17, item 5:
AMPMESH_SANDBOX_* never reached `ampmesh up --sandbox`'s sandbox), under the launcher's
own values, and without the mesh-wiring variables a shell may hold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ampmesh.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from services.launcher.processes import (
    LAUNCHER_IDENTITY,
    ServiceSpec,
    start_service,
    stop_service,
    user_settings,
    wait_announced,
)
from services.runtime.channels import mesh_channel
from services.runtime.tls import ensure_service_credentials


def test_the_users_settings_pass_but_not_the_wiring_a_shell_may_hold() -> None:
    environ = {
        "AMPMESH_SANDBOX_CLIENT_ID": "mine",
        "AMPMESH_LOG_LEVEL": "debug",
        "AMPMESH_API_KEY": "amp_a_builders_key",  # for the CLI, not for every service
        "AMPMESH_SANDBOX_URL": "http://elsewhere",
        "PATH": "/usr/bin",
    }
    assert user_settings(environ) == {
        "AMPMESH_SANDBOX_CLIENT_ID": "mine",
        "AMPMESH_LOG_LEVEL": "debug",
    }


async def test_a_sandbox_setting_reaches_the_sandbox_and_the_launchers_values_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMPMESH_SANDBOX_ACCESS_TOKEN_LIFETIME", "777")
    # The launcher reads the log as JSON: a user's text format must not win.
    monkeypatch.setenv("AMPMESH_LOG_FORMAT", "text")
    home = tmp_path
    (home / "logs").mkdir()
    for identity in ("sandbox", LAUNCHER_IDENTITY):
        ensure_service_credentials(home / "certs", identity)
    spec = ServiceSpec("sandbox", "services.sandbox", endpoints={"sandbox serving": "sandbox-http"})
    launcher_env = {"AMPMESH_SANDBOX_HTTP_PORT": "0"}
    running = await start_service(spec, home, 0, launcher_env, user_settings(os.environ))
    try:
        await wait_announced(running, 60)
        credentials = ensure_service_credentials(home / "certs", LAUNCHER_IDENTITY)
        async with mesh_channel(running.address, credentials, server_identity="sandbox") as channel:
            info = await sandbox_pb2_grpc.SandboxControlServiceStub(channel).GetSandboxInfo(
                sandbox_pb2.GetSandboxInfoRequest()
            )
        assert info.access_token_lifetime.seconds == 777
    finally:
        assert await stop_service(running, 15) == 0
