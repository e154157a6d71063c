"""The provider-facing HTTP API: OAuth endpoints and record APIs per emulated provider.

    /hubspot/oauth/authorize            GET   auto-approves the test user, 302 with a code
    /hubspot/oauth/v1/token             POST  token endpoint (form-encoded)
    /hubspot/oauth/v1/revoke            POST  RFC 7009 revocation
    /hubspot/oauth/v1/refresh-tokens/T  DELETE HubSpot's documented revocation
    /hubspot/crm/v3/objects/{object}    GET   limit, after, properties
    /salesforce/services/oauth2/authorize|token|revoke      the same, Salesforce paths
    /salesforce/services/data/v59.0/query?q=SOQL            query
    /salesforce/services/data/v59.0/query/{locator}         next page (nextRecordsUrl)

Faults apply before anything else; every answer is counted (see state.Counters).
"""

from __future__ import annotations

import asyncio
import base64
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authlib.oauth2 import OAuth2Error  # type: ignore[import-untyped]
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.sandbox.oauth import OAuthConfig, ProviderAuthorizationServer, SandboxRequest
from services.sandbox.state import (
    Endpoint,
    Fault,
    FaultKind,
    Provider,
    Record,
    RequestInfo,
    SandboxState,
    Token,
)

SALESFORCE_API = "/services/data/v59.0"
SALESFORCE_BATCH_SIZE = 2000
HUBSPOT_MAX_LIMIT = 100

PATHS = {
    Provider.HUBSPOT: {
        "base": "/hubspot",
        "authorize": "/hubspot/oauth/authorize",
        "token": "/hubspot/oauth/v1/token",
        "revoke": "/hubspot/oauth/v1/revoke",
    },
    Provider.SALESFORCE: {
        "base": "/salesforce",
        "authorize": "/salesforce/services/oauth2/authorize",
        "token": "/salesforce/services/oauth2/token",
        "revoke": "/salesforce/services/oauth2/revoke",
    },
}


def hubspot_time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def salesforce_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class _ApiError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.response = JSONResponse(body, status_code=status, headers=headers)


def _provider_error(provider: Provider, status: int, code: str, message: str) -> Any:
    if provider is Provider.HUBSPOT:
        return {"status": "error", "message": message, "category": code}
    return [{"message": message, "errorCode": code}]


@dataclass
class _Cursor:
    rows: list[dict[str, Any]]
    provider: Provider


