"""envoy/request_guard.lua, run by Envoy: headers gRPC metadata cannot carry are refused
before the request goes anywhere, as problem+json (REST) or INVALID_ARGUMENT (gRPC).

The harness is a REST listener as the edge renders it (its local_reply_config, problem.lua
first, request_guard.lua next) in front of a route that answers 200 with x-reached, so a
refusal is seen to have stopped the request before the router. tests/e2e/test_edge_guard.py
checks the same through the whole mesh.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from services.launcher.cors import CorsSettings
from services.launcher.edge import LUA_FILTER, _fill
from tests.edge.harness import running_envoy

GUARD_FILTER = "envoy.filters.http.lua.request_guard"
BAD_NAME = "its name has characters gRPC metadata cannot carry (only a-z, 0-9, '-', '_' and '.')"
RESERVED = "names starting with 'grpc-' are reserved for the gRPC protocol"
NOT_BASE64 = "a header whose name ends in '-bin' must have a base64 value"
GRPC = {"content-type": "application/grpc"}


def _harness(port: int, admin: int, scripts: dict[str, Path]) -> dict[str, Any]:
    rest = _fill(
        "rest_listener.yaml.tmpl",
        name="guard",
        listen_host="127.0.0.1",
        port=port,
        routes=[],
        problem_lua=str(scripts["problem.lua"]),
        request_guard_lua=str(scripts["request_guard.lua"]),
        cors_lua=str(scripts["cors.lua"]),
        cors_policy=CorsSettings().policy(),
        unread_request_cors_headers=[],
        descriptor="unused",
        services=[],
        always_print_primitive_fields=True,
    )
    manager = rest["filter_chains"][0]["filters"][0]["typed_config"]
    # The edge's problem.lua and request_guard.lua (CORS is test_cors_config.py's), then
    # straight to a canned answer.
    filters = manager["http_filters"]
    kept = [f for f in filters if f["name"] in (LUA_FILTER, GUARD_FILTER)]
    assert [f["name"] for f in kept] == [LUA_FILTER, GUARD_FILTER]
    manager["http_filters"] = [*kept, filters[-1]]
    manager["route_config"]["virtual_hosts"][0]["routes"] = [
        {
            "match": {"prefix": "/"},
            "direct_response": {"status": 200, "body": {"inline_string": "{}"}},
            "response_headers_to_add": [{"header": {"key": "x-reached", "value": "yes"}}],
        }
    ]
    loopback = {"address": "127.0.0.1"}
    return {
        "admin": {"address": {"socket_address": {**loopback, "port_value": admin}}},
        "static_resources": {"listeners": [rest]},
    }


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    with running_envoy(tmp_path_factory.mktemp("guard-harness"), _harness) as (client, _):
        yield client


def refused(response: httpx.Response) -> dict[str, Any]:
    """The 400 problem the guard answers, checked for shape; nothing went past it."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "x-reached" not in response.headers
    problem: dict[str, Any] = response.json()
    assert set(problem) == {"type", "title", "status", "detail", "requestId", "issues"}
    assert (problem["type"], problem["title"], problem["status"]) == (
        "about:blank",
        "Bad Request",
        400,
    )
    assert problem["requestId"] == response.headers["x-request-id"]
    return problem


@pytest.mark.parametrize("char", list("~!$*^|&'+#%`"))
def test_a_name_grpc_cannot_carry_is_a_400_naming_the_header(
    guard: httpx.Client, char: str
) -> None:
    name = f"x{char}y"
    problem = refused(guard.get("/v1/providers", headers={name: "1"}))
    assert problem["detail"] == f"the request has a header the API cannot accept: {name}"
    assert problem["issues"] == [{"in": "header", "name": name, "detail": BAD_NAME}]


@pytest.mark.parametrize(
    ("name", "value"),
    [("grpc-timeout", "abc"), ("grpc-timeout", "5S"), ("grpc-encoding", "gzip"), ("grpc-x", "1")],
)
def test_a_rest_request_may_not_send_grpc_headers(
    guard: httpx.Client, name: str, value: str
) -> None:
    problem = refused(guard.get("/v1/providers", headers={name: value}))
    assert problem["issues"] == [{"in": "header", "name": name, "detail": RESERVED}]


# Each as gRPC's HPACK parser (Unbase64Loop) takes it: it refuses a 4n+1 length, characters
# outside the standard alphabet, and non-zero bits left over by a last partial group.
BASE64 = [
    ("", True),
    ("QQ", True),
    ("QQ==", True),
    ("QUI", True),
    ("QUI=", True),
    ("QUJD", True),
    ("AAAA/+8w", True),
    ("!!!", False),
    ("Q", False),
    ("QUJDR", False),
    ("QR", False),  # non-zero trailing bits: gRPC refuses, a lenient decoder would not
    ("QUJ", False),
    ("QQ=", False),
    ("QQ===", False),
    ("QU JD", False),
    ("QUJD_-", False),  # the URL-safe alphabet is not gRPC's
]


