"""The api's `subscribe` route group: providers' change webhooks, verified, deduplicated
and queued for the subscribe consumer (service.py says how)."""

from __future__ import annotations

from services.api.subscribe.service import provider_webhook_service

__all__ = ["provider_webhook_service"]
