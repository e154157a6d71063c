import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operation(_message.Message):
    __slots__ = ("id", "project_id", "integration_id", "installation_id", "config_id", "action_type", "status", "result", "metadata", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    integration_id: str
    installation_id: str
    config_id: str
    action_type: str
    status: str
    result: str
    metadata: OperationMetadata
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., config_id: _Optional[str] = ..., action_type: _Optional[str] = ..., status: _Optional[str] = ..., result: _Optional[str] = ..., metadata: _Optional[_Union[OperationMetadata, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OperationMetadata(_message.Message):
    __slots__ = ("objects", "retry", "progress", "successful_record_ids", "trace_id")
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedScalarFieldContainer[str]
    retry: OperationRetry
    progress: OperationProgress
    successful_record_ids: _containers.RepeatedScalarFieldContainer[str]
    trace_id: str
    def __init__(self, objects: _Optional[_Iterable[str]] = ..., retry: _Optional[_Union[OperationRetry, _Mapping]] = ..., progress: _Optional[_Union[OperationProgress, _Mapping]] = ..., successful_record_ids: _Optional[_Iterable[str]] = ..., trace_id: _Optional[str] = ...) -> None: ...

class OperationRetry(_message.Message):
    __slots__ = ("attempts", "last_attempt", "last_notified")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LAST_NOTIFIED_FIELD_NUMBER: _ClassVar[int]
    attempts: int
    last_attempt: _timestamp_pb2.Timestamp
    last_notified: _timestamp_pb2.Timestamp
    def __init__(self, attempts: _Optional[int] = ..., last_attempt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_notified: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OperationProgress(_message.Message):
    __slots__ = ("installation_id", "object_name", "operation_id", "records_processed", "records_estimated_total")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ESTIMATED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    object_name: str
    operation_id: str
    records_processed: int
    records_estimated_total: int
    def __init__(self, installation_id: _Optional[str] = ..., object_name: _Optional[str] = ..., operation_id: _Optional[str] = ..., records_processed: _Optional[int] = ..., records_estimated_total: _Optional[int] = ...) -> None: ...

class BackfillProgress(_message.Message):
    __slots__ = ("installation_id", "object_name", "operation_id", "records_processed", "records_estimated_total", "create_time", "update_time")
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_PROCESSED_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ESTIMATED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    installation_id: str
    object_name: str
    operation_id: str
    records_processed: int
    records_estimated_total: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, installation_id: _Optional[str] = ..., object_name: _Optional[str] = ..., operation_id: _Optional[str] = ..., records_processed: _Optional[int] = ..., records_estimated_total: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Log(_message.Message):
    __slots__ = ("timestamp", "severity", "message")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    timestamp: _timestamp_pb2.Timestamp
    severity: str
    message: LogMessage
    def __init__(self, timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., severity: _Optional[str] = ..., message: _Optional[_Union[LogMessage, _Mapping]] = ...) -> None: ...

class LogMessage(_message.Message):
    __slots__ = ("msg", "error", "operation_id", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MSG_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    msg: str
    error: str
    operation_id: str
    details: _containers.ScalarMap[str, str]
    def __init__(self, msg: _Optional[str] = ..., error: _Optional[str] = ..., operation_id: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ...) -> None: ...

class PaginationInfo(_message.Message):
    __slots__ = ("done", "next_page_token")
    DONE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    done: bool
    next_page_token: str
    def __init__(self, done: _Optional[bool] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListOperationsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "installation_id", "page_size", "page_token")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    installation_id: str
    page_size: int
    page_token: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOperationsResponse(_message.Message):
    __slots__ = ("results", "pagination")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    PAGINATION_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[Operation]
    pagination: PaginationInfo
    def __init__(self, results: _Optional[_Iterable[_Union[Operation, _Mapping]]] = ..., pagination: _Optional[_Union[PaginationInfo, _Mapping]] = ...) -> None: ...

class GetBackfillProgressRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "installation_id", "object_name")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    installation_id: str
    object_name: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., object_name: _Optional[str] = ...) -> None: ...

class GetOperationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "operation_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    operation_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., operation_id: _Optional[str] = ...) -> None: ...

class ListOperationLogsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "operation_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    operation_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., operation_id: _Optional[str] = ...) -> None: ...

class ListOperationLogsResponse(_message.Message):
    __slots__ = ("logs",)
    LOGS_FIELD_NUMBER: _ClassVar[int]
    logs: _containers.RepeatedCompositeFieldContainer[Log]
    def __init__(self, logs: _Optional[_Iterable[_Union[Log, _Mapping]]] = ...) -> None: ...