class SandboxHttp:
    """The ASGI app over a SandboxState (build with .app())."""

    def __init__(self, state: SandboxState, config: OAuthConfig) -> None:
        self.state = state
        self.config = config
        self.servers = {p: ProviderAuthorizationServer(p, state, config) for p in PATHS}
        # Salesforce query cursors, oldest dropped first.
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()

    def app(self) -> Starlette:
        routes = []
        for provider, paths in PATHS.items():
            routes += [
                Route(paths["authorize"], self._bind(self.authorize, provider), methods=["GET"]),
                Route(paths["token"], self._bind(self.token, provider), methods=["POST"]),
                Route(paths["revoke"], self._bind(self.revoke, provider), methods=["POST"]),
            ]
        routes += [
            # HubSpot's own way to revoke (its documented API), beside the RFC 7009 one.
            Route(
                "/hubspot/oauth/v1/refresh-tokens/{token}",
                self.hubspot_delete_refresh_token,
                methods=["DELETE"],
            ),
            Route("/hubspot/crm/v3/objects/{object_name}", self.hubspot_list, methods=["GET"]),
            Route(f"/salesforce{SALESFORCE_API}/query", self.salesforce_query, methods=["GET"]),
            Route(
                f"/salesforce{SALESFORCE_API}/query/{{locator}}",
                self.salesforce_more,
                methods=["GET"],
            ),
        ]
        return Starlette(routes=routes)

    @staticmethod
    def _bind(
        handler: Callable[[Request, Provider], Awaitable[Response]], provider: Provider
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await handler(request, provider)

        return endpoint

    # -- OAuth ---------------------------------------------------------------------------

    async def authorize(self, request: Request, provider: Provider) -> Response:
        """Headless consent: the named (login_hint) or first test user approves at once."""
        oauth = await _oauth_request(request)
        user = request.query_params.get("login_hint") or next(iter(self.config.users))
        if user not in self.config.users:
            return JSONResponse(
                {"error": "access_denied", "error_description": f"no test user {user!r}"},
                status_code=400,
            )
        server = self.servers[provider]
        try:
            grant = server.get_consent_grant(oauth, end_user=user)
        except OAuth2Error as error:
            return _to_response(server.handle_error_response(oauth, error))
        return _to_response(server.create_authorization_response(oauth, user, grant))

    async def token(self, request: Request, provider: Provider) -> Response:
        started = time.monotonic()
        oauth = await _oauth_request(request)
        grant_type = oauth.form.get("grant_type", "")
        info = RequestInfo(
            Endpoint.TOKEN, provider, grant_type=grant_type, client_id=_client_id(oauth)
        )
        response = await self._apply_faults(info, _oauth_error, refresh=oauth)
        if response is None:
            status, body, headers = self.servers[provider].create_token_response(oauth)
            if provider is Provider.SALESFORCE and status == 200 and isinstance(body, dict):
                # Salesforce clients find the record APIs through the token answer.
                body["instance_url"] = str(request.base_url).rstrip("/") + "/salesforce"
            response = _to_response((status, body, headers))
        self.state.counters.count_token(
            provider, grant_type, response.status_code, time.monotonic() - started
        )
        return response

    async def hubspot_delete_refresh_token(self, request: Request) -> Response:
        """DELETE /oauth/v1/refresh-tokens/{token}: revokes the grant, 204; unknown, 404."""
        info = RequestInfo(Endpoint.REVOKE, Provider.HUBSPOT)
        response = await self._apply_faults(info, _oauth_error)
        if response is not None:
            return response
        token = self.state.tokens.by_refresh.get(request.path_params["token"])
        if token is None or token.provider is not Provider.HUBSPOT:
            return JSONResponse(
                _provider_error(Provider.HUBSPOT, 404, "NOT_FOUND", "refresh token not found"),
                status_code=404,
            )
        self.state.tokens.revoke_grant(token.grant_id)
        return Response(status_code=204)

    async def revoke(self, request: Request, provider: Provider) -> Response:
        oauth = await _oauth_request(request)
        info = RequestInfo(Endpoint.REVOKE, provider, client_id=_client_id(oauth))
        response = await self._apply_faults(info, _oauth_error)
        if response is not None:
            return response
        server = self.servers[provider]
        return _to_response(server.create_endpoint_response("revocation", oauth))

    # -- record APIs -----------------------------------------------------------------------

    async def hubspot_list(self, request: Request) -> Response:
        object_name = request.path_params["object_name"]
        return await self._records(request, Provider.HUBSPOT, object_name, self._hubspot_page)

    def _hubspot_page(self, request: Request, object_name: str) -> Any:
        params = request.query_params
        try:
            limit = int(params.get("limit", "10"))
            after = int(params["after"]) if params.get("after") else None
        except ValueError:
            raise _ApiError(
                400,
                _provider_error(
                    Provider.HUBSPOT, 400, "VALIDATION_ERROR", "limit and after must be integers"
                ),
            ) from None
        if not 1 <= limit <= HUBSPOT_MAX_LIMIT:
            raise _ApiError(
                400,
                _provider_error(
                    Provider.HUBSPOT,
                    400,
                    "VALIDATION_ERROR",
                    f"limit must be between 1 and {HUBSPOT_MAX_LIMIT}",
                ),
            )
        wanted = [p for p in params.get("properties", "").split(",") if p]
        records = sorted(
            self.state.records.records(Provider.HUBSPOT, object_name), key=lambda r: int(r.id)
        )
        if after is not None:
            records = [r for r in records if int(r.id) > after]
        page, rest = records[:limit], records[limit:]
        body: dict[str, Any] = {"results": [_hubspot_record(r, wanted) for r in page]}
        if rest:
            body["paging"] = {"next": {"after": page[-1].id}}
        return body

    async def salesforce_query(self, request: Request) -> Response:
        return await self._records(request, Provider.SALESFORCE, None, self._salesforce_query)

    async def salesforce_more(self, request: Request) -> Response:
        return await self._records(request, Provider.SALESFORCE, None, self._salesforce_more)

    def _salesforce_query(self, request: Request, _: str) -> Any:
        soql = request.query_params.get("q", "")
        query = _parse_soql(soql)
        records = list(self.state.records.records(Provider.SALESFORCE, query.object_name))
        if query.since is not None:
            since = query.since
            records = [
                r
                for r in records
                if r.modified > since or (query.inclusive and r.modified == since)
            ]
        if query.ordered:
            records.sort(key=lambda r: (r.modified, r.id), reverse=query.descending)
        if query.limit is not None:
            records = records[: query.limit]
        rows = [_salesforce_row(query.object_name, r, query.fields) for r in records]
        locator = "01g" + secrets.token_hex(8).upper()
        self._cursors[locator] = _Cursor(rows, Provider.SALESFORCE)
        while len(self._cursors) > 100:
            self._cursors.popitem(last=False)
        return self._salesforce_page(locator, 0, _batch_size(request))

    def _salesforce_more(self, request: Request, _: str) -> Any:
        locator, _sep, offset = request.path_params["locator"].rpartition("-")
        if locator not in self._cursors or not offset.isdigit():
            raise _ApiError(
                400,
                _provider_error(
                    Provider.SALESFORCE, 400, "INVALID_QUERY_LOCATOR", "invalid query locator"
                ),
            )
        return self._salesforce_page(locator, int(offset), _batch_size(request))

    def _salesforce_page(self, locator: str, offset: int, batch: int) -> Any:
        rows = self._cursors[locator].rows
        page = rows[offset : offset + batch]
        body: dict[str, Any] = {"totalSize": len(rows), "done": offset + batch >= len(rows)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"{SALESFORCE_API}/query/{locator}-{offset + batch}"
        body["records"] = page
        return body

    async def _records(
        self,
        request: Request,
        provider: Provider,
        object_name: str | None,
        render: Callable[[Request, str], Any],
    ) -> Response:
        started = time.monotonic()
        token = self._bearer(request, provider)
        if object_name is None and request.path_params.get("locator") is None:
            # The object of a SOQL query, for faults scoped to one object.
            match = re.search(r"\bFROM\s+(\w+)", request.query_params.get("q", ""), re.I)
            object_name = match.group(1) if match else ""
        info = RequestInfo(
            Endpoint.RECORDS,
            provider,
            object_name=object_name or "",
            client_id=token.client_id if token else "",
        )

        def error(fault: Fault, status: int) -> Response:
            return _record_fault_error(provider, fault, status)

        response = await self._apply_faults(info, error, token=token)
        if response is None:
            response = self._authenticated(provider, token)
        if response is None:
            try:
                response = JSONResponse(render(request, object_name or ""))
            except _ApiError as exc:
                response = exc.response
        self.state.counters.count_api(provider, response.status_code, time.monotonic() - started)
        return response

    def _bearer(self, request: Request, provider: Provider) -> Token | None:
        scheme, _sep, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = self.state.tokens.by_access.get(value.strip())
        return token if token is not None and token.provider is provider else None

    @staticmethod
    def _authenticated(provider: Provider, token: Token | None) -> Response | None:
        if token is None or token.access_revoked:
            problem = "missing, unknown or revoked access token"
        elif token.is_expired():
            problem = "the access token has expired; refresh it"
        else:
            return None
        code = "INVALID_AUTHENTICATION" if provider is Provider.HUBSPOT else "INVALID_SESSION_ID"
        return JSONResponse(
            _provider_error(provider, 401, code, problem),
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )

    # -- faults ----------------------------------------------------------------------------

    async def _apply_faults(
        self,
        info: RequestInfo,
        error: Callable[[Fault, int], Response],
        *,
        token: Token | None = None,
        refresh: SandboxRequest | None = None,
    ) -> Response | None:
        """Delays, token damage, then the first fault that answers instead."""
        fired = self.state.faults.fire(info)
        answer: Response | None = None
        for fault in fired:
            if fault.kind is FaultKind.SLOW_RESPONSE:
                await asyncio.sleep(fault.delay)
            elif fault.kind is FaultKind.EXPIRED_TOKEN and token is not None:
                token.forced_expired = True
            elif fault.kind is FaultKind.REVOKED_TOKEN:
                self._revoke_for_fault(token, refresh)
            elif answer is None and fault.kind is FaultKind.RATE_LIMIT:
                answer = error(fault, 429)
            elif answer is None and fault.kind is FaultKind.SERVER_ERROR:
                answer = error(fault, fault.http_status)
        return answer

    def _revoke_for_fault(self, token: Token | None, refresh: SandboxRequest | None) -> None:
        if refresh is not None:
            # The refresh token presented: Authlib then answers invalid_grant on its own.
            token = self.state.tokens.by_refresh.get(refresh.form.get("refresh_token", ""))
        if token is not None:
            self.state.tokens.revoke_grant(token.grant_id)


def _retry_after(fault: Fault) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(fault.retry_after)))}


