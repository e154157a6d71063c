"""The provider-facing HTTP API: OAuth endpoints and record APIs per emulated provider.

    /hubspot/oauth/authorize            GET   auto-approves the test user, 302 with a code
    /hubspot/oauth/v1/token             POST  token endpoint (form-encoded)
    /hubspot/oauth/v1/revoke            POST  RFC 7009 revocation
    /hubspot/oauth/v1/refresh-tokens/T  DELETE HubSpot's documented revocation
    /hubspot/crm/v3/objects/{object}    GET   list: limit, after, properties
    /hubspot/crm/v3/objects/{object}/search  POST  CRM search: filterGroups, sorts,
                                        properties, limit (<= 200), after (< 10,000)
    /salesforce/services/oauth2/authorize|token|revoke      the same, Salesforce paths
    /salesforce/services/data/vNN.0/query?q=SOQL            query (any API version)
    /salesforce/services/data/vNN.0/query/{locator}         next page (nextRecordsUrl)

Faults apply before anything else; every answer is counted (see state.Counters). Pages
are slices of the store's sorted indexes, rendered with orjson, so the sandbox is not
what limits a benchmark reading through it.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
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
    ObjectRecords,
    Provider,
    Record,
    RequestInfo,
    SandboxState,
    Token,
    micros,
    window,
)

SALESFORCE_BATCH_SIZE = 2000
HUBSPOT_MAX_LIMIT = 100
# Open Salesforce query cursors kept (oldest dropped first): enough for many concurrent
# reads; a dropped one answers INVALID_QUERY_LOCATOR, as an expired one does.
MAX_CURSORS = 1000
# HubSpot search answers kept (each holds up to every record of an object).
MAX_SEARCHES = 64
_JSON = "application/json"

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
    """An open Salesforce query: its records (rendered page by page) and SELECT list."""

    records: list[Record]
    object_name: str
    fields: list[str]


class SandboxHttp:
    """The ASGI app over a SandboxState (build with .app())."""

    def __init__(self, state: SandboxState, config: OAuthConfig) -> None:
        self.state = state
        self.config = config
        self.servers = {p: ProviderAuthorizationServer(p, state, config) for p in PATHS}
        # Salesforce query cursors, oldest dropped first.
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        # Recent HubSpot search answers: a reader repeats one search with a growing
        # `after`, so each page is then a slice instead of a new search.
        self._searches: OrderedDict[tuple[Any, ...], Sequence[Record]] = OrderedDict()

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
            Route(
                "/hubspot/crm/v3/objects/{object_name}/search",
                self.hubspot_search,
                methods=["POST"],
            ),
            Route(
                "/salesforce/services/data/{version}/query",
                self.salesforce_query,
                methods=["GET"],
            ),
            Route(
                "/salesforce/services/data/{version}/query/{locator}",
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

    async def hubspot_search(self, request: Request) -> Response:
        object_name = request.path_params["object_name"]
        return await self._records(request, Provider.HUBSPOT, object_name, self._hubspot_search)

    async def _hubspot_page(self, request: Request, object_name: str) -> bytes:
        params = request.query_params
        try:
            limit = int(params.get("limit", "10"))
            after = int(params["after"]) if params.get("after") else None
        except ValueError:
            raise _hubspot_invalid("limit and after must be integers") from None
        if not 1 <= limit <= HUBSPOT_MAX_LIMIT:
            raise _hubspot_invalid(f"limit must be between 1 and {HUBSPOT_MAX_LIMIT}")
        wanted = [p for p in params.get("properties", "").split(",") if p]
        records, keys = self.state.records.object(Provider.HUBSPOT, object_name).by_id()
        start = 0 if after is None else bisect.bisect_right(keys, after)
        page = records[start : start + limit]
        body: dict[str, Any] = {"results": [_hubspot_record(r, wanted) for r in page]}
        if start + limit < len(records):
            body["paging"] = {"next": {"after": page[-1].id}}
        return orjson.dumps(body)

    async def _hubspot_search(self, request: Request, object_name: str) -> bytes:
        search = _parse_search(await request.body())
        found = self.state.records.object(Provider.HUBSPOT, object_name)
        key = (found.generation, repr(search.groups), search.sort_by_modified)
        matches = self._searches.get(key)
        if matches is None:
            matches = self._searches[key] = _search(found, search, descending=False)
            while len(self._searches) > MAX_SEARCHES:
                self._searches.popitem(last=False)
        if search.descending:
            matches = matches[::-1]
        page = matches[search.after : search.after + search.limit]
        body: dict[str, Any] = {
            "total": len(matches),
            "results": [_hubspot_record(r, search.properties) for r in page],
        }
        if search.after + search.limit < len(matches):
            # Like HubSpot, the next offset is offered even past the 10,000 cap; asking
            # for it is what fails.
            body["paging"] = {"next": {"after": str(search.after + search.limit)}}
        return orjson.dumps(body)

    async def salesforce_query(self, request: Request) -> Response:
        return await self._records(request, Provider.SALESFORCE, None, self._salesforce_query)

    async def salesforce_more(self, request: Request) -> Response:
        return await self._records(request, Provider.SALESFORCE, None, self._salesforce_more)

    async def _salesforce_query(self, request: Request, _: str) -> bytes:
        version = _salesforce_version(request)
        query = _parse_soql(request.query_params.get("q", ""))
        found = self.state.records.object(Provider.SALESFORCE, query.object_name)
        ordered_by_time, keys = found.by_modified()
        start, stop = window(keys, query.lower, True, query.upper, True)
        records = ordered_by_time[start:stop]
        if query.order_by_id:
            records.sort(key=lambda r: r.id)
        if query.descending:
            records.reverse()
        if query.limit is not None:
            records = records[: query.limit]
        fields = _salesforce_fields(query, found.in_order[:1])
        locator = "01g" + secrets.token_hex(8).upper()
        self._cursors[locator] = _Cursor(records, query.object_name, fields)
        while len(self._cursors) > MAX_CURSORS:
            self._cursors.popitem(last=False)
        return self._salesforce_page(version, locator, 0, _batch_size(request))

    async def _salesforce_more(self, request: Request, _: str) -> bytes:
        version = _salesforce_version(request)
        locator, _sep, offset = request.path_params["locator"].rpartition("-")
        if locator not in self._cursors or not offset.isdigit():
            raise _ApiError(
                400,
                _provider_error(
                    Provider.SALESFORCE, 400, "INVALID_QUERY_LOCATOR", "invalid query locator"
                ),
            )
        return self._salesforce_page(version, locator, int(offset), _batch_size(request))

    def _salesforce_page(self, version: str, locator: str, offset: int, batch: int) -> bytes:
        cursor = self._cursors[locator]
        total = len(cursor.records)
        page = cursor.records[offset : offset + batch]
        done = offset + batch >= total
        body: dict[str, Any] = {"totalSize": total, "done": done}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{offset + batch}"
        body["records"] = [
            _salesforce_row(version, cursor.object_name, r, cursor.fields) for r in page
        ]
        return orjson.dumps(body)

    async def _records(
        self,
        request: Request,
        provider: Provider,
        object_name: str | None,
        render: Callable[[Request, str], Awaitable[bytes]],
    ) -> Response:
        started = time.monotonic()
        token = self._bearer(request, provider)
        if object_name is None:
            # The object of a SOQL query or of its cursor, for faults scoped to one object.
            locator = request.path_params.get("locator")
            if locator is None:
                match = re.search(r"\bFROM\s+(\w+)", request.query_params.get("q", ""), re.I)
                object_name = match.group(1) if match else ""
            else:
                cursor = self._cursors.get(locator.rpartition("-")[0])
                object_name = cursor.object_name if cursor is not None else ""
        info = RequestInfo(
            Endpoint.RECORDS,
            provider,
            object_name=object_name,
            client_id=token.client_id if token else "",
        )

        def error(fault: Fault, status: int) -> Response:
            return _record_fault_error(provider, fault, status)

        response = await self._apply_faults(info, error, token=token)
        if response is None:
            response = self._authenticated(provider, token)
        if response is None:
            try:
                response = Response(await render(request, object_name), media_type=_JSON)
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
            elif answer is None and fault.kind is FaultKind.DROP_CONNECTION:
                answer = DroppedConnection()
        return answer

    def _revoke_for_fault(self, token: Token | None, refresh: SandboxRequest | None) -> None:
        if refresh is not None:
            # The refresh token presented: Authlib then answers invalid_grant on its own.
            token = self.state.tokens.by_refresh.get(refresh.form.get("refresh_token", ""))
        if token is not None:
            self.state.tokens.revoke_grant(token.grant_id)


class DroppedConnection(Response):
    """No answer: the status line and headers promise a body that never comes.

    ASGI gives an application no way to close its connection, but a server must close
    one whose response the application left incomplete (uvicorn does, logging that it
    did), so the client sees the connection drop mid-answer."""

    def __init__(self) -> None:
        super().__init__(status_code=200, headers={"content-length": "64"})
        self.status_code = 0  # for the counters: nothing was answered

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})


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


def _hubspot_invalid(message: str) -> _ApiError:
    return _ApiError(400, _provider_error(Provider.HUBSPOT, 400, "VALIDATION_ERROR", message))


def _hubspot_record(record: Record, wanted: list[str]) -> dict[str, Any]:
    system, whole = record.hubspot_parts()
    if not wanted:
        return whole
    everything = whole["properties"]
    properties = system.copy()
    for name in wanted:
        properties[name] = everything.get(name)
    return {**whole, "properties": properties}


# HubSpot CRM search (POST /crm/v3/objects/{object}/search), as documented: filter
# groups are ORed, the filters of a group ANDed; one sort; limit up to 200; paging by
# an offset `after` that may not reach 10,000.
HUBSPOT_SEARCH_MAX_LIMIT = 200
HUBSPOT_SEARCH_MAX_RESULTS = 10_000
_HUBSPOT_MODIFIED = frozenset({"hs_lastmodifieddate", "lastmodifieddate"})
_HUBSPOT_OPERATORS = frozenset({"EQ", "NEQ", "GT", "GTE", "LT", "LTE"})


@dataclass(frozen=True)
class _Filter:
    name: str
    operator: str
    value: int | str


@dataclass(frozen=True)
class _Search:
    groups: list[list[_Filter]]
    sort_by_modified: bool
    descending: bool
    properties: list[str]
    limit: int
    after: int


def _parse_search(raw: bytes) -> _Search:
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError:
        raise _hubspot_invalid("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _hubspot_invalid("the request body must be a JSON object")
    try:
        limit = int(body.get("limit", 10))
        after = int(body.get("after") or 0)
    except (TypeError, ValueError):
        raise _hubspot_invalid("limit and after must be integers") from None
    if not 1 <= limit <= HUBSPOT_SEARCH_MAX_LIMIT:
        raise _hubspot_invalid(f"limit must be between 1 and {HUBSPOT_SEARCH_MAX_LIMIT}")
    if after < 0:
        raise _hubspot_invalid("after must not be negative")
    if after >= HUBSPOT_SEARCH_MAX_RESULTS:
        raise _hubspot_invalid(
            f"Paging past {HUBSPOT_SEARCH_MAX_RESULTS} results is not supported; "
            "narrow the search with filters"
        )
    groups = [
        [_search_filter(item) for item in _list_of(group, "filters")]
        for group in _list_of(body, "filterGroups")
    ]
    if len(groups) > 5 or any(len(group) > 6 for group in groups):
        raise _hubspot_invalid("at most 5 filterGroups of at most 6 filters each")
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise _hubspot_invalid("sorts takes at most one sort")
    sort_name, descending = "hs_object_id", False
    if sorts:
        sort = sorts[0]
        if isinstance(sort, str):
            sort_name, descending = sort.lstrip("-"), sort.startswith("-")
        elif isinstance(sort, dict):
            sort_name = str(sort.get("propertyName", ""))
            descending = str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
        if sort_name not in _HUBSPOT_MODIFIED and sort_name != "hs_object_id":
            raise _hubspot_invalid(
                "the sandbox sorts searches by hs_lastmodifieddate or hs_object_id only"
            )
    properties = body.get("properties") or []
    if not isinstance(properties, list) or not all(isinstance(p, str) for p in properties):
        raise _hubspot_invalid("properties must be a list of property names")
    return _Search(groups, sort_name in _HUBSPOT_MODIFIED, descending, properties, limit, after)


def _list_of(container: dict[str, Any], key: str) -> list[Any]:
    value = container.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _hubspot_invalid(f"{key} must be a list of objects")
    return value


def _search_filter(item: dict[str, Any]) -> _Filter:
    name, operator, value = item.get("propertyName"), item.get("operator"), item.get("value")
    if not isinstance(name, str) or operator not in _HUBSPOT_OPERATORS:
        raise _hubspot_invalid(
            "each filter needs a propertyName and an operator among "
            + ", ".join(sorted(_HUBSPOT_OPERATORS))
        )
    text = str(value) if value is not None else ""
    if name in _HUBSPOT_MODIFIED or name == "createdate":
        return _Filter(name, operator, _search_time(text))
    if name == "hs_object_id":
        if not text.isdigit():
            raise _hubspot_invalid(f"hs_object_id filter value {text!r} is not a number")
        return _Filter(name, operator, int(text))
    return _Filter(name, operator, text)


def _search_time(text: str) -> int:
    """A date-time filter value, epoch milliseconds or ISO 8601 (HubSpot takes both),
    in microseconds."""
    if text.lstrip("-").isdigit():
        return int(text) * 1000
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _hubspot_invalid(f"{text!r} is neither epoch milliseconds nor ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return micros(moment)


def _search_value(record: Record, name: str) -> int | str | None:
    if name in _HUBSPOT_MODIFIED:
        return micros(record.modified)
    if name == "createdate":
        return micros(record.created)
    if name == "hs_object_id":
        return int(record.id)
    return record.fields.get(name)


def _passes(record: Record, rule: _Filter) -> bool:
    value = _search_value(record, rule.name)
    if value is None:
        return rule.operator == "NEQ"
    wanted = rule.value
    match rule.operator:
        case "EQ":
            return value == wanted
        case "NEQ":
            return value != wanted
        case "GT":
            return value > wanted  # type: ignore[operator]
        case "GTE":
            return value >= wanted  # type: ignore[operator]
        case "LT":
            return value < wanted  # type: ignore[operator]
        case _:
            return value <= wanted  # type: ignore[operator]


def _bounds(group: list[_Filter], names: frozenset[str]) -> tuple[int | None, int | None]:
    """The inclusive integer bounds a group's filters put on one property."""
    lower: int | None = None
    upper: int | None = None
    for rule in group:
        if rule.name not in names or not isinstance(rule.value, int):
            continue
        value = rule.value
        low = {"EQ": value, "GT": value + 1, "GTE": value}.get(rule.operator)
        high = {"EQ": value, "LT": value - 1, "LTE": value}.get(rule.operator)
        if low is not None:
            lower = low if lower is None else max(lower, low)
        if high is not None:
            upper = high if upper is None else min(upper, high)
    return lower, upper


