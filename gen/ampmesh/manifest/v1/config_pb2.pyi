import datetime

from ampmesh.manifest.v1 import manifest_pb2 as _manifest_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Config(_message.Message):
    __slots__ = ("id", "revision_id", "create_time", "created_by", "content")
    ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    revision_id: str
    create_time: _timestamp_pb2.Timestamp
    created_by: str
    content: ConfigContent
    def __init__(self, id: _Optional[str] = ..., revision_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., content: _Optional[_Union[ConfigContent, _Mapping]] = ...) -> None: ...

class ConfigContent(_message.Message):
    __slots__ = ("provider", "read", "write", "subscribe", "proxy")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    PROXY_FIELD_NUMBER: _ClassVar[int]
    provider: str
    read: ReadConfig
    write: WriteConfig
    subscribe: SubscribeConfig
    proxy: ProxyConfig
    def __init__(self, provider: _Optional[str] = ..., read: _Optional[_Union[ReadConfig, _Mapping]] = ..., write: _Optional[_Union[WriteConfig, _Mapping]] = ..., subscribe: _Optional[_Union[SubscribeConfig, _Mapping]] = ..., proxy: _Optional[_Union[ProxyConfig, _Mapping]] = ...) -> None: ...

class ReadConfig(_message.Message):
    __slots__ = ("objects",)
    class ObjectsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ReadConfigObject
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ReadConfigObject, _Mapping]] = ...) -> None: ...
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.MessageMap[str, ReadConfigObject]
    def __init__(self, objects: _Optional[_Mapping[str, ReadConfigObject]] = ...) -> None: ...

class ReadConfigObject(_message.Message):
    __slots__ = ("object_name", "schedule", "disabled", "destination", "selected_fields", "selected_value_mappings", "dynamic_mappings_input", "selected_field_mappings", "selected_fields_auto", "backfill", "field_filters")
    class SelectedFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: bool
        def __init__(self, key: _Optional[str] = ..., value: _Optional[bool] = ...) -> None: ...
    class SelectedValueMappingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Struct
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
    class SelectedFieldMappingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    SELECTED_VALUE_MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_MAPPINGS_INPUT_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELD_MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELDS_AUTO_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    FIELD_FILTERS_FIELD_NUMBER: _ClassVar[int]
    object_name: str
    schedule: str
    disabled: bool
    destination: str
    selected_fields: _containers.ScalarMap[str, bool]
    selected_value_mappings: _containers.MessageMap[str, _struct_pb2.Struct]
    dynamic_mappings_input: _containers.RepeatedCompositeFieldContainer[DynamicMappingsInputEntry]
    selected_field_mappings: _containers.ScalarMap[str, str]
    selected_fields_auto: str
    backfill: BackfillConfig
    field_filters: _containers.RepeatedCompositeFieldContainer[ReadFilter]
    def __init__(self, object_name: _Optional[str] = ..., schedule: _Optional[str] = ..., disabled: _Optional[bool] = ..., destination: _Optional[str] = ..., selected_fields: _Optional[_Mapping[str, bool]] = ..., selected_value_mappings: _Optional[_Mapping[str, _struct_pb2.Struct]] = ..., dynamic_mappings_input: _Optional[_Iterable[_Union[DynamicMappingsInputEntry, _Mapping]]] = ..., selected_field_mappings: _Optional[_Mapping[str, str]] = ..., selected_fields_auto: _Optional[str] = ..., backfill: _Optional[_Union[BackfillConfig, _Mapping]] = ..., field_filters: _Optional[_Iterable[_Union[ReadFilter, _Mapping]]] = ...) -> None: ...

class DynamicMappingsInputEntry(_message.Message):
    __slots__ = ("map_to_name", "map_to_display_name", "prompt", "mapped_values", "field_name")
    MAP_TO_NAME_FIELD_NUMBER: _ClassVar[int]
    MAP_TO_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MAPPED_VALUES_FIELD_NUMBER: _ClassVar[int]
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    map_to_name: str
    map_to_display_name: str
    prompt: str
    mapped_values: _containers.RepeatedCompositeFieldContainer[DynamicMappingsInputMappedValue]
    field_name: str
    def __init__(self, map_to_name: _Optional[str] = ..., map_to_display_name: _Optional[str] = ..., prompt: _Optional[str] = ..., mapped_values: _Optional[_Iterable[_Union[DynamicMappingsInputMappedValue, _Mapping]]] = ..., field_name: _Optional[str] = ...) -> None: ...

class DynamicMappingsInputMappedValue(_message.Message):
    __slots__ = ("mapped_value", "mapped_display_value")
    MAPPED_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAPPED_DISPLAY_VALUE_FIELD_NUMBER: _ClassVar[int]
    mapped_value: str
    mapped_display_value: str
    def __init__(self, mapped_value: _Optional[str] = ..., mapped_display_value: _Optional[str] = ...) -> None: ...

class BackfillConfig(_message.Message):
    __slots__ = ("default_period", "field_filters")
    DEFAULT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    FIELD_FILTERS_FIELD_NUMBER: _ClassVar[int]
    default_period: _manifest_pb2.DefaultPeriod
    field_filters: _containers.RepeatedCompositeFieldContainer[ReadFilter]
    def __init__(self, default_period: _Optional[_Union[_manifest_pb2.DefaultPeriod, _Mapping]] = ..., field_filters: _Optional[_Iterable[_Union[ReadFilter, _Mapping]]] = ...) -> None: ...

