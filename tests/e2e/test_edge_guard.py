"""Headers gRPC metadata cannot carry, through the whole mesh: every public listener refuses
them before the api sees the request (envoy/request_guard.lua), where the api's gRPC core
used to answer 500 "Illegal header key" or "Error parsing ... metadata".

"Never reached the api" is read from the api's own per-method counters
(grpc_server_handled_total): a refused request leaves them as they were.
tests/edge/test_request_guard.py covers each rule against canned responses.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import grpc
import httpx
import pytest
from ampmesh.platform.v1 import providers_pb2, providers_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

# One route of each REST surface, and the method it reaches on the api.
SURFACE_REQUESTS = {
    "api": ("GET", "/v1/providers", "ListProviders"),
    "read": ("POST", "/v1/projects/p/integrations/i/objects/contacts", "TriggerRead"),
    "write": ("POST", "/v1/projects/p/integrations/i/objects/contacts", "WriteRecords"),
    "search": ("POST", "/v1/projects/p/integrations/i", "SearchRecords"),
}
# Not the proxy host: a call's other headers go to the provider over HTTP, not to a gRPC
# service, and the caller's own proxy headers are checked by proxy.lua (test_proxy.py).
# Legal HTTP, not gRPC: each was a 500 from the api (or, for grpc-x, reached its handler).
BAD_HEADERS = [("x~y", "1"), ("x-foo-bin", "!!!"), ("grpc-timeout", "abc"), ("grpc-x", "1")]


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


async def handled(http: httpx.AsyncClient, stack: Stack) -> dict[str, float]:
    """The api's count of handled calls per method, whatever their code."""
    text = (await http.get(stack.endpoints["api-metrics"])).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "grpc_server_handled":
            continue
        for sample in family.samples:
            if sample.name == "grpc_server_handled_total":
                method = sample.labels["grpc_method"]
                counts[method] = counts.get(method, 0.0) + sample.value
    return counts


def problem_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["requestId"] == response.headers["x-request-id"]
    assert not [h for h in response.headers if h.startswith("grpc-")]
    return problem


@pytest.mark.parametrize("surface", list(SURFACE_REQUESTS))
async def test_every_rest_listener_refuses_headers_grpc_cannot_carry(
    stack: Stack, http: httpx.AsyncClient, surface: str
) -> None:
    verb, path, method = SURFACE_REQUESTS[surface]
    url = f"{stack.endpoints[surface]}{path}"
    before = await handled(http, stack)
    for name, value in BAD_HEADERS:
        response = await http.request(verb, url, headers={name: value}, json={})
        problem = problem_of(response)
        assert problem["title"] == "Bad Request"
        assert problem["detail"] == f"the request has a header the API cannot accept: {name}"
        ((where, named),) = [(i["in"], i["name"]) for i in problem["issues"]]
        assert (where, named) == ("header", name)
    both = await http.request(verb, url, headers=BAD_HEADERS, json={})
    assert [i["name"] for i in problem_of(both)["issues"]] == [n for n, _ in BAD_HEADERS]
    after = await handled(http, stack)
    assert after.get(method, 0.0) == before.get(method, 0.0)  # the api never saw them