def _search(found: ObjectRecords, search: _Search, *, descending: bool) -> Sequence[Record]:
    """The matching records in answer order.

    A group whose filters all bear on the sort property is a slice of that sorted index
    (found by bisection, nothing copied). Otherwise each group is narrowed by whichever
    index (modification time or id) gives the fewer candidates, only those are checked
    against the group's filters, and the union is sorted.
    """
    by_time, time_keys = found.by_modified()
    by_id, id_keys = found.by_id()
    id_names = frozenset({"hs_object_id"})

    def time_span(group: list[_Filter]) -> tuple[int, int]:
        lower, upper = _bounds(group, _HUBSPOT_MODIFIED)
        return window(time_keys, lower, True, upper, True)

    def id_span(group: list[_Filter]) -> tuple[int, int]:
        lower, upper = _bounds(group, id_names)
        start = 0 if lower is None else bisect.bisect_left(id_keys, lower)
        stop = len(id_keys) if upper is None else bisect.bisect_right(id_keys, upper)
        return start, max(start, stop)

    ordered, names, span = (
        (by_time, _HUBSPOT_MODIFIED, time_span)
        if search.sort_by_modified
        else (by_id, id_names, id_span)
    )
    groups = search.groups or [[]]
    if len(groups) == 1 and all(rule.name in names for rule in groups[0]):
        start, stop = span(groups[0])
        matches: Sequence[Record] = ordered[start:stop]
    else:
        chosen: dict[str, Record] = {}
        for group in groups:
            (time_start, time_stop), (id_start, id_stop) = time_span(group), id_span(group)
            if time_stop - time_start <= id_stop - id_start:
                candidates = by_time[time_start:time_stop]
            else:
                candidates = by_id[id_start:id_stop]
            for record in candidates:
                if all(_passes(record, rule) for rule in group):
                    chosen[record.id] = record
        if search.sort_by_modified:
            matches = sorted(chosen.values(), key=lambda r: (r.modified, int(r.id)))
        else:
            matches = sorted(chosen.values(), key=lambda r: int(r.id))
    return matches[::-1] if descending else matches