class ReadFilter(_message.Message):
    __slots__ = ("field_name", "operator", "value")
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    field_name: str
    operator: str
    value: _struct_pb2.Value
    def __init__(self, field_name: _Optional[str] = ..., operator: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class WriteConfig(_message.Message):
    __slots__ = ("objects",)
    class ObjectsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: WriteConfigObject
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[WriteConfigObject, _Mapping]] = ...) -> None: ...
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.MessageMap[str, WriteConfigObject]
    def __init__(self, objects: _Optional[_Mapping[str, WriteConfigObject]] = ...) -> None: ...

class WriteConfigObject(_message.Message):
    __slots__ = ("object_name", "deletion_settings", "selected_value_defaults", "selected_field_settings")
    class SelectedValueDefaultsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    class SelectedFieldSettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FieldSetting
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FieldSetting, _Mapping]] = ...) -> None: ...
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    DELETION_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SELECTED_VALUE_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELD_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    object_name: str
    deletion_settings: DeletionSettings
    selected_value_defaults: _containers.MessageMap[str, _struct_pb2.Value]
    selected_field_settings: _containers.MessageMap[str, FieldSetting]
    def __init__(self, object_name: _Optional[str] = ..., deletion_settings: _Optional[_Union[DeletionSettings, _Mapping]] = ..., selected_value_defaults: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., selected_field_settings: _Optional[_Mapping[str, FieldSetting]] = ...) -> None: ...

class DeletionSettings(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...

class FieldSetting(_message.Message):
    __slots__ = ("default", "write_on_create", "write_on_update")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    WRITE_ON_CREATE_FIELD_NUMBER: _ClassVar[int]
    WRITE_ON_UPDATE_FIELD_NUMBER: _ClassVar[int]
    default: FieldSettingDefault
    write_on_create: str
    write_on_update: str
    def __init__(self, default: _Optional[_Union[FieldSettingDefault, _Mapping]] = ..., write_on_create: _Optional[str] = ..., write_on_update: _Optional[str] = ...) -> None: ...

class FieldSettingDefault(_message.Message):
    __slots__ = ("string_value", "integer_value", "boolean_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    INTEGER_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOLEAN_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    integer_value: int
    boolean_value: bool
    def __init__(self, string_value: _Optional[str] = ..., integer_value: _Optional[int] = ..., boolean_value: _Optional[bool] = ...) -> None: ...

class SubscribeConfig(_message.Message):
    __slots__ = ("objects",)
    class ObjectsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: SubscribeConfigObject
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[SubscribeConfigObject, _Mapping]] = ...) -> None: ...
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.MessageMap[str, SubscribeConfigObject]
    def __init__(self, objects: _Optional[_Mapping[str, SubscribeConfigObject]] = ...) -> None: ...

class SubscribeConfigObject(_message.Message):
    __slots__ = ("inherit_fields_and_mappings", "object_name", "destination", "create_event", "update_event", "delete_event", "other_events", "provider_options")
    INHERIT_FIELDS_AND_MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    CREATE_EVENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_EVENT_FIELD_NUMBER: _ClassVar[int]
    DELETE_EVENT_FIELD_NUMBER: _ClassVar[int]
    OTHER_EVENTS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    inherit_fields_and_mappings: bool
    object_name: str
    destination: str
    create_event: ConfigCreateEvent
    update_event: ConfigUpdateEvent
    delete_event: ConfigDeleteEvent
    other_events: _containers.RepeatedScalarFieldContainer[str]
    provider_options: SubscribeProviderOptions
    def __init__(self, inherit_fields_and_mappings: _Optional[bool] = ..., object_name: _Optional[str] = ..., destination: _Optional[str] = ..., create_event: _Optional[_Union[ConfigCreateEvent, _Mapping]] = ..., update_event: _Optional[_Union[ConfigUpdateEvent, _Mapping]] = ..., delete_event: _Optional[_Union[ConfigDeleteEvent, _Mapping]] = ..., other_events: _Optional[_Iterable[str]] = ..., provider_options: _Optional[_Union[SubscribeProviderOptions, _Mapping]] = ...) -> None: ...

class ConfigCreateEvent(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: str
    def __init__(self, enabled: _Optional[str] = ...) -> None: ...

class ConfigUpdateEvent(_message.Message):
    __slots__ = ("enabled", "watch_fields_auto", "required_watch_fields")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELDS_AUTO_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_WATCH_FIELDS_FIELD_NUMBER: _ClassVar[int]
    enabled: str
    watch_fields_auto: str
    required_watch_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, enabled: _Optional[str] = ..., watch_fields_auto: _Optional[str] = ..., required_watch_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class ConfigDeleteEvent(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: str
    def __init__(self, enabled: _Optional[str] = ...) -> None: ...

class SubscribeProviderOptions(_message.Message):
    __slots__ = ("quota_optimization",)
    QUOTA_OPTIMIZATION_FIELD_NUMBER: _ClassVar[int]
    quota_optimization: QuotaOptimizationConfig
    def __init__(self, quota_optimization: _Optional[_Union[QuotaOptimizationConfig, _Mapping]] = ...) -> None: ...

class QuotaOptimizationConfig(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...

class ProxyConfig(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...
