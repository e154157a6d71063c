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

class OpenReadInput(_message.Message):
    __slots__ = ("meta", "target", "operation_id", "read_type", "since", "until", "full_history", "page_size", "workflow_id", "workflow_run_id", "plan")
    META_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    READ_TYPE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    FULL_HISTORY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    target: _object_target_pb2.ObjectTarget
    operation_id: str
    read_type: _operation_events_pb2.ReadType
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    full_history: bool
    page_size: int
    workflow_id: str
    workflow_run_id: str
    plan: _read_plan_pb2.ReadPlan
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., target: _Optional[_Union[_object_target_pb2.ObjectTarget, _Mapping]] = ..., operation_id: _Optional[str] = ..., read_type: _Optional[_Union[_operation_events_pb2.ReadType, str]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., full_history: _Optional[bool] = ..., page_size: _Optional[int] = ..., workflow_id: _Optional[str] = ..., workflow_run_id: _Optional[str] = ..., plan: _Optional[_Union[_read_plan_pb2.ReadPlan, _Mapping]] = ...) -> None: ...

class OpenReadOutput(_message.Message):
    __slots__ = ("skip", "skip_reason", "cursor", "page_size", "plan")
    SKIP_FIELD_NUMBER: _ClassVar[int]
    SKIP_REASON_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    skip: bool
    skip_reason: str
    cursor: _object_target_pb2.ReadCursor
    page_size: int
    plan: _read_plan_pb2.ReadPlan
    def __init__(self, skip: _Optional[bool] = ..., skip_reason: _Optional[str] = ..., cursor: _Optional[_Union[_object_target_pb2.ReadCursor, _Mapping]] = ..., page_size: _Optional[int] = ..., plan: _Optional[_Union[_read_plan_pb2.ReadPlan, _Mapping]] = ...) -> None: ...

class CloseReadInput(_message.Message):
    __slots__ = ("meta", "target", "operation_id", "read_type", "status", "cursor", "error", "start_time", "finish_time", "schedule_id", "records_estimated_total", "plan")
    META_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    READ_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_ESTIMATED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    target: _object_target_pb2.ObjectTarget
    operation_id: str
    read_type: _operation_events_pb2.ReadType
    status: _operation_events_pb2.OperationStatus
    cursor: _object_target_pb2.ReadCursor
    error: str
    start_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    schedule_id: str
    records_estimated_total: int
    plan: _read_plan_pb2.ReadPlan
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., target: _Optional[_Union[_object_target_pb2.ObjectTarget, _Mapping]] = ..., operation_id: _Optional[str] = ..., read_type: _Optional[_Union[_operation_events_pb2.ReadType, str]] = ..., status: _Optional[_Union[_operation_events_pb2.OperationStatus, str]] = ..., cursor: _Optional[_Union[_object_target_pb2.ReadCursor, _Mapping]] = ..., error: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., schedule_id: _Optional[str] = ..., records_estimated_total: _Optional[int] = ..., plan: _Optional[_Union[_read_plan_pb2.ReadPlan, _Mapping]] = ...) -> None: ...

class CloseReadOutput(_message.Message):
    __slots__ = ("result", "schedule_paused")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_PAUSED_FIELD_NUMBER: _ClassVar[int]
    result: str
    schedule_paused: bool
    def __init__(self, result: _Optional[str] = ..., schedule_paused: _Optional[bool] = ...) -> None: ...

class ConfirmReadInput(_message.Message):
    __slots__ = ("meta", "target", "operation_id", "read_type", "plan", "give_up_time")
    META_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    READ_TYPE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    GIVE_UP_TIME_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    target: _object_target_pb2.ObjectTarget
    operation_id: str
    read_type: _operation_events_pb2.ReadType
    plan: _read_plan_pb2.ReadPlan
    give_up_time: _timestamp_pb2.Timestamp
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., target: _Optional[_Union[_object_target_pb2.ObjectTarget, _Mapping]] = ..., operation_id: _Optional[str] = ..., read_type: _Optional[_Union[_operation_events_pb2.ReadType, str]] = ..., plan: _Optional[_Union[_read_plan_pb2.ReadPlan, _Mapping]] = ..., give_up_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConfirmReadOutput(_message.Message):
    __slots__ = ("complete", "published", "recorded", "republished_pages", "error")
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    REPUBLISHED_PAGES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    complete: bool
    published: int
    recorded: int
    republished_pages: int
    error: str
    def __init__(self, complete: _Optional[bool] = ..., published: _Optional[int] = ..., recorded: _Optional[int] = ..., republished_pages: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