@dataclass(frozen=True)
class _Soql:
    fields: list[str]
    object_name: str
    # Inclusive bounds on the modification time, in microseconds (None: unbounded).
    lower: int | None
    upper: int | None
    order_by_id: bool
    descending: bool
    limit: int | None


_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?"
    r"(?:\s+ORDER\s+BY\s+(?P<order>.+?))?"
    r"(?:\s+LIMIT\s+(?P<limit>\d+))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SOQL_CONDITION = re.compile(
    r"^(?P<field>SystemModstamp|LastModifiedDate)\s*(?P<op>>=|<=|>|<|=)\s*(?P<value>\S+)$",
    re.IGNORECASE,
)
_SOQL_ORDER = re.compile(r"^(?P<field>\w+)(?:\s+(?P<dir>ASC|DESC))?$", re.IGNORECASE)
_SOQL_TIMES = frozenset({"systemmodstamp", "lastmodifieddate"})
_SOQL_HELP = (
    "the sandbox understands SELECT <fields> FROM <object> "
    "[WHERE SystemModstamp|LastModifiedDate <op> <datetime> [AND ...]] "
    "[ORDER BY SystemModstamp|LastModifiedDate|Id [ASC|DESC][, Id [ASC|DESC]]] [LIMIT n]"
)


def _malformed(message: str) -> _ApiError:
    return _ApiError(400, _provider_error(Provider.SALESFORCE, 400, "MALFORMED_QUERY", message))


