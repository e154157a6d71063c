import datetime

from ampmesh.events.v1 import backfill_progress_pb2 as _backfill_progress_pb2
from ampmesh.events.v1 import connection_events_pb2 as _connection_events_pb2
from ampmesh.events.v1 import log_entry_pb2 as _log_entry_pb2
from ampmesh.events.v1 import notifications_pb2 as _notifications_pb2
from ampmesh.events.v1 import operation_events_pb2 as _operation_events_pb2
from ampmesh.events.v1 import provider_events_pb2 as _provider_events_pb2
from ampmesh.events.v1 import read_result_pb2 as _read_result_pb2
from ampmesh.events.v1 import topics_pb2 as _topics_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventMeta(_message.Message):
    __slots__ = ("id", "type", "time", "project_id", "idempotency_key", "request_id", "traceparent", "tracestate", "source")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    TRACESTATE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    time: _timestamp_pb2.Timestamp
    project_id: str
    idempotency_key: str
    request_id: str
    traceparent: str
    tracestate: str
    source: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., project_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., request_id: _Optional[str] = ..., traceparent: _Optional[str] = ..., tracestate: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class Envelope(_message.Message):
    __slots__ = ("meta", "read_result_page", "operation_created", "operation_progress", "operation_finished", "backfill_progress", "log_entry", "connection_created", "connection_refreshed", "connection_updated", "connection_deleted", "connection_error", "notification", "provider_events")
    META_FIELD_NUMBER: _ClassVar[int]
    READ_RESULT_PAGE_FIELD_NUMBER: _ClassVar[int]
    OPERATION_CREATED_FIELD_NUMBER: _ClassVar[int]
    OPERATION_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FINISHED_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LOG_ENTRY_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_CREATED_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_REFRESHED_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_UPDATED_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_DELETED_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ERROR_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_EVENTS_FIELD_NUMBER: _ClassVar[int]
    meta: EventMeta
    read_result_page: _read_result_pb2.ReadResultPage
    operation_created: _operation_events_pb2.OperationCreated
    operation_progress: _operation_events_pb2.OperationProgress
    operation_finished: _operation_events_pb2.OperationFinished
    backfill_progress: _backfill_progress_pb2.BackfillProgress
    log_entry: _log_entry_pb2.LogEntry
    connection_created: _connection_events_pb2.ConnectionCreated
    connection_refreshed: _connection_events_pb2.ConnectionRefreshed
    connection_updated: _connection_events_pb2.ConnectionUpdated
    connection_deleted: _connection_events_pb2.ConnectionDeleted
    connection_error: _connection_events_pb2.ConnectionError
    notification: _notifications_pb2.Notification
    provider_events: _provider_events_pb2.ProviderEventBatch
    def __init__(self, meta: _Optional[_Union[EventMeta, _Mapping]] = ..., read_result_page: _Optional[_Union[_read_result_pb2.ReadResultPage, _Mapping]] = ..., operation_created: _Optional[_Union[_operation_events_pb2.OperationCreated, _Mapping]] = ..., operation_progress: _Optional[_Union[_operation_events_pb2.OperationProgress, _Mapping]] = ..., operation_finished: _Optional[_Union[_operation_events_pb2.OperationFinished, _Mapping]] = ..., backfill_progress: _Optional[_Union[_backfill_progress_pb2.BackfillProgress, _Mapping]] = ..., log_entry: _Optional[_Union[_log_entry_pb2.LogEntry, _Mapping]] = ..., connection_created: _Optional[_Union[_connection_events_pb2.ConnectionCreated, _Mapping]] = ..., connection_refreshed: _Optional[_Union[_connection_events_pb2.ConnectionRefreshed, _Mapping]] = ..., connection_updated: _Optional[_Union[_connection_events_pb2.ConnectionUpdated, _Mapping]] = ..., connection_deleted: _Optional[_Union[_connection_events_pb2.ConnectionDeleted, _Mapping]] = ..., connection_error: _Optional[_Union[_connection_events_pb2.ConnectionError, _Mapping]] = ..., notification: _Optional[_Union[_notifications_pb2.Notification, _Mapping]] = ..., provider_events: _Optional[_Union[_provider_events_pb2.ProviderEventBatch, _Mapping]] = ...) -> None: ...