@pytest.mark.parametrize(("value", "ok"), BASE64)
def test_a_bin_header_passes_only_with_a_value_grpc_can_decode(
    guard: httpx.Client, value: str, ok: bool
) -> None:
    response = guard.get("/v1/providers", headers={"x-trace-bin": value})
    if ok:
        assert (response.status_code, response.headers.get("x-reached")) == (200, "yes")
    else:
        problem = refused(response)
        assert problem["issues"] == [{"in": "header", "name": "x-trace-bin", "detail": NOT_BASE64}]


def test_every_refused_header_is_listed(guard: httpx.Client) -> None:
    headers = [("x~y", "1"), ("x-api-key", "k"), ("grpc-timeout", "1S"), ("x-a-bin", "!")]
    problem = refused(guard.get("/v1/providers", headers=headers))
    assert problem["detail"] == (
        "the request has headers the API cannot accept: x~y, grpc-timeout, x-a-bin"
    )
    assert [(i["name"], i["detail"]) for i in problem["issues"]] == [
        ("x~y", BAD_NAME),
        ("grpc-timeout", RESERVED),
        ("x-a-bin", NOT_BASE64),
    ]


def test_ordinary_requests_pass_untouched(guard: httpx.Client) -> None:
    plain = {
        "x-api-key": "amp_live_abc.def",
        "authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig",
        "x-request-id": "client-chosen",
        "content-type": "application/json",
        "cookie": "a=1; b=2",
        "sec-fetch-mode": "cors",
        "sec-ch-ua": '"Chromium";v="124"',
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-proto": "https",
        "accept-language": "de-CH, en;q=0.5",
        "if-none-match": 'W/"1"',
        "x_underscored.dotted": "1",
        "x-amp-proxy-version": "1",
    }
    # Bytes >= 0x80 in a value (UTF-8 here): gRPC carries them.
    headers = [(k.encode(), v.encode()) for k, v in plain.items()] + [(b"x-note", "café".encode())]
    for method in ("GET", "POST", "DELETE"):
        response = guard.request(method, "/v1/providers", headers=headers, content=b"{}")
        assert (response.status_code, response.headers.get("x-reached")) == (200, "yes")
    # ?apiKey= and odd query strings are api_key.lua's and the transcoder's business.
    response = guard.get("/v1/x?apiKey=a%7Eb&q=~!$*")
    assert response.status_code == 200


def test_a_grpc_call_is_answered_as_grpc(guard: httpx.Client) -> None:
    response = guard.post(
        "/ampmesh.platform.v1.ProviderService/ListProviders",
        headers={**GRPC, "x~y": "1", "grpc-timeout": "soon", "grpc-status": "0"},
        content=b"\0\0\0\0\0",
    )
    assert response.status_code == 200
    assert "x-reached" not in response.headers
    assert response.headers["content-type"] == "application/grpc"
    assert response.headers["grpc-status"] == "3"  # INVALID_ARGUMENT
    assert unquote(response.headers["grpc-message"]) == (
        f"header x~y: {BAD_NAME}; "
        "header grpc-timeout: grpc-timeout must be 1 to 8 digits and a unit "
        "(H, M, S, m, u or n); "
        "header grpc-status: not a gRPC request header (names starting with 'grpc-' are "
        "reserved)"
    )
    assert response.content == b""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("grpc-timeout", "99999999n"),
        ("grpc-encoding", "gzip"),
        ("grpc-accept-encoding", "identity,deflate,gzip,zstd"),
        ("grpc-previous-rpc-attempts", "2"),
        ("grpc-trace-bin", "AAAA"),
        ("grpc-tags-bin", ""),
    ],
)
def test_a_grpc_call_may_send_the_grpc_headers_clients_send(
    guard: httpx.Client, name: str, value: str
) -> None:
    response = guard.post("/a.v1.S/M", headers={**GRPC, name: value}, content=b"\0\0\0\0\0")
    assert (response.status_code, response.headers.get("x-reached")) == (200, "yes")


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("grpc-encoding", "br", "grpc-encoding must be identity, gzip or deflate"),
        ("grpc-previous-rpc-attempts", "x", "grpc-previous-rpc-attempts must be a number"),
        ("grpc-trace-bin", "QR", NOT_BASE64),
    ],
)
def test_a_grpc_header_grpc_cannot_parse_is_invalid_argument(
    guard: httpx.Client, name: str, value: str, why: str
) -> None:
    response = guard.post("/a.v1.S/M", headers={**GRPC, name: value}, content=b"\0\0\0\0\0")
    assert (response.status_code, response.headers["grpc-status"]) == (200, "3")
    assert "x-reached" not in response.headers
    assert unquote(response.headers["grpc-message"]) == (f"header {name}: {why}")