def _parse_soql(soql: str) -> _Soql:
    match = _SOQL.match(soql)
    if match is None:
        raise _malformed(_SOQL_HELP)
    lower: int | None = None
    upper: int | None = None
    if match["where"]:
        for condition in re.split(r"\s+AND\s+", match["where"].strip(), flags=re.IGNORECASE):
            found = _SOQL_CONDITION.match(condition.strip())
            if found is None:
                raise _malformed(f"unsupported condition {condition.strip()!r}; {_SOQL_HELP}")
            value = micros(_soql_datetime(found["value"]))
            op = found["op"]
            if op in {">", ">=", "="}:
                low = value + 1 if op == ">" else value
                lower = low if lower is None else max(lower, low)
            if op in {"<", "<=", "="}:
                high = value - 1 if op == "<" else value
                upper = high if upper is None else min(upper, high)
    order_by_id, descending = False, False
    if match["order"]:
        items = [_SOQL_ORDER.match(item.strip()) for item in match["order"].split(",")]
        if any(item is None for item in items) or len(items) > 2:
            raise _malformed(_SOQL_HELP)
        first = items[0]
        assert first is not None
        name = first["field"].lower()
        if name not in _SOQL_TIMES | {"id"} or (
            len(items) == 2 and (items[1] is None or items[1]["field"].lower() != "id")
        ):
            raise _malformed(_SOQL_HELP)
        order_by_id = name == "id"
        descending = (first["dir"] or "").upper() == "DESC"
    fields = [name.strip() for name in match["fields"].split(",")]
    if not all(fields):
        raise _malformed("empty field in the SELECT list")
    return _Soql(
        fields=fields,
        object_name=match["object"],
        lower=lower,
        upper=upper,
        order_by_id=order_by_id,
        descending=descending,
        limit=int(match["limit"]) if match["limit"] else None,
    )


