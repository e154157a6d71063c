"""Where our answers differ from what the reference documents, on purpose.

Every error we answer is `application/problem+json` (RFC 9457), built by the edge
(envoy/problem.lua, ARCHITECTURE.md's listener table). The reference documents most errors
the same way, but some operations document theirs as `application/json` (or `text/plain`).
The fuzz suite checks every error's media type against the reference's documentation of
that operation and status; a mismatch fails unless it is listed here, with its reason.
test_accepted.py keeps this list equal to what the reference documents, so nothing stale
hides here.

Keys: (host, METHOD, path as the reference's public URL has it, status).
"""

from __future__ import annotations

PROBLEM = "application/problem+json"

_P = "/v1/projects/{projectIdOrName}"
_JWT_KEYS = f"{_P}/jwt-keys"
_JWT_KEY = f"{_JWT_KEYS}/{{keyId}}"
_READ = f"{_P}/integrations/{{integrationId}}/objects/{{objectName}}"

_SAME_BODY = (
    "the reference documents this error as application/json, yet its schema or example is "
    "the same problem document (type, title, status, detail) it documents as "
    "application/problem+json everywhere else; one media type for every error is what lets "
    "a client parse any refusal the same way, so we keep problem+json"
)
_WRITE_400 = (
    "the reference documents the write host's 400 as text/plain (a bare message like "
    "'required field not found'); a plain string carries no field to point at, and our 400s "
    "name the offending field in issues[], so we answer problem+json"
)
_WRITE_422 = (
    "the reference's 422 here is not a refusal but its per-record write result "
    "(operationId, errors, results) as application/json, and ours is the same message in "
    "the same media type (services/api/write/sync.py); our refusals of a write are 400s in "
    "problem+json, and a fuzzed request never reaches a provider that could refuse a record"
)

ACCEPTED_DIFFERENCES: dict[tuple[str, str, str, str], str] = {
    **{
        ("api", method, path, status): _SAME_BODY
        for method, path, statuses in (
            ("GET", _JWT_KEYS, ("400", "500")),
            ("POST", _JWT_KEYS, ("400", "404", "500")),
            ("GET", _JWT_KEY, ("404", "500")),
            ("PATCH", _JWT_KEY, ("400", "404", "422", "500")),
            ("DELETE", _JWT_KEY, ("404", "500")),
        )
        for status in statuses
    },
    **{
        ("read", "POST", path, status): _SAME_BODY
        for path in (_READ, f"{_READ}:deliverResults")
        for status in ("400", "500")
    },
    **{
        ("search", "POST", f"{_P}/integrations/{{integrationId}}", status): _SAME_BODY
        for status in ("400", "500")
    },
    ("write", "POST", _READ, "400"): _WRITE_400,
    ("write", "POST", _READ, "422"): _WRITE_422,
}


def accepted(host: str, method: str, path: str, status: str) -> str | None:
    """Why our problem+json may differ from what the reference documents here, or None."""
    return ACCEPTED_DIFFERENCES.get((host, method, path, status))