async def test_a_refused_bin_header_leaves_later_requests_alone(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    # gRPC remembers a -bin value it could not decode against the header's name on the
    # upstream connection, and failed later, valid values of that header too.
    url = f"{stack.endpoints['api']}/v1/providers"
    for _ in range(3):
        problem = problem_of(await http.get(url, headers={"x-trace-bin": "QR"}))
        assert problem["issues"][0]["name"] == "x-trace-bin"
    for value in ("QQ", "QQ==", "QUJD", "QUI", "") * 4:
        response = await http.get(url, headers={"x-trace-bin": value})
        assert response.status_code == 200, (value, response.text)


async def test_ordinary_headers_still_pass(stack: Stack, http: httpx.AsyncClient) -> None:
    plain = {
        "x-api-key": stack.admin_api_key,
        "x-request-id": "client-chosen-id",
        "content-type": "application/json",
        "accept": "application/json",
        "accept-language": "de-CH, en;q=0.5",
        "cookie": "session=abc; theme=dark",
        "sec-fetch-mode": "cors",
        "sec-fetch-site": "same-origin",
        "sec-ch-ua": '"Chromium";v="124"',
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-proto": "https",
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "if-none-match": 'W/"1"',
        "cache-control": "no-cache",
        "x_underscored.dotted": "1",
        "x-trace-bin": "QUJD",
    }
    # Bytes >= 0x80 in a value (UTF-8 here): gRPC carries them.
    headers = [(k.encode(), v.encode()) for k, v in plain.items()] + [(b"x-note", "café".encode())]
    api = stack.endpoints["api"]
    listing = await http.get(f"{api}/v1/providers", headers=headers)
    assert listing.status_code == 200, listing.text
    assert "salesforce" in listing.json()
    one = await http.get(f"{api}/v1/providers/salesforce", headers=headers)
    assert one.status_code == 200, one.text


async def test_the_grpc_listener_answers_invalid_argument(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    before = await handled(http, stack)
    async with grpc.aio.insecure_channel(stack.endpoints["grpc"]) as channel:
        stub = providers_pb2_grpc.ProviderServiceStub(channel)
        request = providers_pb2.ListProvidersRequest()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListProviders(request, metadata=[("grpc-x", "1")], timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details() == (
            "header grpc-x: not a gRPC request header (names starting with 'grpc-' are reserved)"
        )
        assert (await handled(http, stack)).get("ListProviders") == before.get("ListProviders")
        # A gRPC client's own grpc- headers, and ordinary metadata, still pass.
        listing = await stub.ListProviders(
            request,
            metadata=[("x-api-key", stack.admin_api_key), ("x-trace-bin", b"\x00\xff")],
            timeout=10,
            compression=grpc.Compression.Gzip,
        )
        assert "salesforce" in listing.providers


def _curl_http2() -> str:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed (a raw HTTP/2 client: gRPC clients refuse such names)")
    version = subprocess.run([curl, "--version"], capture_output=True, text=True, check=False)  # noqa: S603
    if "HTTP2" not in version.stdout:
        pytest.skip("this curl has no HTTP/2")
    return curl


async def test_the_grpc_listener_refuses_names_a_raw_http2_client_sends(stack: Stack) -> None:
    curl = _curl_http2()
    url = f"http://{stack.endpoints['grpc']}/ampmesh.platform.v1.ProviderService/ListProviders"
    # No body: the answer comes while the request is complete, so curl never races it.
    command = [curl, "-sS", "-D", "-", "-o", "/dev/null", "--http2-prior-knowledge", "-X", "POST"]
    command += ["-H", "content-type: application/grpc", "-H", "x~y: 1", url]
    done = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=30, check=False
    )
    headers = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert headers.get("grpc-status") == "3", done.stdout + done.stderr
    assert unquote(headers["grpc-message"]).startswith(
        "header x~y: its name has characters gRPC metadata cannot carry"
    )


@pytest.mark.parametrize("surface", ["api", "search"])
async def test_a_transfer_encoding_the_edge_cannot_read_is_the_clients_fault(
    stack: Stack, surface: str
) -> None:
    # Envoy's HTTP/1.1 codec answers an unknown Transfer-Encoding (here: empty) with 501,
    # which clients read as "not built"; it is a 400 problem+json naming the header.
    url = httpx.URL(stack.endpoints[surface])
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(
            b"GET /v1/providers HTTP/1.1\r\nHost: edge\r\nTransfer-Encoding: \r\n"
            b"Connection: close\r\n\r\n"
        )
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"application/problem+json" in head.lower()
    assert b"Transfer-Encoding is not supported" in body
