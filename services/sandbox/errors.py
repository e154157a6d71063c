"""The providers' error answers: the body each provider gives a refusal, and the exception
a record API raises to answer with one."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from services.sandbox.providers import Provider


class ApiError(Exception):
    """Answer the request with this provider error instead of a page."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = JSONResponse(body, status_code=status, headers=headers)


def provider_error(provider: Provider, status: int, code: str, message: str) -> Any:
    """The error body as the provider shapes it (HubSpot: an object; Salesforce: a list)."""
    if provider is Provider.HUBSPOT:
        return {"status": "error", "message": message, "category": code}
    return [{"message": message, "errorCode": code}]
