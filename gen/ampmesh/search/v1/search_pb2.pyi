from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchRecordsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "group_ref", "query")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    group_ref: str
    query: SearchQuery
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., query: _Optional[_Union[SearchQuery, _Mapping]] = ...) -> None: ...

class SearchQuery(_message.Message):
    __slots__ = ("object_name", "field_filters")
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    FIELD_FILTERS_FIELD_NUMBER: _ClassVar[int]
    object_name: str
    field_filters: _containers.RepeatedCompositeFieldContainer[FieldFilter]
    def __init__(self, object_name: _Optional[str] = ..., field_filters: _Optional[_Iterable[_Union[FieldFilter, _Mapping]]] = ...) -> None: ...

class FieldFilter(_message.Message):
    __slots__ = ("field_name", "operator", "value")
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    field_name: str
    operator: str
    value: _struct_pb2.Value
    def __init__(self, field_name: _Optional[str] = ..., operator: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class SearchRecordsResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _containers.RepeatedCompositeFieldContainer[SearchResultEntry]
    def __init__(self, result: _Optional[_Iterable[_Union[SearchResultEntry, _Mapping]]] = ...) -> None: ...

class SearchResultEntry(_message.Message):
    __slots__ = ("fields", "mapped_fields", "raw")
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    MAPPED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    fields: _struct_pb2.Struct
    mapped_fields: _struct_pb2.Struct
    raw: _struct_pb2.Struct
    def __init__(self, fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., mapped_fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., raw: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
