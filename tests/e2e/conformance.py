"""Does a response of ours have the shape the reference documents for it?

`check(response, "GET", "/projects/{projectIdOrName}")` finds the reference operation
(tests/support/reference.py reads the reference OpenAPI documents in place), takes the
schema it documents for the response's status code and content type, and validates the
body with openapi-schema-validator (the OAS 3.0 or 3.1 dialect, per the document's
`openapi` version), following `$ref`s within and across the reference documents through a
`referencing` registry. Formats are checked too (`date-time`, `uuid`, …).

Every check lands in a session-wide tally (`TALLY`): operation → conforms, or the errors.
test_reference_conformance.py prints it; any test may call `check` or `assert_conforms` on
the responses it already has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit
from urllib.request import url2pathname

import httpx
from openapi_schema_validator import OAS30Validator, OAS31Validator
from referencing import Registry, Resource, Specification
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4, DRAFT202012

from tests.support.reference import Operation, load, normalize_path, operations

# A validation message can quote a whole instance; a line of the report needs less.
_MESSAGE_LIMIT = 240


@dataclass(frozen=True)
class Check:
    """One response held against the reference."""

    operation: str  # "GET /v1/projects/{projectIdOrName}", as the reference spells it
    status: int
    errors: tuple[str, ...]

    @property
    def conforms(self) -> bool:
        return not self.errors


@dataclass
class Tally:
    """Every check of the session, by operation."""

    checks: dict[str, list[Check]] = field(default_factory=dict)

    def record(self, check: Check) -> None:
        self.checks.setdefault(check.operation, []).append(check)

    def conforming(self) -> list[str]:
        return sorted(op for op, checks in self.checks.items() if all(c.conforms for c in checks))

    def failing(self) -> dict[str, list[Check]]:
        return {
            op: [c for c in checks if not c.conforms]
            for op, checks in sorted(self.checks.items())
            if not all(c.conforms for c in checks)
        }


TALLY = Tally()


class NotInReference(LookupError):
    """The method and path name no operation of the reference documents."""


def find_operation(method: str, path: str, host: str = "api") -> Operation:
    """The reference operation for `method path`; path as the reference writes it, with
    or without the document's `/v1` base (parameter names do not matter)."""
    wanted = normalize_path(path)
    for operation in operations():
        if operation.host != host or operation.method != method.upper():
            continue
        full = normalize_path(operation.path)
        if full == wanted or (full.endswith(wanted) and full[: -len(wanted)] in ("", "/v1")):
            return operation
    raise NotInReference(f"the reference documents no {method.upper()} {path} on {host}")


def check(
    response: httpx.Response,
    method: str,
    path: str,
    *,
    host: str = "api",
    tally: Tally = TALLY,
) -> Check:
    """Validate response against the reference's documentation of `method path` and
    record the result in tally."""
    operation = find_operation(method, path, host)
    result = Check(
        f"{operation.method} {operation.path}",
        response.status_code,
        tuple(validation_errors(response, operation)),
    )
    tally.record(result)
    return result


def assert_conforms(response: httpx.Response, method: str, path: str, *, host: str = "api") -> None:
    result = check(response, method, path, host=host)
    assert result.conforms, (
        f"{result.operation} answered {result.status}, not as the reference documents: "
        + "; ".join(result.errors)
    )


def validation_errors(response: httpx.Response, operation: Operation) -> list[str]:
    """Why the response does not conform to operation (empty when it does)."""
    document = _json_document(operation.document)
    spec = document["paths"][_route(operation, document)][operation.method.lower()]
    responses: dict[str, Any] = spec.get("responses", {})
    status = response.status_code
    status_key = next(
        (k for k in (str(status), f"{status // 100}XX", "default") if k in responses), None
    )
    if status_key is None:
        return [f"status {status} is not documented (documented: {', '.join(responses)})"]
    content: dict[str, Any] = responses[status_key].get("content") or {}
    if not response.content:
        if content:
            return [f"status {status} has an empty body; the reference documents a body"]
        return []
    if not content:
        return [f"status {status} has a body; the reference documents none"]
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    errors: list[str] = []
    if media not in content:
        errors.append(f"content type {media!r}; the reference documents {', '.join(content)}")
        media = next(iter(content))
    if "schema" not in content[media]:
        return errors
    body: Any
    if media.startswith("text/"):  # e.g. oauth-connect's URL: the schema is a string
        body = response.text
    else:
        try:
            body = response.json()
        except ValueError:
            return [*errors, f"the body is not JSON: {response.text[:80]!r}"]
    route = _route(operation, document)
    where = ("paths", route, operation.method.lower(), "responses", status_key, "content", media)
    pointer = "/".join(_escape(part) for part in (*where, "schema"))
    validator = _validator(operation.document, f"#/{pointer}")
    found = sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
    for error in found:
        message = error.message
        if len(message) > _MESSAGE_LIMIT:
            message = message[:_MESSAGE_LIMIT] + "…"
        errors.append(f"{error.json_path}: {message}")
    # Alternatives (oneOf, allOf) can report one problem once per branch.
    return list(dict.fromkeys(errors))


def _route(operation: Operation, document: dict[str, Any]) -> str:
    """The document's key for operation's path: the path less the servers URL's base."""
    base = document["servers"][0]["url"].split("://", 1)[1]
    prefix = base[base.index("/") :] if "/" in base else ""
    route = operation.path.removeprefix(prefix)
    if route not in document["paths"]:
        raise NotInReference(f"{operation} is not in {operation.document}")
    return route


def _escape(part: str) -> str:
    """A JSON pointer segment (RFC 6901)."""
    return part.replace("~", "~0").replace("/", "~1")


@cache
def _json_document(path: Path) -> dict[str, Any]:
    """The document as JSON sees it: YAML's integer keys (status codes) and timestamps
    (examples) become strings, so JSON pointers reach every node."""
    normalized: dict[str, Any] = json.loads(json.dumps(load(path.resolve()), default=str))
    return normalized


def _is_oas31(document: dict[str, Any]) -> bool:
    return str(document.get("openapi", "3.0")).startswith(("3.1", "3.2"))


def _specification(document: dict[str, Any]) -> Specification[Any]:
    # OAS 3.0 schemas are an extended subset of JSON Schema draft 4 (`id`, not `$id`);
    # 3.1 schemas are draft 2020-12.
    return DRAFT202012 if _is_oas31(document) else DRAFT4


def _retrieve(uri: str) -> Resource[Any]:
    """A reference document, given its file:// URI, as a registry resource."""
    location = urlsplit(urldefrag(uri)[0])
    if location.scheme != "file":
        raise NoSuchResource(uri)
    path = Path(url2pathname(location.path))
    if not path.is_file():
        raise NoSuchResource(uri)
    document = _json_document(path)
    return _specification(document).create_resource(document)


@cache
def _registry() -> Registry[Any]:
    return Registry(retrieve=_retrieve)  # type: ignore[call-arg]


@cache
def _validator(document_path: Path, fragment: str) -> Any:
    """A validator for the schema at fragment of the document, resolving the document's
    own `#/...` and other documents' `../x.yaml#/...` references from where they are."""
    document = _json_document(document_path)
    cls: Any = OAS31Validator if _is_oas31(document) else OAS30Validator
    root = {"$ref": document_path.resolve().as_uri() + fragment}
    return cls(
        root,
        registry=_registry(),
        format_checker=cls.FORMAT_CHECKER,
    )