def _soql_datetime(literal: str) -> datetime:
    try:
        moment = datetime.fromisoformat(literal)
    except ValueError:
        raise _malformed(f"invalid datetime literal {literal!r}") from None
    if moment.tzinfo is None:
        raise _malformed(f"datetime literal {literal!r} needs a time zone (Z)")
    return moment


def _salesforce_version(request: Request) -> str:
    version = str(request.path_params["version"])
    if not _SALESFORCE_VERSION.match(version):
        raise _ApiError(
            404,
            _provider_error(
                Provider.SALESFORCE, 404, "NOT_FOUND", "The requested resource does not exist"
            ),
        )
    return version


_SALESFORCE_VERSION = re.compile(r"^v\d{2}\.0$")


def _salesforce_fields(query: _Soql, sample: list[Record]) -> list[str]:
    """The SELECT list in the object's own spelling (field names are case-insensitive)."""
    if not sample:
        return query.fields
    by_lower = {name.lower(): name for name in sample[0].salesforce_values()}
    fields = []
    for name in query.fields:
        canonical = by_lower.get(name.lower())
        if canonical is None:
            raise _ApiError(
                400,
                _provider_error(
                    Provider.SALESFORCE,
                    400,
                    "INVALID_FIELD",
                    f"No such column {name!r} on entity {query.object_name!r}",
                ),
            )
        fields.append(canonical)
    return fields


def _salesforce_row(
    version: str, object_name: str, record: Record, fields: list[str]
) -> dict[str, Any]:
    values = record.salesforce_values()
    row: dict[str, Any] = {
        "attributes": {
            "type": object_name,
            "url": f"/services/data/{version}/sobjects/{object_name}/{record.id}",
        }
    }
    for name in fields:
        row[name] = values[name]
    return row


def _batch_size(request: Request) -> int:
    """Sforce-Query-Options: batchSize=N (the sandbox accepts any N from 1 to 2000)."""
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    if match is None:
        return SALESFORCE_BATCH_SIZE
    return max(1, min(SALESFORCE_BATCH_SIZE, int(match.group(1))))
