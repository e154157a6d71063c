import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Provider(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROVIDER_UNSPECIFIED: _ClassVar[Provider]
    PROVIDER_HUBSPOT: _ClassVar[Provider]
    PROVIDER_SALESFORCE: _ClassVar[Provider]

class FaultKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAULT_KIND_UNSPECIFIED: _ClassVar[FaultKind]
    FAULT_KIND_RATE_LIMIT: _ClassVar[FaultKind]
    FAULT_KIND_SERVER_ERROR: _ClassVar[FaultKind]
    FAULT_KIND_SLOW_RESPONSE: _ClassVar[FaultKind]
    FAULT_KIND_EXPIRED_TOKEN: _ClassVar[FaultKind]
    FAULT_KIND_REVOKED_TOKEN: _ClassVar[FaultKind]
    FAULT_KIND_DROP_CONNECTION: _ClassVar[FaultKind]
    FAULT_KIND_DUPLICATE_EVENT: _ClassVar[FaultKind]
    FAULT_KIND_REORDER_EVENTS: _ClassVar[FaultKind]
    FAULT_KIND_BAD_SIGNATURE: _ClassVar[FaultKind]
    FAULT_KIND_STALE_TIMESTAMP: _ClassVar[FaultKind]

class FaultEndpoint(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAULT_ENDPOINT_UNSPECIFIED: _ClassVar[FaultEndpoint]
    FAULT_ENDPOINT_TOKEN: _ClassVar[FaultEndpoint]
    FAULT_ENDPOINT_REVOKE: _ClassVar[FaultEndpoint]
    FAULT_ENDPOINT_RECORDS: _ClassVar[FaultEndpoint]
    FAULT_ENDPOINT_PROXY_TEST: _ClassVar[FaultEndpoint]
    FAULT_ENDPOINT_WRITES: _ClassVar[FaultEndpoint]
    FAULT_ENDPOINT_WEBHOOKS: _ClassVar[FaultEndpoint]
    FAULT_ENDPOINT_SUBSCRIPTIONS: _ClassVar[FaultEndpoint]

class ResetScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESET_SCOPE_UNSPECIFIED: _ClassVar[ResetScope]
    RESET_SCOPE_RECORDS: _ClassVar[ResetScope]
    RESET_SCOPE_FAULTS: _ClassVar[ResetScope]
    RESET_SCOPE_COUNTERS: _ClassVar[ResetScope]
    RESET_SCOPE_TOKENS: _ClassVar[ResetScope]
    RESET_SCOPE_SUBSCRIPTIONS: _ClassVar[ResetScope]
PROVIDER_UNSPECIFIED: Provider
PROVIDER_HUBSPOT: Provider
PROVIDER_SALESFORCE: Provider
FAULT_KIND_UNSPECIFIED: FaultKind
FAULT_KIND_RATE_LIMIT: FaultKind
FAULT_KIND_SERVER_ERROR: FaultKind
FAULT_KIND_SLOW_RESPONSE: FaultKind
FAULT_KIND_EXPIRED_TOKEN: FaultKind
FAULT_KIND_REVOKED_TOKEN: FaultKind
FAULT_KIND_DROP_CONNECTION: FaultKind
FAULT_KIND_DUPLICATE_EVENT: FaultKind
FAULT_KIND_REORDER_EVENTS: FaultKind
FAULT_KIND_BAD_SIGNATURE: FaultKind
FAULT_KIND_STALE_TIMESTAMP: FaultKind
FAULT_ENDPOINT_UNSPECIFIED: FaultEndpoint
FAULT_ENDPOINT_TOKEN: FaultEndpoint
FAULT_ENDPOINT_REVOKE: FaultEndpoint
FAULT_ENDPOINT_RECORDS: FaultEndpoint
FAULT_ENDPOINT_PROXY_TEST: FaultEndpoint
FAULT_ENDPOINT_WRITES: FaultEndpoint
FAULT_ENDPOINT_WEBHOOKS: FaultEndpoint
FAULT_ENDPOINT_SUBSCRIPTIONS: FaultEndpoint
RESET_SCOPE_UNSPECIFIED: ResetScope
RESET_SCOPE_RECORDS: ResetScope
RESET_SCOPE_FAULTS: ResetScope
RESET_SCOPE_COUNTERS: ResetScope
RESET_SCOPE_TOKENS: ResetScope
RESET_SCOPE_SUBSCRIPTIONS: ResetScope

class ProviderEndpoints(_message.Message):
    __slots__ = ("provider", "catalog_name", "base_url", "authorize_url", "token_url", "revoke_url")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CATALOG_NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZE_URL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_URL_FIELD_NUMBER: _ClassVar[int]
    REVOKE_URL_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    catalog_name: str
    base_url: str
    authorize_url: str
    token_url: str
    revoke_url: str
    def __init__(self, provider: _Optional[_Union[Provider, str]] = ..., catalog_name: _Optional[str] = ..., base_url: _Optional[str] = ..., authorize_url: _Optional[str] = ..., token_url: _Optional[str] = ..., revoke_url: _Optional[str] = ...) -> None: ...

class OAuthClient(_message.Message):
    __slots__ = ("client_id", "client_secret", "redirect_uris", "grant_types", "app_id", "developer_api_key")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_URIS_FIELD_NUMBER: _ClassVar[int]
    GRANT_TYPES_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    DEVELOPER_API_KEY_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    client_secret: str
    redirect_uris: _containers.RepeatedScalarFieldContainer[str]
    grant_types: _containers.RepeatedScalarFieldContainer[str]
    app_id: str
    developer_api_key: str
    def __init__(self, client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., redirect_uris: _Optional[_Iterable[str]] = ..., grant_types: _Optional[_Iterable[str]] = ..., app_id: _Optional[str] = ..., developer_api_key: _Optional[str] = ...) -> None: ...

class TestUser(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class SandboxInfo(_message.Message):
    __slots__ = ("providers", "clients", "users", "access_token_lifetime", "rotates_refresh_tokens")
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_LIFETIME_FIELD_NUMBER: _ClassVar[int]
    ROTATES_REFRESH_TOKENS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[ProviderEndpoints]
    clients: _containers.RepeatedCompositeFieldContainer[OAuthClient]
    users: _containers.RepeatedCompositeFieldContainer[TestUser]
    access_token_lifetime: _duration_pb2.Duration
    rotates_refresh_tokens: bool
    def __init__(self, providers: _Optional[_Iterable[_Union[ProviderEndpoints, _Mapping]]] = ..., clients: _Optional[_Iterable[_Union[OAuthClient, _Mapping]]] = ..., users: _Optional[_Iterable[_Union[TestUser, _Mapping]]] = ..., access_token_lifetime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., rotates_refresh_tokens: _Optional[bool] = ...) -> None: ...

class Fault(_message.Message):
    __slots__ = ("id", "kind", "endpoint", "provider", "object_name", "grant_type", "client_id", "skip", "count", "duration", "http_status", "retry_after", "delay", "fired", "create_time", "expire_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    GRANT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    FIRED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: FaultKind
    endpoint: FaultEndpoint
    provider: Provider
    object_name: str
    grant_type: str
    client_id: str
    skip: int
    count: int
    duration: _duration_pb2.Duration
    http_status: int
    retry_after: _duration_pb2.Duration
    delay: _duration_pb2.Duration
    fired: int
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[FaultKind, str]] = ..., endpoint: _Optional[_Union[FaultEndpoint, str]] = ..., provider: _Optional[_Union[Provider, str]] = ..., object_name: _Optional[str] = ..., grant_type: _Optional[str] = ..., client_id: _Optional[str] = ..., skip: _Optional[int] = ..., count: _Optional[int] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., http_status: _Optional[int] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., fired: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProviderCounters(_message.Message):
    __slots__ = ("provider", "token_requests_by_grant_type", "api_requests_by_status", "token_requests_by_status", "proxy_test_requests_by_route", "write_requests_by_route", "records_written", "write_batch_sizes", "passthrough_headers", "webhook_requests_by_status", "webhook_events_delivered")
    class TokenRequestsByGrantTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ApiRequestsByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class TokenRequestsByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class ProxyTestRequestsByRouteEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class WriteRequestsByRouteEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class WriteBatchSizesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class PassthroughHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class WebhookRequestsByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REQUESTS_BY_GRANT_TYPE_FIELD_NUMBER: _ClassVar[int]
    API_REQUESTS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REQUESTS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    PROXY_TEST_REQUESTS_BY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    WRITE_REQUESTS_BY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    WRITE_BATCH_SIZES_FIELD_NUMBER: _ClassVar[int]
    PASSTHROUGH_HEADERS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_REQUESTS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_EVENTS_DELIVERED_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    token_requests_by_grant_type: _containers.ScalarMap[str, int]
    api_requests_by_status: _containers.ScalarMap[int, int]
    token_requests_by_status: _containers.ScalarMap[int, int]
    proxy_test_requests_by_route: _containers.ScalarMap[str, int]
    write_requests_by_route: _containers.ScalarMap[str, int]
    records_written: int
    write_batch_sizes: _containers.ScalarMap[int, int]
    passthrough_headers: _containers.ScalarMap[str, int]
    webhook_requests_by_status: _containers.ScalarMap[int, int]
    webhook_events_delivered: int
    def __init__(self, provider: _Optional[_Union[Provider, str]] = ..., token_requests_by_grant_type: _Optional[_Mapping[str, int]] = ..., api_requests_by_status: _Optional[_Mapping[int, int]] = ..., token_requests_by_status: _Optional[_Mapping[int, int]] = ..., proxy_test_requests_by_route: _Optional[_Mapping[str, int]] = ..., write_requests_by_route: _Optional[_Mapping[str, int]] = ..., records_written: _Optional[int] = ..., write_batch_sizes: _Optional[_Mapping[int, int]] = ..., passthrough_headers: _Optional[_Mapping[str, int]] = ..., webhook_requests_by_status: _Optional[_Mapping[int, int]] = ..., webhook_events_delivered: _Optional[int] = ...) -> None: ...

class LatencySummary(_message.Message):
    __slots__ = ("count", "p50", "p99", "max")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    count: int
    p50: _duration_pb2.Duration
    p99: _duration_pb2.Duration
    max: _duration_pb2.Duration
    def __init__(self, count: _Optional[int] = ..., p50: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p99: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Counters(_message.Message):
    __slots__ = ("token_requests_by_grant_type", "api_requests_by_status", "providers", "faults_fired", "token_endpoint_latency", "api_latency", "start_time", "proxy_test_requests_by_route", "write_requests_by_route", "records_written", "write_batch_sizes", "passthrough_headers", "webhook_requests_by_status", "webhook_events_delivered")
    class TokenRequestsByGrantTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ApiRequestsByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class ProxyTestRequestsByRouteEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class WriteRequestsByRouteEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class WriteBatchSizesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    class PassthroughHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class WebhookRequestsByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    TOKEN_REQUESTS_BY_GRANT_TYPE_FIELD_NUMBER: _ClassVar[int]
    API_REQUESTS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    FAULTS_FIRED_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ENDPOINT_LATENCY_FIELD_NUMBER: _ClassVar[int]
    API_LATENCY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    PROXY_TEST_REQUESTS_BY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    WRITE_REQUESTS_BY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    WRITE_BATCH_SIZES_FIELD_NUMBER: _ClassVar[int]
    PASSTHROUGH_HEADERS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_REQUESTS_BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_EVENTS_DELIVERED_FIELD_NUMBER: _ClassVar[int]
    token_requests_by_grant_type: _containers.ScalarMap[str, int]
    api_requests_by_status: _containers.ScalarMap[int, int]
    providers: _containers.RepeatedCompositeFieldContainer[ProviderCounters]
    faults_fired: int
    token_endpoint_latency: LatencySummary
    api_latency: LatencySummary
    start_time: _timestamp_pb2.Timestamp
    proxy_test_requests_by_route: _containers.ScalarMap[str, int]
    write_requests_by_route: _containers.ScalarMap[str, int]
    records_written: int
    write_batch_sizes: _containers.ScalarMap[int, int]
    passthrough_headers: _containers.ScalarMap[str, int]
    webhook_requests_by_status: _containers.ScalarMap[int, int]
    webhook_events_delivered: int
    def __init__(self, token_requests_by_grant_type: _Optional[_Mapping[str, int]] = ..., api_requests_by_status: _Optional[_Mapping[int, int]] = ..., providers: _Optional[_Iterable[_Union[ProviderCounters, _Mapping]]] = ..., faults_fired: _Optional[int] = ..., token_endpoint_latency: _Optional[_Union[LatencySummary, _Mapping]] = ..., api_latency: _Optional[_Union[LatencySummary, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., proxy_test_requests_by_route: _Optional[_Mapping[str, int]] = ..., write_requests_by_route: _Optional[_Mapping[str, int]] = ..., records_written: _Optional[int] = ..., write_batch_sizes: _Optional[_Mapping[int, int]] = ..., passthrough_headers: _Optional[_Mapping[str, int]] = ..., webhook_requests_by_status: _Optional[_Mapping[int, int]] = ..., webhook_events_delivered: _Optional[int] = ...) -> None: ...

class GetSandboxInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SeedRecordsRequest(_message.Message):
    __slots__ = ("provider", "object_name", "count", "seed", "modified_from", "modified_until", "replace")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_FROM_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    object_name: str
    count: int
    seed: int
    modified_from: _timestamp_pb2.Timestamp
    modified_until: _timestamp_pb2.Timestamp
    replace: bool
    def __init__(self, provider: _Optional[_Union[Provider, str]] = ..., object_name: _Optional[str] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ..., modified_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., modified_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., replace: _Optional[bool] = ...) -> None: ...

class SeedRecordsResponse(_message.Message):
    __slots__ = ("created", "total", "first_id", "last_id")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    FIRST_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ID_FIELD_NUMBER: _ClassVar[int]
    created: int
    total: int
    first_id: str
    last_id: str
    def __init__(self, created: _Optional[int] = ..., total: _Optional[int] = ..., first_id: _Optional[str] = ..., last_id: _Optional[str] = ...) -> None: ...

class TouchRecordsRequest(_message.Message):
    __slots__ = ("provider", "object_name", "ids", "count", "seed", "modify_time")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODIFY_TIME_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    object_name: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    count: int
    seed: int
    modify_time: _timestamp_pb2.Timestamp
    def __init__(self, provider: _Optional[_Union[Provider, str]] = ..., object_name: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ..., modify_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TouchRecordsResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ("scopes",)
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    scopes: _containers.RepeatedScalarFieldContainer[ResetScope]
    def __init__(self, scopes: _Optional[_Iterable[_Union[ResetScope, str]]] = ...) -> None: ...

class InjectFaultRequest(_message.Message):
    __slots__ = ("fault",)
    FAULT_FIELD_NUMBER: _ClassVar[int]
    fault: Fault
    def __init__(self, fault: _Optional[_Union[Fault, _Mapping]] = ...) -> None: ...

class ListFaultsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFaultsResponse(_message.Message):
    __slots__ = ("faults",)
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    faults: _containers.RepeatedCompositeFieldContainer[Fault]
    def __init__(self, faults: _Optional[_Iterable[_Union[Fault, _Mapping]]] = ...) -> None: ...

class ClearFaultsRequest(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ClearFaultsResponse(_message.Message):
    __slots__ = ("cleared",)
    CLEARED_FIELD_NUMBER: _ClassVar[int]
    cleared: int
    def __init__(self, cleared: _Optional[int] = ...) -> None: ...

class GetCountersRequest(_message.Message):
    __slots__ = ("reset",)
    RESET_FIELD_NUMBER: _ClassVar[int]
    reset: bool
    def __init__(self, reset: _Optional[bool] = ...) -> None: ...

class DeleteRecordsRequest(_message.Message):
    __slots__ = ("provider", "object_name", "ids", "count", "seed")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    object_name: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    count: int
    seed: int
    def __init__(self, provider: _Optional[_Union[Provider, str]] = ..., object_name: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class DeleteRecordsResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListWebhookSubscriptionsRequest(_message.Message):
    __slots__ = ("provider",)
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    def __init__(self, provider: _Optional[_Union[Provider, str]] = ...) -> None: ...

class WebhookSubscription(_message.Message):
    __slots__ = ("provider", "id", "app_id", "account_id", "object_name", "event_type", "property_name", "target_url", "active")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_URL_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    provider: Provider
    id: str
    app_id: str
    account_id: str
    object_name: str
    event_type: str
    property_name: str
    target_url: str
    active: bool
    def __init__(self, provider: _Optional[_Union[Provider, str]] = ..., id: _Optional[str] = ..., app_id: _Optional[str] = ..., account_id: _Optional[str] = ..., object_name: _Optional[str] = ..., event_type: _Optional[str] = ..., property_name: _Optional[str] = ..., target_url: _Optional[str] = ..., active: _Optional[bool] = ...) -> None: ...

class ListWebhookSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions",)
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[WebhookSubscription]
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[WebhookSubscription, _Mapping]]] = ...) -> None: ...

class FlushWebhooksRequest(_message.Message):
    __slots__ = ("timeout",)
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    timeout: _duration_pb2.Duration
    def __init__(self, timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class FlushWebhooksResponse(_message.Message):
    __slots__ = ("delivered", "abandoned", "pending")
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    ABANDONED_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    delivered: int
    abandoned: int
    pending: int
    def __init__(self, delivered: _Optional[int] = ..., abandoned: _Optional[int] = ..., pending: _Optional[int] = ...) -> None: ...
