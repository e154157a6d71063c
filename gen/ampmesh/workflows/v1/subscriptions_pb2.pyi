from ampmesh.events.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SyncSubscriptionsInput(_message.Message):
    __slots__ = ("meta", "installation_id", "integration_id", "installation_deleted")
    META_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_DELETED_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    installation_id: str
    integration_id: str
    installation_deleted: bool
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., installation_id: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_deleted: _Optional[bool] = ...) -> None: ...

class SyncSubscriptionsResult(_message.Message):
    __slots__ = ("registered_objects", "removed_objects", "error")
    REGISTERED_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    REMOVED_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    registered_objects: _containers.RepeatedScalarFieldContainer[str]
    removed_objects: _containers.RepeatedScalarFieldContainer[str]
    error: str
    def __init__(self, registered_objects: _Optional[_Iterable[str]] = ..., removed_objects: _Optional[_Iterable[str]] = ..., error: _Optional[str] = ...) -> None: ...
