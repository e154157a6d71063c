import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProviderEventBatch(_message.Message):
    __slots__ = ("provider", "project_id", "integration_id", "installation_id", "receive_time", "events")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    project_id: str
    integration_id: str
    installation_id: str
    receive_time: _timestamp_pb2.Timestamp
    events: _containers.RepeatedCompositeFieldContainer[ProviderEvent]
    def __init__(self, provider: _Optional[str] = ..., project_id: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., receive_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., events: _Optional[_Iterable[_Union[ProviderEvent, _Mapping]]] = ...) -> None: ...

class ProviderEvent(_message.Message):
    __slots__ = ("event_id", "account_id", "object_name", "record_id", "provider_event_type", "subscribe_event_type", "fields_updated", "raw_event", "occur_time", "values")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    RAW_EVENT_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    account_id: str
    object_name: str
    record_id: str
    provider_event_type: str
    subscribe_event_type: str
    fields_updated: _containers.RepeatedScalarFieldContainer[str]
    raw_event: _struct_pb2.Struct
    occur_time: _timestamp_pb2.Timestamp
    values: _struct_pb2.Struct
    def __init__(self, event_id: _Optional[str] = ..., account_id: _Optional[str] = ..., object_name: _Optional[str] = ..., record_id: _Optional[str] = ..., provider_event_type: _Optional[str] = ..., subscribe_event_type: _Optional[str] = ..., fields_updated: _Optional[_Iterable[str]] = ..., raw_event: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., values: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
