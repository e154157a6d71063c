from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WriteRecordsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "object_name", "group_ref", "type", "mode", "retry_policy", "auto_batch_policy", "record", "batch_policy", "batch", "associations", "headers")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    RETRY_POLICY_FIELD_NUMBER: _ClassVar[int]
    AUTO_BATCH_POLICY_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    BATCH_POLICY_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATIONS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    object_name: str
    group_ref: str
    type: str
    mode: str
    retry_policy: WriteRetryPolicy
    auto_batch_policy: WriteAutoBatchPolicy
    record: _struct_pb2.Struct
    batch_policy: WriteBatchPolicy
    batch: _containers.RepeatedCompositeFieldContainer[WriteBatchItem]
    associations: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    headers: _containers.RepeatedCompositeFieldContainer[WriteHeader]
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., object_name: _Optional[str] = ..., group_ref: _Optional[str] = ..., type: _Optional[str] = ..., mode: _Optional[str] = ..., retry_policy: _Optional[_Union[WriteRetryPolicy, _Mapping]] = ..., auto_batch_policy: _Optional[_Union[WriteAutoBatchPolicy, _Mapping]] = ..., record: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., batch_policy: _Optional[_Union[WriteBatchPolicy, _Mapping]] = ..., batch: _Optional[_Iterable[_Union[WriteBatchItem, _Mapping]]] = ..., associations: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., headers: _Optional[_Iterable[_Union[WriteHeader, _Mapping]]] = ...) -> None: ...

class WriteRetryPolicy(_message.Message):
    __slots__ = ("deadline_hours",)
    DEADLINE_HOURS_FIELD_NUMBER: _ClassVar[int]
    deadline_hours: int
    def __init__(self, deadline_hours: _Optional[int] = ...) -> None: ...

class WriteAutoBatchPolicy(_message.Message):
    __slots__ = ("max_delay_minutes", "retry_deadline_hours")
    MAX_DELAY_MINUTES_FIELD_NUMBER: _ClassVar[int]
    RETRY_DEADLINE_HOURS_FIELD_NUMBER: _ClassVar[int]
    max_delay_minutes: int
    retry_deadline_hours: int
    def __init__(self, max_delay_minutes: _Optional[int] = ..., retry_deadline_hours: _Optional[int] = ...) -> None: ...

class WriteBatchPolicy(_message.Message):
    __slots__ = ("all_or_none",)
    ALL_OR_NONE_FIELD_NUMBER: _ClassVar[int]
    all_or_none: bool
    def __init__(self, all_or_none: _Optional[bool] = ...) -> None: ...

class WriteBatchItem(_message.Message):
    __slots__ = ("record", "associations")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATIONS_FIELD_NUMBER: _ClassVar[int]
    record: _struct_pb2.Struct
    associations: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    def __init__(self, record: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., associations: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ...) -> None: ...

class WriteHeader(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class WriteRecordsResponse(_message.Message):
    __slots__ = ("operation_id", "result", "results", "success_count", "failure_count", "errors", "warnings", "raw_response")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    RAW_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    result: WriteResult
    results: _containers.RepeatedCompositeFieldContainer[WriteResult]
    success_count: int
    failure_count: int
    errors: _containers.RepeatedCompositeFieldContainer[WriteIssue]
    warnings: _containers.RepeatedCompositeFieldContainer[WriteIssue]
    raw_response: str
    def __init__(self, operation_id: _Optional[str] = ..., result: _Optional[_Union[WriteResult, _Mapping]] = ..., results: _Optional[_Iterable[_Union[WriteResult, _Mapping]]] = ..., success_count: _Optional[int] = ..., failure_count: _Optional[int] = ..., errors: _Optional[_Iterable[_Union[WriteIssue, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[WriteIssue, _Mapping]]] = ..., raw_response: _Optional[str] = ...) -> None: ...

class WriteResult(_message.Message):
    __slots__ = ("success", "record_id", "data")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    success: bool
    record_id: str
    data: _struct_pb2.Struct
    def __init__(self, success: _Optional[bool] = ..., record_id: _Optional[str] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class WriteIssue(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...
