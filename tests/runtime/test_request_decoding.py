"""Requests that cannot become their message, or carry a NUL in a string, are refused with
INVALID_ARGUMENT naming the field before any handler runs (runtime/request_decoding.py);
placeholders authenticate before answering UNIMPLEMENTED (runtime/unimplemented.py).

Over real sockets and mTLS: the bytes are sent as a client in another language could send
them (a generic call, no serializer), since Python's protobuf refuses to build them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from ampmesh.platform.v1 import (
    api_keys_pb2,
    connections_pb2,
    provider_apps_pb2,
    providers_pb2,
)
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2  # type: ignore[import-untyped, unused-ignore]
from prometheus_client import CollectorRegistry

from services.runtime.errors import status_from_error, unpack_details
from services.runtime.interceptors import RpcMetrics
from services.runtime.request_decoding import find_problem
from services.runtime.server import Service
from services.runtime.tls import ServiceCredentials
from services.runtime.unimplemented import unimplemented_service
from tests.support.probe import dial, serving

CredsFor = Callable[[str], ServiceCredentials]

PROVIDERS = "ampmesh.platform.v1.ProviderService"
GET_PROVIDER = f"/{PROVIDERS}/GetProvider"
CONNECTIONS = "ampmesh.platform.v1.ConnectionService"
CUSTOM_AUTH = f"/{CONNECTIONS}/CustomAuthConnect"
API_KEYS = "ampmesh.platform.v1.ApiKeyService"
CREATE_KEY = f"/{API_KEYS}/CreateApiKey"


def tag(number: int, wire_type: int) -> bytes:
    value, out = number << 3 | wire_type, bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def length_delimited(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return tag(number, 2) + bytes([len(payload)]) + payload


class Recorder:
    """Real handlers of three public methods, with the real generated deserializers,
    counting what reached them."""

    def __init__(self) -> None:
        self.reached: list[Any] = []

    async def answer(self, request: Any, context: Any) -> Any:
        self.reached.append(request)
        return providers_pb2.ProviderInfo(name="ok")

    def services(self) -> list[Service]:
        def service(name: str, method: str, request_type: Any) -> Service:
            handler = grpc.method_handlers_generic_handler(
                name,
                {
                    method: grpc.unary_unary_rpc_method_handler(
                        self.answer,
                        request_deserializer=request_type.FromString,
                        response_serializer=providers_pb2.ProviderInfo.SerializeToString,
                    )
                },
            )
            return Service.from_handler(name, handler)

        return [
            service(PROVIDERS, "GetProvider", providers_pb2.GetProviderRequest),
            service(CONNECTIONS, "CustomAuthConnect", connections_pb2.CustomAuthConnectRequest),
            service(API_KEYS, "CreateApiKey", api_keys_pb2.CreateApiKeyRequest),
        ]


async def refusal(channel: grpc.aio.Channel, method: str, data: bytes) -> tuple[str, list[Any]]:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await channel.unary_unary(method)(data, timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    status = status_from_error(refused.value)
    assert status is not None
    violations = [
        (v.field, v.description)
        for detail in unpack_details(status)
        if isinstance(detail, error_details_pb2.BadRequest)
        for v in detail.field_violations
    ]
    return refused.value.details(), violations


@pytest.mark.parametrize(
    ("method", "data", "field", "why"),
    [
        # GET /v1/providers/%FF: a path variable that is not UTF-8.
        (GET_PROVIDER, length_delimited(1, b"\xff"), "path.provider", "UTF-8"),
        # {"callbackParams": {"a": {"b": 1}}} as Envoy's transcoder writes it: the map
        # entry ends right after the value's tag (bytes seen on the live edge).
        (
            CUSTOM_AUTH,
            b"Z\x04\n\x01a\x12",
            "body.callbackParams",
            "must map each key to a string",
        ),
        # A NUL in a label, and in the second of a list of scopes (the body binds apiKey).
        (
            CREATE_KEY,
            length_delimited(1, b"p") + length_delimited(2, length_delimited(2, b"a\x00b")),
            "body.label",
            "NUL",
        ),
    ],
)
async def test_bad_requests_are_refused_naming_the_field_before_the_handler(
    server_creds: ServiceCredentials,
    creds_for: CredsFor,
    registry: CollectorRegistry,
    metrics: RpcMetrics,
    method: str,
    data: bytes,
    field: str,
    why: str,
) -> None:
    recorder = Recorder()
    async with (
        serving(server_creds, recorder.services(), metrics=metrics) as server,
        dial(server, creds_for("api")) as channel,
    ):
        message, violations = await refusal(channel, method, data)
    assert len(violations) == 1, violations
    assert violations[0][0] == field
    assert why in violations[0][1]
    assert field in message and "Unexpected" not in message and "DecodeError" not in message
    assert recorder.reached == []
    service, name = method.lstrip("/").split("/")
    labels = {
        "grpc_service": service,
        "grpc_method": name,
        "grpc_type": "unary",
        "grpc_code": "INVALID_ARGUMENT",
    }
    assert registry.get_sample_value("grpc_server_handled_total", labels) == 1


async def test_a_nul_in_a_list_is_named_with_its_index_and_good_requests_pass(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    recorder = Recorder()
    bad = api_keys_pb2.CreateApiKeyRequest(project_id_or_name="p")
    bad.api_key.scopes.extend(["full", "x\x00"])
    # Zero bytes that are not in a string (an empty string in a list, a packed zero) are
    # nobody's NUL: the request reaches its handler.
    good = api_keys_pb2.CreateApiKeyRequest(project_id_or_name="p")
    good.api_key.scopes.extend(["", "full"])
    async with (
        serving(server_creds, recorder.services()) as server,
        dial(server, creds_for("api")) as channel,
    ):
        _, violations = await refusal(channel, CREATE_KEY, bad.SerializeToString())
        assert violations == [
            ("body.scopes[1]", "contains a NUL character (U+0000), which no field accepts")
        ]
        answer = await channel.unary_unary(CREATE_KEY)(good.SerializeToString(), timeout=5)
    assert providers_pb2.ProviderInfo.FromString(answer).name == "ok"
    assert recorder.reached == [good]


def test_find_problem_reads_nested_messages_lists_and_maps() -> None:
    app = provider_apps_pb2.ProviderApp
    # Nothing wrong: packed numbers, unknown fields, nested Struct values with zeros.
    value = struct_pb2.Value(number_value=0.0)
    fine = struct_pb2.Struct(fields={"n": value, "s": struct_pb2.Value(string_value="")})
    assert find_problem(fine.SerializeToString(), struct_pb2.Struct.DESCRIPTOR) is None
    assert find_problem(tag(99, 0) + b"\x00", app.DESCRIPTOR) is None
    # A NUL deep inside a Struct: named by the map's path (key and value are the map's).
    deep = struct_pb2.Struct(fields={"k": struct_pb2.Value(string_value="a\x00")})
    assert find_problem(deep.SerializeToString(), struct_pb2.Struct.DESCRIPTOR) == (
        "fields.stringValue",
        "contains a NUL character (U+0000), which no field accepts",
    )
    # A number sent where a string belongs; bytes that stop mid-number.
    assert find_problem(tag(1, 0) + b"\x01", providers_pb2.GetProviderRequest.DESCRIPTOR) == (
        "provider",
        "must be a string, an object or a list",
    )
    assert find_problem(tag(99, 0) + b"\xff", providers_pb2.GetProviderRequest.DESCRIPTOR) == (
        "",
        "is not a valid message",
    )


async def test_placeholders_authenticate_before_answering_unimplemented(
    server_creds: ServiceCredentials, creds_for: CredsFor
) -> None:
    async def gate(context: Any) -> None:
        if ("x-api-key", "good") not in tuple(context.invocation_metadata()):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "this call needs an API key")

    placeholder = unimplemented_service(
        providers_pb2.DESCRIPTOR.services_by_name["ProviderService"], "not yet", gate
    )
    async with (
        serving(server_creds, [placeholder]) as server,
        dial(server, creds_for("api")) as channel,
    ):
        call = channel.unary_unary(GET_PROVIDER)
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await call(b"", timeout=5)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as known:
            await call(b"", timeout=5, metadata=(("x-api-key", "good"),))
        assert known.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert known.value.details() == f"{GET_PROVIDER} is not built yet: not yet"
