import datetime

from ampmesh.events.v1 import envelope_pb2 as _envelope_pb2
from ampmesh.workflows.v1 import object_target_pb2 as _object_target_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WriteType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WRITE_TYPE_UNSPECIFIED: _ClassVar[WriteType]
    WRITE_TYPE_CREATE: _ClassVar[WriteType]
    WRITE_TYPE_UPDATE: _ClassVar[WriteType]
    WRITE_TYPE_DELETE: _ClassVar[WriteType]
WRITE_TYPE_UNSPECIFIED: WriteType
WRITE_TYPE_CREATE: WriteType
WRITE_TYPE_UPDATE: WriteType
WRITE_TYPE_DELETE: WriteType

class AsyncWriteInput(_message.Message):
    __slots__ = ("meta", "target", "operation_id", "type", "records", "batch", "all_or_none", "retry_deadline", "headers", "shown_object_name")
    META_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    ALL_OR_NONE_FIELD_NUMBER: _ClassVar[int]
    RETRY_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    SHOWN_OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    target: _object_target_pb2.ObjectTarget
    operation_id: str
    type: WriteType
    records: _containers.RepeatedCompositeFieldContainer[WriteRecord]
    batch: bool
    all_or_none: bool
    retry_deadline: _timestamp_pb2.Timestamp
    headers: _containers.RepeatedCompositeFieldContainer[HttpHeader]
    shown_object_name: str
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., target: _Optional[_Union[_object_target_pb2.ObjectTarget, _Mapping]] = ..., operation_id: _Optional[str] = ..., type: _Optional[_Union[WriteType, str]] = ..., records: _Optional[_Iterable[_Union[WriteRecord, _Mapping]]] = ..., batch: _Optional[bool] = ..., all_or_none: _Optional[bool] = ..., retry_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., headers: _Optional[_Iterable[_Union[HttpHeader, _Mapping]]] = ..., shown_object_name: _Optional[str] = ...) -> None: ...

class WriteRecord(_message.Message):
    __slots__ = ("record", "associations", "record_id")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATIONS_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    record: _struct_pb2.Struct
    associations: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    record_id: str
    def __init__(self, record: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., associations: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., record_id: _Optional[str] = ...) -> None: ...

class HttpHeader(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: str
    def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class AsyncWriteOutput(_message.Message):
    __slots__ = ("operation_id", "success", "success_count", "failure_count", "results", "successful_record_ids", "errors")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILURE_COUNT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    success: bool
    success_count: int
    failure_count: int
    results: _containers.RepeatedCompositeFieldContainer[WriteRecordResult]
    successful_record_ids: _containers.RepeatedScalarFieldContainer[str]
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, operation_id: _Optional[str] = ..., success: _Optional[bool] = ..., success_count: _Optional[int] = ..., failure_count: _Optional[int] = ..., results: _Optional[_Iterable[_Union[WriteRecordResult, _Mapping]]] = ..., successful_record_ids: _Optional[_Iterable[str]] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...

class WriteRecordResult(_message.Message):
    __slots__ = ("index", "success", "record_id", "errors", "data")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    index: int
    success: bool
    record_id: str
    errors: _containers.RepeatedScalarFieldContainer[str]
    data: _struct_pb2.Struct
    def __init__(self, index: _Optional[int] = ..., success: _Optional[bool] = ..., record_id: _Optional[str] = ..., errors: _Optional[_Iterable[str]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class WriteBatcherInput(_message.Message):
    __slots__ = ("target", "type", "pending")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    target: _object_target_pb2.ObjectTarget
    type: WriteType
    pending: _containers.RepeatedCompositeFieldContainer[QueuedWrite]
    def __init__(self, target: _Optional[_Union[_object_target_pb2.ObjectTarget, _Mapping]] = ..., type: _Optional[_Union[WriteType, str]] = ..., pending: _Optional[_Iterable[_Union[QueuedWrite, _Mapping]]] = ...) -> None: ...

class ClaimWritesInput(_message.Message):
    __slots__ = ("batcher_id", "batch_key", "size", "regardless")
    BATCHER_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_KEY_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    REGARDLESS_FIELD_NUMBER: _ClassVar[int]
    batcher_id: str
    batch_key: str
    size: int
    regardless: bool
    def __init__(self, batcher_id: _Optional[str] = ..., batch_key: _Optional[str] = ..., size: _Optional[int] = ..., regardless: _Optional[bool] = ...) -> None: ...

class ClaimedWrites(_message.Message):
    __slots__ = ("writes", "waiting", "next_flush_time")
    WRITES_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    NEXT_FLUSH_TIME_FIELD_NUMBER: _ClassVar[int]
    writes: _containers.RepeatedCompositeFieldContainer[QueuedWrite]
    waiting: int
    next_flush_time: _timestamp_pb2.Timestamp
    def __init__(self, writes: _Optional[_Iterable[_Union[QueuedWrite, _Mapping]]] = ..., waiting: _Optional[int] = ..., next_flush_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class QueuedWrite(_message.Message):
    __slots__ = ("meta", "operation_id", "record", "flush_time", "retry_deadline", "shown_object_name")
    META_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    FLUSH_TIME_FIELD_NUMBER: _ClassVar[int]
    RETRY_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    SHOWN_OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    operation_id: str
    record: WriteRecord
    flush_time: _timestamp_pb2.Timestamp
    retry_deadline: _timestamp_pb2.Timestamp
    shown_object_name: str
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., operation_id: _Optional[str] = ..., record: _Optional[_Union[WriteRecord, _Mapping]] = ..., flush_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retry_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., shown_object_name: _Optional[str] = ...) -> None: ...
