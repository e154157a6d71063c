"""The rules a webhook destination must follow, in-process, under both deployments'
settings: the local mesh (loopback http allowed, private addresses not checked) and
production (https only, nothing that resolves to a private address). The end-to-end tests
(tests/e2e/test_destinations.py) cover the local mesh through the edge."""

from __future__ import annotations

import asyncio
import base64
import socket

import pytest
from ampmesh.platform.v1 import provider_apps_pb2

from services.api.context import ApiPolicy
from services.api.platform.destinations import (
    new_signing_key,
    type_problem,
    webhook_header_problems,
)
from services.api.platform.provider_apps import metadata_problems, provider_problem
from services.api.platform.topics import EVENT_TYPES, event_type_problem
from services.domain import webhook_urls
from services.domain.catalog import load_catalog
from services.domain.webhook_urls import Resolver, webhook_url_problem

PRODUCTION = ApiPolicy(allow_loopback_webhooks=False, refuse_private_destinations=True)
LOCAL_MESH = ApiPolicy(allow_loopback_webhooks=True, refuse_private_destinations=False)

# The reference's NotificationEventType enum.
REFERENCE_EVENT_TYPES = {
    "connection.created",
    "connection.error",
    "connection.refreshed",
    "connection.updated",
    "connection.deleted",
    "installation.created",
    "installation.updated",
    "installation.deleted",
    "read.schedule.paused",
    "read.backfill.done",
    "read.triggered.done",
    "read.triggered.error",
    "write.async.done",
    "subscribe.create.error",
    "destination.webhook.disabled",
}


def resolver(answers: dict[str, list[str]]) -> Resolver:
    """A resolver answering from a table (no DNS in tests); unknown names do not resolve."""

    async def resolve(host: str) -> list[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/amp",
        "https://hooks.example.com:8443/amp?x=1",
        "https://93.184.215.14/hook",
        "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
    ],
)
async def test_production_accepts_public_https(url: str) -> None:
    resolve = resolver({"hooks.example.com": ["93.184.215.14", "2606:2800:220:1::1"]})
    assert await webhook_url_problem(url, PRODUCTION, resolve) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "is required"),
        ("hooks.example.com/amp", "must be an absolute https:// URL"),
        ("/relative", "must be an absolute https:// URL"),
        ("ftp://hooks.example.com/amp", "must be an absolute https:// URL"),
        ("https://", "must be an absolute https:// URL"),
        ("https://hooks.example.com:99999/", "is not a valid URL"),
        ("https://hooks.example.com/a b", "must not contain spaces"),
        ("http://hooks.example.com/amp", "must use https://"),
        ("http://127.0.0.1:8080/amp", "must use https://"),
        ("https://127.0.0.1/amp", "127.0.0.1, a loopback address"),
        ("https://localhost/amp", "a loopback address"),
        ("https://10.1.2.3/amp", "a private address"),
        ("https://192.168.0.10/amp", "a private address"),
        ("https://100.64.0.1/amp", "a private address"),  # carrier-grade NAT
        ("https://169.254.169.254/latest/meta-data", "a link-local address"),
        ("https://[fe80::1]/amp", "a link-local address"),
        ("https://[fd00::1]/amp", "a private address"),
        ("https://[::ffff:10.0.0.1]/amp", "10.0.0.1, a private address"),
        ("https://0.0.0.0/amp", "a reserved address"),
        ("https://240.0.0.1/amp", "a reserved address"),
        ("https://internal.example.com/amp", "resolves to 10.0.0.7, a private address"),
        ("https://mixed.example.com/amp", "resolves to 172.16.0.1, a private address"),
        ("https://nowhere.example.com/amp", "does not resolve"),
    ],
)
async def test_production_refuses(url: str, expected: str) -> None:
    resolve = resolver(
        {
            "localhost": ["127.0.0.1", "::1"],
            "internal.example.com": ["10.0.0.7"],
            # One private address among public ones is enough to refuse.
            "mixed.example.com": ["93.184.215.14", "172.16.0.1"],
        }
    )
    problem = await webhook_url_problem(url, PRODUCTION, resolve)
    assert problem is not None and expected in problem


async def test_a_resolver_that_hangs_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_urls, "RESOLVE_TIMEOUT_SECONDS", 0.01)

    async def hang(host: str) -> list[str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    problem = await webhook_url_problem("https://slow.example.com/", PRODUCTION, hang)
    assert problem is not None and "did not resolve within" in problem


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000/hook", "http://[::1]:9000/hook", "http://localhost:9000/hook"],
)
async def test_the_local_mesh_allows_loopback_http(url: str) -> None:
    assert await webhook_url_problem(url, LOCAL_MESH, resolver({})) is None


