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

class TriggeredReadInput(_message.Message):
    __slots__ = ("meta", "target", "operation_id", "since", "until", "page_size", "resume", "plan")
    META_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    target: _object_target_pb2.ObjectTarget
    operation_id: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    page_size: int
    resume: _object_target_pb2.ReadCursor
    plan: _read_plan_pb2.ReadPlan
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., target: _Optional[_Union[_object_target_pb2.ObjectTarget, _Mapping]] = ..., operation_id: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., resume: _Optional[_Union[_object_target_pb2.ReadCursor, _Mapping]] = ..., plan: _Optional[_Union[_read_plan_pb2.ReadPlan, _Mapping]] = ...) -> None: ...

class TriggeredReadOutput(_message.Message):
    __slots__ = ("operation_id", "status", "cursor", "error")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    status: _operation_events_pb2.OperationStatus
    cursor: _object_target_pb2.ReadCursor
    error: str
    def __init__(self, operation_id: _Optional[str] = ..., status: _Optional[_Union[_operation_events_pb2.OperationStatus, str]] = ..., cursor: _Optional[_Union[_object_target_pb2.ReadCursor, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...
