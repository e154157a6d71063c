import datetime

from ampmesh.events.v1 import envelope_pb2 as _envelope_pb2
from ampmesh.events.v1 import operation_events_pb2 as _operation_events_pb2
from ampmesh.workflows.v1 import object_target_pb2 as _object_target_pb2
from ampmesh.workflows.v1 import read_plan_pb2 as _read_plan_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadPageInput(_message.Message):
    __slots__ = ("meta", "target", "operation_id", "read_type", "cursor", "page_size", "max_pages", "plan")
    META_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    READ_TYPE_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_PAGES_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    target: _object_target_pb2.ObjectTarget
    operation_id: str
    read_type: _operation_events_pb2.ReadType
    cursor: _object_target_pb2.ReadCursor
    page_size: int
    max_pages: int
    plan: _read_plan_pb2.ReadPlan
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., target: _Optional[_Union[_object_target_pb2.ObjectTarget, _Mapping]] = ..., operation_id: _Optional[str] = ..., read_type: _Optional[_Union[_operation_events_pb2.ReadType, str]] = ..., cursor: _Optional[_Union[_object_target_pb2.ReadCursor, _Mapping]] = ..., page_size: _Optional[int] = ..., max_pages: _Optional[int] = ..., plan: _Optional[_Union[_read_plan_pb2.ReadPlan, _Mapping]] = ...) -> None: ...

class ReadPageOutput(_message.Message):
    __slots__ = ("cursor", "done", "record_count", "message_count", "payload_bytes", "max_modified_time", "records_estimated_total", "page_count")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_MODIFIED_TIME_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ESTIMATED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    cursor: _object_target_pb2.ReadCursor
    done: bool
    record_count: int
    message_count: int
    payload_bytes: int
    max_modified_time: _timestamp_pb2.Timestamp
    records_estimated_total: int
    page_count: int
    def __init__(self, cursor: _Optional[_Union[_object_target_pb2.ReadCursor, _Mapping]] = ..., done: _Optional[bool] = ..., record_count: _Optional[int] = ..., message_count: _Optional[int] = ..., payload_bytes: _Optional[int] = ..., max_modified_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., records_estimated_total: _Optional[int] = ..., page_count: _Optional[int] = ...) -> None: ...

class SaveReadWatermarkInput(_message.Message):
    __slots__ = ("meta", "target", "operation_id", "cursor")
    META_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    target: _object_target_pb2.ObjectTarget
    operation_id: str
    cursor: _object_target_pb2.ReadCursor
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., target: _Optional[_Union[_object_target_pb2.ObjectTarget, _Mapping]] = ..., operation_id: _Optional[str] = ..., cursor: _Optional[_Union[_object_target_pb2.ReadCursor, _Mapping]] = ...) -> None: ...
