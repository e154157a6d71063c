from ampmesh.manifest.v1 import manifest_pb2 as _manifest_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadPlan(_message.Message):
    __slots__ = ("config_id", "integration_name", "object_name", "mapped_name", "declared", "disabled", "schedule", "backfill", "page_size", "destination_name", "destination_id", "selection")
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    MAPPED_NAME_FIELD_NUMBER: _ClassVar[int]
    DECLARED_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    config_id: str
    integration_name: str
    object_name: str
    mapped_name: str
    declared: bool
    disabled: bool
    schedule: str
    backfill: _manifest_pb2.DefaultPeriod
    page_size: int
    destination_name: str
    destination_id: str
    selection: ReadSelection
    def __init__(self, config_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., object_name: _Optional[str] = ..., mapped_name: _Optional[str] = ..., declared: _Optional[bool] = ..., disabled: _Optional[bool] = ..., schedule: _Optional[str] = ..., backfill: _Optional[_Union[_manifest_pb2.DefaultPeriod, _Mapping]] = ..., page_size: _Optional[int] = ..., destination_name: _Optional[str] = ..., destination_id: _Optional[str] = ..., selection: _Optional[_Union[ReadSelection, _Mapping]] = ...) -> None: ...

class ReadSelection(_message.Message):
    __slots__ = ("all_fields", "fields", "mappings", "value_mappings", "requested_fields")
    ALL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    VALUE_MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    all_fields: bool
    fields: _containers.RepeatedScalarFieldContainer[str]
    mappings: _containers.RepeatedCompositeFieldContainer[FieldMapping]
    value_mappings: _containers.RepeatedCompositeFieldContainer[ValueMapping]
    requested_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, all_fields: _Optional[bool] = ..., fields: _Optional[_Iterable[str]] = ..., mappings: _Optional[_Iterable[_Union[FieldMapping, _Mapping]]] = ..., value_mappings: _Optional[_Iterable[_Union[ValueMapping, _Mapping]]] = ..., requested_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class FieldMapping(_message.Message):
    __slots__ = ("map_to_name", "field_name")
    MAP_TO_NAME_FIELD_NUMBER: _ClassVar[int]
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    map_to_name: str
    field_name: str
    def __init__(self, map_to_name: _Optional[str] = ..., field_name: _Optional[str] = ...) -> None: ...

class ValueMapping(_message.Message):
    __slots__ = ("field", "values")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field: str
    values: _containers.ScalarMap[str, str]
    def __init__(self, field: _Optional[str] = ..., values: _Optional[_Mapping[str, str]] = ...) -> None: ...