def _oauth_error(fault: Fault, status: int) -> Response:
    headers = _retry_after(fault) if status == 429 else None
    body = {"error": "temporarily_unavailable", "error_description": f"sandbox fault {fault.id}"}
    return JSONResponse(body, status_code=status, headers=headers)


def _record_fault_error(provider: Provider, fault: Fault, status: int) -> Response:
    if status == 429:
        code = "RATE_LIMITS" if provider is Provider.HUBSPOT else "REQUEST_LIMIT_EXCEEDED"
        body = _provider_error(provider, status, code, f"rate limited (sandbox fault {fault.id})")
        return JSONResponse(body, status_code=status, headers=_retry_after(fault))
    code = "INTERNAL_ERROR" if provider is Provider.HUBSPOT else "SERVER_UNAVAILABLE"
    body = _provider_error(provider, status, code, f"server error (sandbox fault {fault.id})")
    return JSONResponse(body, status_code=status)


async def _oauth_request(request: Request) -> SandboxRequest:
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        async with request.form() as data:
            form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    return SandboxRequest(
        request.method,
        str(request.url),
        request.headers,
        list(request.query_params.multi_items()),
        form,
    )


def _client_id(request: SandboxRequest) -> str:
    """The client a token request comes from (Basic auth or form), for fault matching."""
    scheme, _sep, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value).decode().partition(":")[0]
        except ValueError:
            return ""
    return request.form.get("client_id", "")


