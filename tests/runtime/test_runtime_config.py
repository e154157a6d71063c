"""Settings from AMPMESH_* variables; bad ones fail with one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from services.runtime.config import ConfigError, ServiceSettings, load_settings

SECRET_VALUE = "not-long-enough-s3cr3t"


class TokenManagerSettings(ServiceSettings):
    """A service's own settings, as a service would declare them."""

    encryption_key: SecretStr = Field(min_length=32)
    shard_names: list[str] = Field(default_factory=list)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("AMPMESH_"):
            monkeypatch.delenv(name)


def error_for(**env: str) -> str:
    mp = pytest.MonkeyPatch()
    try:
        for name, value in env.items():
            mp.setenv(name, value)
        with pytest.raises(ConfigError) as failed:
            load_settings(TokenManagerSettings, service_name="token-manager")
        return str(failed.value)
    finally:
        mp.undo()


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMPMESH_ENCRYPTION_KEY", "k" * 32)
    monkeypatch.setenv("AMPMESH_LISTEN_PORT", "6000")
    monkeypatch.setenv("AMPMESH_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("AMPMESH_CERT_DIR", "/tmp/ampmesh-certs")
    monkeypatch.setenv("AMPMESH_SHARD_NAMES", '["token-0", "token-1"]')
    settings = load_settings(TokenManagerSettings, service_name="token-manager")
    assert settings.identity == "token-manager"  # defaults to the service name
    assert settings.listen_port == 6000
    assert settings.log_level == "debug"
    assert settings.cert_dir == Path("/tmp/ampmesh-certs")
    assert settings.shard_names == ["token-0", "token-1"]
    assert settings.metrics_port is None and settings.metrics_host == "127.0.0.1"
    assert settings.encryption_key.get_secret_value() == "k" * 32
    assert "k" * 32 not in repr(settings)
    assert "k" * 32 not in str(settings.model_dump(mode="json"))


def test_missing_setting_names_the_variable() -> None:
    assert error_for() == "configuration error: AMPMESH_ENCRYPTION_KEY is required but not set"


def test_invalid_settings_name_each_variable_on_one_line() -> None:
    message = error_for(
        AMPMESH_ENCRYPTION_KEY="k" * 32,
        AMPMESH_LISTEN_PORT="70000",
        AMPMESH_GRACE_PERIOD="soon",
        AMPMESH_LOG_LEVEL="loud",
    )
    assert "\n" not in message
    assert "AMPMESH_LISTEN_PORT is invalid: Input should be less than or equal to 65535" in message
    assert "AMPMESH_GRACE_PERIOD is invalid: Input should be a valid number" in message
    assert "AMPMESH_LOG_LEVEL is invalid: Input should be 'debug'" in message
    assert "Traceback" not in message and "pydantic" not in message


def test_secret_values_are_never_printed() -> None:
    message = error_for(AMPMESH_ENCRYPTION_KEY=SECRET_VALUE)
    assert (
        message
        == "configuration error: AMPMESH_ENCRYPTION_KEY is invalid (too short; value hidden)"
    )
    assert SECRET_VALUE not in message
    assert str(len(SECRET_VALUE)) not in message  # not even its length


def test_unparsable_json_and_bad_identity_name_their_variable() -> None:
    bad_json = error_for(AMPMESH_ENCRYPTION_KEY="k" * 32, AMPMESH_SHARD_NAMES="[token-0")
    assert bad_json == "configuration error: AMPMESH_SHARD_NAMES is invalid: not valid JSON"
    bad_identity = error_for(AMPMESH_ENCRYPTION_KEY="k" * 32, AMPMESH_IDENTITY="Token_Manager")
    assert bad_identity.startswith("configuration error: AMPMESH_IDENTITY")