async def test_the_local_mesh_still_refuses_http_elsewhere() -> None:
    problem = await webhook_url_problem("http://hooks.example.com/", LOCAL_MESH, resolver({}))
    assert problem is not None and "only to loopback hosts" in problem
    # A name that merely resolves to loopback is not a loopback host for http://.
    problem = await webhook_url_problem(
        "http://sneaky.example.com/", LOCAL_MESH, resolver({"sneaky.example.com": ["127.0.0.1"]})
    )
    assert problem is not None


async def test_loopback_allowed_with_private_refused_lets_only_loopback_through() -> None:
    both = ApiPolicy(allow_loopback_webhooks=True, refuse_private_destinations=True)
    resolve = resolver({"localhost": ["127.0.0.1"]})
    assert await webhook_url_problem("http://localhost:8080/", both, resolve) is None
    problem = await webhook_url_problem("https://10.0.0.1/", both, resolve)
    assert problem is not None and "a private address" in problem


def test_headers_refuse_what_the_sender_owns() -> None:
    problems = webhook_header_problems(
        {
            "Authorization": "Bearer 123",
            "X-Tenant": "acme",
            "Host": "evil.example.com",
            "content-length": "1",
            "Transfer-Encoding": "chunked",
            "Connection": "close",
            "Proxy-Authorization": "x",
            "webhook-signature": "v1,forged",
            "Webhook-Id": "msg_1",
            "WEBHOOK-TIMESTAMP": "0",
            "Bad Name": "x",
            "X-Injected": "a\r\nX-Other: b",
        },
        "body.metadata.headers",
    )
    assert set(problems) == {
        f"body.metadata.headers.{name}"
        for name in (
            "Host",
            "content-length",
            "Transfer-Encoding",
            "Connection",
            "Proxy-Authorization",
            "webhook-signature",
            "Webhook-Id",
            "WEBHOOK-TIMESTAMP",
            "Bad Name",
            "X-Injected",
        )
    }
    assert "signature" in problems["body.metadata.headers.webhook-signature"]
    assert webhook_header_problems({"Authorization": "Bearer 1", "X-A": "b"}, "h") == {}
    duplicated = webhook_header_problems({"X-A": "1", "x-a": "2"}, "h")
    assert list(duplicated) == ["h.x-a"]


def test_types_other_than_webhook_are_not_supported_yet() -> None:
    assert type_problem("webhook") is None
    kinesis = type_problem("kinesis")
    assert kinesis is not None and "'kinesis'" in kinesis and "not supported yet" in kinesis
    unknown = type_problem("carrier-pigeon")
    assert unknown is not None and "is not a destination type" in unknown
    assert type_problem("") is not None


def test_signing_keys_follow_standard_webhooks() -> None:
    key = new_signing_key()
    assert key.startswith("whsec_")
    assert len(base64.b64decode(key.removeprefix("whsec_"), validate=True)) == 32
    assert new_signing_key() != key


def test_event_types_are_the_references() -> None:
    assert set(EVENT_TYPES) == REFERENCE_EVENT_TYPES
    assert event_type_problem("read.backfill.done") is None
    problem = event_type_problem("read.backfill.finished")
    assert problem is not None and "read.backfill.done" in problem  # lists the valid ones


def test_provider_apps_need_an_oauth2_provider_of_the_catalog() -> None:
    catalog = load_catalog()
    assert provider_problem("salesforce", catalog) is None
    typo = provider_problem("salesforse", catalog)
    assert typo is not None and "did you mean 'salesforce'" in typo
    wrong_case = provider_problem("HubSpot", catalog)
    assert wrong_case is not None and "did you mean 'hubspot'" in wrong_case
    api_key_provider = next(name for name, p in catalog.items() if p.auth_type == "apiKey")
    refused = provider_problem(api_key_provider, catalog)
    assert refused is not None and "not OAuth2" in refused


def test_auth_query_params_hold_strings_only() -> None:
    metadata = provider_apps_pb2.ProviderAppMetadata()
    metadata.auth_query_params["optional_scope"].values.add().string_value = "a.read"
    assert metadata_problems(metadata, "body.metadata") == {}
    metadata.auth_query_params["prompt"].values.add().number_value = 1
    assert list(metadata_problems(metadata, "body.metadata")) == [
        "body.metadata.authQueryParams.prompt"
    ]