def _to_response(result: tuple[int, Any, list[tuple[str, str]]]) -> Response:
    status, body, headers = result
    header_map = dict(headers)
    if isinstance(body, dict):
        header_map.pop("Content-Type", None)
        return JSONResponse(body, status_code=status, headers=header_map)
    return Response(body or b"", status_code=status, headers=header_map)


def _hubspot_record(record: Record, wanted: list[str]) -> dict[str, Any]:
    properties: dict[str, str | None] = {
        "createdate": hubspot_time(record.created),
        "hs_lastmodifieddate": hubspot_time(record.modified),
        "hs_object_id": record.id,
    }
    if wanted:
        properties.update({name: record.fields.get(name) for name in wanted})
    else:
        properties.update(record.fields)
    return {
        "id": record.id,
        "properties": properties,
        "createdAt": hubspot_time(record.created),
        "updatedAt": hubspot_time(record.modified),
        "archived": False,
    }


@dataclass(frozen=True)
class _Soql:
    fields: list[str]
    object_name: str
    since: datetime | None
    inclusive: bool
    ordered: bool
    descending: bool
    limit: int | None


_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+LastModifiedDate\s*(?P<op>>=|>)\s*(?P<since>\S+))?"
    r"(?P<order>\s+ORDER\s+BY\s+LastModifiedDate(?:\s+(?P<dir>ASC|DESC))?)?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SYSTEM_FIELDS = ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp")


def _malformed(message: str) -> _ApiError:
    return _ApiError(400, _provider_error(Provider.SALESFORCE, 400, "MALFORMED_QUERY", message))


def _parse_soql(soql: str) -> _Soql:
    match = _SOQL.match(soql)
    if match is None:
        raise _malformed(
            "the sandbox understands SELECT <fields> FROM <object> "
            "[WHERE LastModifiedDate > <datetime>] [ORDER BY LastModifiedDate] [LIMIT n]"
        )
    since = None
    if match["since"]:
        try:
            since = datetime.fromisoformat(match["since"])
        except ValueError:
            raise _malformed(f"invalid datetime literal {match['since']!r}") from None
        if since.tzinfo is None:
            raise _malformed(f"datetime literal {match['since']!r} needs a time zone (Z)")
    fields = [name.strip() for name in match["fields"].split(",")]
    if not all(fields):
        raise _malformed("empty field in the SELECT list")
    return _Soql(
        fields=fields,
        object_name=match["object"],
        since=since,
        inclusive=match["op"] == ">=",
        ordered=match["order"] is not None,
        descending=(match["dir"] or "").upper() == "DESC",
        limit=int(match["limit"]) if match["limit"] else None,
    )


def _salesforce_row(object_name: str, record: Record, fields: list[str]) -> dict[str, Any]:
    values: dict[str, str] = {
        "Id": record.id,
        "CreatedDate": salesforce_time(record.created),
        "LastModifiedDate": salesforce_time(record.modified),
        "SystemModstamp": salesforce_time(record.modified),
        **record.fields,
    }
    by_lower = {name.lower(): name for name in values}
    row: dict[str, Any] = {
        "attributes": {
            "type": object_name,
            "url": f"{SALESFORCE_API}/sobjects/{object_name}/{record.id}",
        }
    }
    for name in fields:
        canonical = by_lower.get(name.lower())
        if canonical is None:
            raise _ApiError(
                400,
                _provider_error(
                    Provider.SALESFORCE,
                    400,
                    "INVALID_FIELD",
                    f"no such column {name!r} on entity {object_name!r}",
                ),
            )
        row[canonical] = values[canonical]
    return row


def _batch_size(request: Request) -> int:
    """Sforce-Query-Options: batchSize=N (the sandbox accepts any N from 1 to 2000)."""
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    if match is None:
        return SALESFORCE_BATCH_SIZE
    return max(1, min(SALESFORCE_BATCH_SIZE, int(match.group(1))))
