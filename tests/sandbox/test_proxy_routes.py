"""The sandbox's proxy-test routes (echo, download, upload under each provider's base URL)
as the API proxy's tests and benchmark use them: what they report of the request, the
token check and faults they share with the record APIs, the per-route request counts, and
that large bodies stream through the sandbox without it holding them."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import grpc
import httpx
import psutil
import pytest
from ampmesh.sandbox.v1 import sandbox_pb2

from tests.support.sandbox import (
    CONTACTS,
    HS,
    HS_TOKEN,
    SF,
    SF_TOKEN,
    SandboxProcess,
    bearer,
    client_token,
    duration,
    seed_records,
)

PROVIDERS = [("hubspot", HS, HS_TOKEN), ("salesforce", SF, SF_TOKEN)]
MIB = 1 << 20


async def _counters(sandbox: Any) -> Any:
    return await sandbox.GetCounters(sandbox_pb2.GetCountersRequest())


def _routes(counters: Any, provider: int) -> dict[str, int]:
    return dict(
        next(p for p in counters.providers if p.provider == provider).proxy_test_requests_by_route
    )


async def _inject(sandbox: Any, **fault: Any) -> Any:
    return await sandbox.InjectFault(
        sandbox_pb2.InjectFaultRequest(fault=sandbox_pb2.Fault(**fault))
    )


@pytest.mark.parametrize(("name", "provider", "token_path"), PROVIDERS)
async def test_echo_reports_the_request_as_received(
    sandbox: Any, http: httpx.AsyncClient, name: str, provider: int, token_path: str
) -> None:
    token = await client_token(http, token_path)
    path = f"/{name}/sandbox/echo/crm/v3/a%20b/c%2Fd"
    body = b"x" * 70_000 + b"\x00\xff"
    response = await http.request(
        "PATCH",
        path + "?q=1&q=2&x=%7E",
        content=body,
        headers=[
            ("Authorization", f"Bearer {token}"),
            ("X-Mixed-Case", "Value Kept"),
            ("x-twice", "one"),
            ("x-twice", "two"),
        ],
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    echoed = response.json()
    assert echoed["method"] == "PATCH"
    assert echoed["path"] == path
    assert echoed["query"] == "q=1&q=2&x=%7E"
    assert echoed["bodySha256"] == hashlib.sha256(body).hexdigest()
    assert echoed["bodyLength"] == len(body)
    headers = echoed["headers"]
    assert headers["x-mixed-case"] == "Value Kept"
    assert headers["x-twice"] == "one, two"
    assert headers["authorization"] == f"Bearer {token}"
    assert headers["content-length"] == str(len(body))

    # Without a trailing path, and with every method the proxy forwards.
    for method in ("GET", "POST", "PUT", "DELETE"):
        bare = await http.request(method, f"/{name}/sandbox/echo", headers=bearer(token))
        assert bare.status_code == 200
        assert bare.json()["method"] == method
        assert bare.json()["bodyLength"] == 0
        assert bare.json()["bodySha256"] == hashlib.sha256(b"").hexdigest()

    counters = await _counters(sandbox)
    assert _routes(counters, provider) == {"echo": 5}
    assert dict(counters.proxy_test_requests_by_route) == {"echo": 5}
    assert dict(counters.api_requests_by_status) == {200: 5}


@pytest.mark.parametrize(("name", "provider", "token_path"), PROVIDERS)
async def test_bad_or_missing_token_is_the_providers_401_and_still_counted(
    sandbox: Any, http: httpx.AsyncClient, name: str, provider: int, token_path: str
) -> None:
    other = HS_TOKEN if token_path == SF_TOKEN else SF_TOKEN
    wrong_provider = await client_token(http, other)
    responses = [
        await http.get(f"/{name}/sandbox/echo/x", headers=bearer("not-a-token")),
        await http.get(f"/{name}/sandbox/download", params={"bytes": "10"}),
        await http.post(f"/{name}/sandbox/upload", content=b"abc", headers=bearer(wrong_provider)),
    ]
    for response in responses:
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        body = response.json()
        if provider == HS:
            assert body["category"] == "INVALID_AUTHENTICATION"
        else:
            assert body[0]["errorCode"] == "INVALID_SESSION_ID"
    counters = await _counters(sandbox)
    assert _routes(counters, provider) == {"echo": 1, "download": 1, "upload": 1}
    assert dict(counters.api_requests_by_status) == {401: 3}


async def test_rate_limit_injected_on_echo_only(sandbox: Any, http: httpx.AsyncClient) -> None:
    await seed_records(sandbox, HS, "contacts", 1)
    token = await client_token(http)
    await _inject(
        sandbox,
        kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT,
        endpoint=sandbox_pb2.FAULT_ENDPOINT_PROXY_TEST,
        object_name="echo",
        retry_after=duration(5),
    )
    limited = await http.get("/hubspot/sandbox/echo/anything", headers=bearer(token))
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "5"
    assert limited.json()["category"] == "RATE_LIMITS"
    # The same fault spares the other proxy-test routes, the other provider's echo (a
    # Salesforce token there: the fault names no provider) and the record APIs.
    download = await http.get(
        "/hubspot/sandbox/download", params={"bytes": "3"}, headers=bearer(token)
    )
    assert download.status_code == 200
    upload = await http.put("/hubspot/sandbox/upload", content=b"abc", headers=bearer(token))
    assert upload.status_code == 200
    assert (await http.get(CONTACTS, headers=bearer(token))).status_code == 200
    sf_token = await client_token(http, SF_TOKEN)
    sf_echo = await http.get("/salesforce/sandbox/echo/x", headers=bearer(sf_token))
    assert sf_echo.status_code == 429
    assert sf_echo.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"

    counters = await _counters(sandbox)
    assert counters.faults_fired == 2
    assert _routes(counters, HS) == {"echo": 1, "download": 1, "upload": 1}
    assert _routes(counters, SF) == {"echo": 1}


async def test_record_faults_spare_the_proxy_test_routes_and_the_reverse(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    await seed_records(sandbox, HS, "contacts", 1)
    token = await client_token(http)
    await _inject(
        sandbox,
        kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
        endpoint=sandbox_pb2.FAULT_ENDPOINT_RECORDS,
        http_status=502,
    )
    assert (await http.get(CONTACTS, headers=bearer(token))).status_code == 502
    echo = await http.get("/hubspot/sandbox/echo/x", headers=bearer(token))
    assert echo.status_code == 200
    await sandbox.ClearFaults(sandbox_pb2.ClearFaultsRequest())
    await _inject(
        sandbox,
        kind=sandbox_pb2.FAULT_KIND_SERVER_ERROR,
        endpoint=sandbox_pb2.FAULT_ENDPOINT_PROXY_TEST,
        http_status=503,
        count=1,
    )
    assert (await http.get(CONTACTS, headers=bearer(token))).status_code == 200
    upload = await http.post("/hubspot/sandbox/upload", content=b"x", headers=bearer(token))
    assert upload.status_code == 503
    assert upload.json()["category"] == "INTERNAL_ERROR"
    again = await http.post("/hubspot/sandbox/upload", content=b"x", headers=bearer(token))
    assert again.status_code == 200


async def test_slow_and_expired_token_faults_reach_the_proxy_test_routes(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    token = await client_token(http)
    await sandbox.GetCounters(sandbox_pb2.GetCountersRequest(reset=True))
    await _inject(
        sandbox,
        kind=sandbox_pb2.FAULT_KIND_SLOW_RESPONSE,
        endpoint=sandbox_pb2.FAULT_ENDPOINT_PROXY_TEST,
        delay=duration(0.3),
        count=1,
    )
    assert (await http.get("/hubspot/sandbox/echo/x", headers=bearer(token))).status_code == 200
    counters = await _counters(sandbox)
    assert counters.api_latency.max.ToTimedelta().total_seconds() >= 0.3

    await _inject(
        sandbox,
        kind=sandbox_pb2.FAULT_KIND_EXPIRED_TOKEN,
        endpoint=sandbox_pb2.FAULT_ENDPOINT_PROXY_TEST,
        count=1,
    )
    expired = await http.get("/hubspot/sandbox/echo/x", headers=bearer(token))
    assert expired.status_code == 401
    assert "expired" in expired.json()["message"]


async def test_fault_endpoint_out_of_range_is_invalid_argument(sandbox: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _inject(
            sandbox,
            kind=sandbox_pb2.FAULT_KIND_RATE_LIMIT,
            endpoint=99,
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("size", [0, 1, 65_537, 5 * MIB + 123, 40 * MIB + 7], ids=lambda n: f"{n}B")
async def test_download_streams_n_bytes_with_their_digest(
    sandbox: Any, http: httpx.AsyncClient, size: int
) -> None:
    token = await client_token(http, SF_TOKEN)
    digest = hashlib.sha256()
    received = 0
    async with http.stream(
        "GET", "/salesforce/sandbox/download", params={"bytes": str(size)}, headers=bearer(token)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(size)
        assert response.headers["content-type"] == "application/octet-stream"
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert response.headers["x-sandbox-sha256"] == digest.hexdigest()
    assert _routes(await _counters(sandbox), SF) == {"download": 1}


async def test_download_content_is_not_a_short_cycle(sandbox: Any, http: httpx.AsyncClient) -> None:
    """A proxy that dropped or repeated a small piece would keep the length but must not
    keep the digest: the content does not repeat within 64 KiB."""
    token = await client_token(http)
    response = await http.get(
        "/hubspot/sandbox/download", params={"bytes": str(64 * 1024)}, headers=bearer(token)
    )
    content = response.content
    assert len(set(content[i : i + 32] for i in range(0, len(content), 32))) == 2048


@pytest.mark.parametrize("given", ["", "-1", "abc", str((1 << 30) + 1)])
async def test_download_size_out_of_range_is_a_clear_400(
    sandbox: Any, http: httpx.AsyncClient, given: str
) -> None:
    token = await client_token(http)
    params = {"bytes": given} if given else {}
    response = await http.get("/hubspot/sandbox/download", params=params, headers=bearer(token))
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert "1 GiB" in response.json()["message"]


async def test_the_largest_download_is_allowed(sandbox: Any, http: httpx.AsyncClient) -> None:
    token = await client_token(http)
    async with http.stream(
        "GET", "/hubspot/sandbox/download", params={"bytes": str(1 << 30)}, headers=bearer(token)
    ) as response:
        # Only the head is read: the limit is inclusive and answered without delay.
        assert response.status_code == 200
        assert response.headers["content-length"] == str(1 << 30)
        assert len(response.headers["x-sandbox-sha256"]) == 64


async def test_upload_of_a_chunked_body_is_hashed_as_it_arrives(
    sandbox: Any, http: httpx.AsyncClient
) -> None:
    token = await client_token(http, SF_TOKEN)
    pieces = [os.urandom(size) for size in (1, 300_000, MIB, 2 * MIB + 17, 5)]

    async def chunked() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    response = await http.post(
        "/salesforce/sandbox/upload", content=chunked(), headers=bearer(token)
    )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 200, response.text
    whole = b"".join(pieces)
    assert response.json() == {
        "bodySha256": hashlib.sha256(whole).hexdigest(),
        "bodyLength": len(whole),
    }
    with_length = await http.put("/salesforce/sandbox/upload", content=whole, headers=bearer(token))
    assert with_length.json()["bodyLength"] == len(whole)
    assert _routes(await _counters(sandbox), SF) == {"upload": 2}


def _sandbox_pid(sandbox_process: SandboxProcess) -> int:
    """The sandbox child of this test process: the one listening on its HTTP port."""
    port = urlsplit(sandbox_process.http_url).port
    for child in psutil.Process().children():
        try:
            listening = child.net_connections(kind="tcp")
        except psutil.Error:
            continue
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in listening):
            return child.pid
    raise AssertionError(f"no child process listens on port {port}")


async def test_a_200_mb_download_does_not_grow_the_sandbox(
    sandbox: Any, http: httpx.AsyncClient, sandbox_process: SandboxProcess
) -> None:
    process = psutil.Process(_sandbox_pid(sandbox_process))
    token = await client_token(http)
    size = 200 * MIB
    # Warm up what every download uses once (code paths, buffers), then measure.
    warm = await http.get("/hubspot/sandbox/download", params={"bytes": "1"}, headers=bearer(token))
    assert warm.status_code == 200
    before = process.memory_info().rss
    peak = before
    received = 0
    next_sample = 0
    async with http.stream(
        "GET", "/hubspot/sandbox/download", params={"bytes": str(size)}, headers=bearer(token)
    ) as response:
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received >= next_sample:
                peak = max(peak, process.memory_info().rss)
                next_sample += 10 * MIB
    after = process.memory_info().rss
    assert received == size
    assert max(peak, after) - before < 50 * MIB, (before, peak, after)
