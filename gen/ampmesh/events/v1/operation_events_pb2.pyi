import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ActionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_TYPE_UNSPECIFIED: _ClassVar[ActionType]
    ACTION_TYPE_READ: _ClassVar[ActionType]
    ACTION_TYPE_WRITE: _ClassVar[ActionType]
    ACTION_TYPE_SUBSCRIBE: _ClassVar[ActionType]

class OperationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_STATUS_UNSPECIFIED: _ClassVar[OperationStatus]
    OPERATION_STATUS_IN_PROGRESS: _ClassVar[OperationStatus]
    OPERATION_STATUS_SUCCESS: _ClassVar[OperationStatus]
    OPERATION_STATUS_FAILURE: _ClassVar[OperationStatus]

class ReadType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_TYPE_UNSPECIFIED: _ClassVar[ReadType]
    READ_TYPE_BACKFILL: _ClassVar[ReadType]
    READ_TYPE_SCHEDULED: _ClassVar[ReadType]
    READ_TYPE_TRIGGERED: _ClassVar[ReadType]
ACTION_TYPE_UNSPECIFIED: ActionType
ACTION_TYPE_READ: ActionType
ACTION_TYPE_WRITE: ActionType
ACTION_TYPE_SUBSCRIBE: ActionType
OPERATION_STATUS_UNSPECIFIED: OperationStatus
OPERATION_STATUS_IN_PROGRESS: OperationStatus
OPERATION_STATUS_SUCCESS: OperationStatus
OPERATION_STATUS_FAILURE: OperationStatus
READ_TYPE_UNSPECIFIED: ReadType
READ_TYPE_BACKFILL: ReadType
READ_TYPE_SCHEDULED: ReadType
READ_TYPE_TRIGGERED: ReadType

class OperationRetry(_message.Message):
    __slots__ = ("attempts", "last_attempt_time", "last_notify_time")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_NOTIFY_TIME_FIELD_NUMBER: _ClassVar[int]
    attempts: int
    last_attempt_time: _timestamp_pb2.Timestamp
    last_notify_time: _timestamp_pb2.Timestamp
    def __init__(self, attempts: _Optional[int] = ..., last_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_notify_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OperationCounts(_message.Message):
    __slots__ = ("records_read", "records_published", "records_written", "records_failed", "pages", "records_estimated_total")
    RECORDS_READ_FIELD_NUMBER: _ClassVar[int]
    RECORDS_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    RECORDS_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FAILED_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ESTIMATED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    records_read: int
    records_published: int
    records_written: int
    records_failed: int
    pages: int
    records_estimated_total: int
    def __init__(self, records_read: _Optional[int] = ..., records_published: _Optional[int] = ..., records_written: _Optional[int] = ..., records_failed: _Optional[int] = ..., pages: _Optional[int] = ..., records_estimated_total: _Optional[int] = ...) -> None: ...

class OperationCreated(_message.Message):
    __slots__ = ("operation_id", "integration_id", "installation_id", "config_id", "connection_id", "action_type", "read_type", "objects", "workflow_id", "workflow_run_id", "since_time", "until_time", "create_time")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    READ_TYPE_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_TIME_FIELD_NUMBER: _ClassVar[int]
    UNTIL_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    integration_id: str
    installation_id: str
    config_id: str
    connection_id: str
    action_type: ActionType
    read_type: ReadType
    objects: _containers.RepeatedScalarFieldContainer[str]
    workflow_id: str
    workflow_run_id: str
    since_time: _timestamp_pb2.Timestamp
    until_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, operation_id: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., config_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., action_type: _Optional[_Union[ActionType, str]] = ..., read_type: _Optional[_Union[ReadType, str]] = ..., objects: _Optional[_Iterable[str]] = ..., workflow_id: _Optional[str] = ..., workflow_run_id: _Optional[str] = ..., since_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OperationProgress(_message.Message):
    __slots__ = ("operation_id", "sequence", "installation_id", "object_name", "counts", "retry")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    sequence: int
    installation_id: str
    object_name: str
    counts: OperationCounts
    retry: OperationRetry
    def __init__(self, operation_id: _Optional[str] = ..., sequence: _Optional[int] = ..., installation_id: _Optional[str] = ..., object_name: _Optional[str] = ..., counts: _Optional[_Union[OperationCounts, _Mapping]] = ..., retry: _Optional[_Union[OperationRetry, _Mapping]] = ...) -> None: ...

class OperationFinished(_message.Message):
    __slots__ = ("operation_id", "sequence", "installation_id", "action_type", "status", "result", "counts", "successful_record_ids", "errors", "retry", "finish_time", "duration")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    sequence: int
    installation_id: str
    action_type: ActionType
    status: OperationStatus
    result: str
    counts: OperationCounts
    successful_record_ids: _containers.RepeatedScalarFieldContainer[str]
    errors: _containers.RepeatedScalarFieldContainer[str]
    retry: OperationRetry
    finish_time: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    def __init__(self, operation_id: _Optional[str] = ..., sequence: _Optional[int] = ..., installation_id: _Optional[str] = ..., action_type: _Optional[_Union[ActionType, str]] = ..., status: _Optional[_Union[OperationStatus, str]] = ..., result: _Optional[str] = ..., counts: _Optional[_Union[OperationCounts, _Mapping]] = ..., successful_record_ids: _Optional[_Iterable[str]] = ..., errors: _Optional[_Iterable[str]] = ..., retry: _Optional[_Union[OperationRetry, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...
