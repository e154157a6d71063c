"""The api's short reuse of a connection's provider auth (services/api/provider_auths.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from services.api.provider_auths import TOKEN_MARGIN, ProviderAuths
from services.domain.connectors.base import ProviderAuth

AUTH = ProviderAuth(base_url="https://example.test", headers={"Authorization": "Bearer t"})


def test_an_auth_is_reused_for_a_few_seconds_then_asked_for_again() -> None:
    auths = ProviderAuths(reuse_seconds=0.2)
    auths.put("c1", AUTH, None)
    assert auths.get("c1") is AUTH
    assert auths.get("c2") is None
    time.sleep(0.25)
    assert auths.get("c1") is None


def test_a_token_about_to_expire_is_not_kept() -> None:
    auths = ProviderAuths(reuse_seconds=10)
    soon = datetime.now(UTC) + timedelta(seconds=TOKEN_MARGIN - 1)
    auths.put("c1", AUTH, soon)
    assert auths.get("c1") is None
    later = datetime.now(UTC) + timedelta(seconds=TOKEN_MARGIN + 0.2)
    auths.put("c1", AUTH, later)
    assert auths.get("c1") is AUTH
    time.sleep(0.3)
    assert auths.get("c1") is None
