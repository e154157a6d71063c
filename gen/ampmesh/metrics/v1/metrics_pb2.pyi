import datetime

from ampmesh.events.v1 import connection_events_pb2 as _connection_events_pb2
from ampmesh.events.v1 import operation_events_pb2 as _operation_events_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OperationCount(_message.Message):
    __slots__ = ("action_type", "status", "count", "p50_duration", "p99_duration")
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    P50_DURATION_FIELD_NUMBER: _ClassVar[int]
    P99_DURATION_FIELD_NUMBER: _ClassVar[int]
    action_type: _operation_events_pb2.ActionType
    status: _operation_events_pb2.OperationStatus
    count: int
    p50_duration: _duration_pb2.Duration
    p99_duration: _duration_pb2.Duration
    def __init__(self, action_type: _Optional[_Union[_operation_events_pb2.ActionType, str]] = ..., status: _Optional[_Union[_operation_events_pb2.OperationStatus, str]] = ..., count: _Optional[int] = ..., p50_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p99_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RecordCounts(_message.Message):
    __slots__ = ("read", "written", "write_failed", "delivered")
    READ_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    WRITE_FAILED_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    read: int
    written: int
    write_failed: int
    delivered: int
    def __init__(self, read: _Optional[int] = ..., written: _Optional[int] = ..., write_failed: _Optional[int] = ..., delivered: _Optional[int] = ...) -> None: ...

class DeliveryMetrics(_message.Message):
    __slots__ = ("succeeded", "failed", "outstanding", "attempts", "success_rate", "p50_latency", "p99_latency", "endpoints_disabled", "oldest_undelivered_age", "endpoints_disabled_now")
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    P50_LATENCY_FIELD_NUMBER: _ClassVar[int]
    P99_LATENCY_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_DISABLED_FIELD_NUMBER: _ClassVar[int]
    OLDEST_UNDELIVERED_AGE_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_DISABLED_NOW_FIELD_NUMBER: _ClassVar[int]
    succeeded: int
    failed: int
    outstanding: int
    attempts: int
    success_rate: float
    p50_latency: _duration_pb2.Duration
    p99_latency: _duration_pb2.Duration
    endpoints_disabled: int
    oldest_undelivered_age: _duration_pb2.Duration
    endpoints_disabled_now: int
    def __init__(self, succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., outstanding: _Optional[int] = ..., attempts: _Optional[int] = ..., success_rate: _Optional[float] = ..., p50_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., p99_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., endpoints_disabled: _Optional[int] = ..., oldest_undelivered_age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., endpoints_disabled_now: _Optional[int] = ...) -> None: ...

class ConnectionCount(_message.Message):
    __slots__ = ("status", "count", "provider")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    status: _connection_events_pb2.ConnectionStatus
    count: int
    provider: str
    def __init__(self, status: _Optional[_Union[_connection_events_pb2.ConnectionStatus, str]] = ..., count: _Optional[int] = ..., provider: _Optional[str] = ...) -> None: ...

class InstallationCount(_message.Message):
    __slots__ = ("integration_id", "count")
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    integration_id: str
    count: int
    def __init__(self, integration_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class TokenRefreshMetrics(_message.Message):
    __slots__ = ("succeeded", "failed")
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    succeeded: int
    failed: int
    def __init__(self, succeeded: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class ProxyCallCount(_message.Message):
    __slots__ = ("status_class", "count")
    STATUS_CLASS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    status_class: str
    count: int
    def __init__(self, status_class: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class DeadLetterMetrics(_message.Message):
    __slots__ = ("waiting", "recorded")
    WAITING_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    waiting: int
    recorded: int
    def __init__(self, waiting: _Optional[int] = ..., recorded: _Optional[int] = ...) -> None: ...

class ProjectMetrics(_message.Message):
    __slots__ = ("project_id", "start_time", "end_time", "operations", "records", "deliveries", "connections", "compute_time", "installations", "token_refreshes", "proxy_calls", "dead_letters")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_TIME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATIONS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_REFRESHES_FIELD_NUMBER: _ClassVar[int]
    PROXY_CALLS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    operations: _containers.RepeatedCompositeFieldContainer[OperationCount]
    records: RecordCounts
    deliveries: DeliveryMetrics
    connections: _containers.RepeatedCompositeFieldContainer[ConnectionCount]
    compute_time: _timestamp_pb2.Timestamp
    installations: _containers.RepeatedCompositeFieldContainer[InstallationCount]
    token_refreshes: TokenRefreshMetrics
    proxy_calls: _containers.RepeatedCompositeFieldContainer[ProxyCallCount]
    dead_letters: DeadLetterMetrics
    def __init__(self, project_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., operations: _Optional[_Iterable[_Union[OperationCount, _Mapping]]] = ..., records: _Optional[_Union[RecordCounts, _Mapping]] = ..., deliveries: _Optional[_Union[DeliveryMetrics, _Mapping]] = ..., connections: _Optional[_Iterable[_Union[ConnectionCount, _Mapping]]] = ..., compute_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., installations: _Optional[_Iterable[_Union[InstallationCount, _Mapping]]] = ..., token_refreshes: _Optional[_Union[TokenRefreshMetrics, _Mapping]] = ..., proxy_calls: _Optional[_Iterable[_Union[ProxyCallCount, _Mapping]]] = ..., dead_letters: _Optional[_Union[DeadLetterMetrics, _Mapping]] = ...) -> None: ...

class GetProjectMetricsRequest(_message.Message):
    __slots__ = ("project_id", "start_time", "end_time", "integration_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    integration_id: str
    def __init__(self, project_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., integration_id: _Optional[str] = ...) -> None: ...
