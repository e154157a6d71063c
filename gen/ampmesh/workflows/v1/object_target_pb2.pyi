import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectTarget(_message.Message):
    __slots__ = ("project_id", "integration_id", "installation_id", "connection_id", "provider", "object_name")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    integration_id: str
    installation_id: str
    connection_id: str
    provider: str
    object_name: str
    def __init__(self, project_id: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., provider: _Optional[str] = ..., object_name: _Optional[str] = ...) -> None: ...

class ReadCursor(_message.Message):
    __slots__ = ("since", "until", "page_token", "pages_done", "records_done", "max_modified_time")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PAGES_DONE_FIELD_NUMBER: _ClassVar[int]
    RECORDS_DONE_FIELD_NUMBER: _ClassVar[int]
    MAX_MODIFIED_TIME_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    page_token: str
    pages_done: int
    records_done: int
    max_modified_time: _timestamp_pb2.Timestamp
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_token: _Optional[str] = ..., pages_done: _Optional[int] = ..., records_done: _Optional[int] = ..., max_modified_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
