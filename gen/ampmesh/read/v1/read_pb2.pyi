import datetime

from ampmesh.edge.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TriggerReadRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "object_name", "group_ref", "mode", "since_timestamp", "until_timestamp")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SINCE_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    UNTIL_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    object_name: str
    group_ref: str
    mode: str
    since_timestamp: _timestamp_pb2.Timestamp
    until_timestamp: _timestamp_pb2.Timestamp
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., object_name: _Optional[str] = ..., group_ref: _Optional[str] = ..., mode: _Optional[str] = ..., since_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TriggerReadResponse(_message.Message):
    __slots__ = ("operation_id",)
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    def __init__(self, operation_id: _Optional[str] = ...) -> None: ...

class PauseReadsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "installation_id", "objects", "note")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    installation_id: str
    objects: _containers.RepeatedScalarFieldContainer[str]
    note: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., objects: _Optional[_Iterable[str]] = ..., note: _Optional[str] = ...) -> None: ...

class UnpauseReadsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "installation_id", "objects", "note")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    installation_id: str
    objects: _containers.RepeatedScalarFieldContainer[str]
    note: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., objects: _Optional[_Iterable[str]] = ..., note: _Optional[str] = ...) -> None: ...

class DeliverResultsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "object_name", "group_ref", "pages")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    object_name: str
    group_ref: str
    pages: int
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., object_name: _Optional[str] = ..., group_ref: _Optional[str] = ..., pages: _Optional[int] = ...) -> None: ...
