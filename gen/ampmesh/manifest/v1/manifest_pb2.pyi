from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Manifest(_message.Message):
    __slots__ = ("spec_version", "integrations")
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    INTEGRATIONS_FIELD_NUMBER: _ClassVar[int]
    spec_version: str
    integrations: _containers.RepeatedCompositeFieldContainer[Integration]
    def __init__(self, spec_version: _Optional[str] = ..., integrations: _Optional[_Iterable[_Union[Integration, _Mapping]]] = ...) -> None: ...

class Integration(_message.Message):
    __slots__ = ("name", "display_name", "provider", "module", "read", "write", "subscribe", "proxy", "watch_schema")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    PROXY_FIELD_NUMBER: _ClassVar[int]
    WATCH_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    provider: str
    module: str
    read: IntegrationRead
    write: IntegrationWrite
    subscribe: IntegrationSubscribe
    proxy: IntegrationProxy
    watch_schema: WatchSchema
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., provider: _Optional[str] = ..., module: _Optional[str] = ..., read: _Optional[_Union[IntegrationRead, _Mapping]] = ..., write: _Optional[_Union[IntegrationWrite, _Mapping]] = ..., subscribe: _Optional[_Union[IntegrationSubscribe, _Mapping]] = ..., proxy: _Optional[_Union[IntegrationProxy, _Mapping]] = ..., watch_schema: _Optional[_Union[WatchSchema, _Mapping]] = ...) -> None: ...

class IntegrationRead(_message.Message):
    __slots__ = ("objects",)
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[IntegrationReadObject]
    def __init__(self, objects: _Optional[_Iterable[_Union[IntegrationReadObject, _Mapping]]] = ...) -> None: ...

class IntegrationReadObject(_message.Message):
    __slots__ = ("object_name", "destination", "schedule", "map_to_name", "map_to_display_name", "required_fields", "optional_fields", "optional_fields_auto", "backfill", "delivery", "enabled")
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    MAP_TO_NAME_FIELD_NUMBER: _ClassVar[int]
    MAP_TO_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_FIELDS_AUTO_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    object_name: str
    destination: str
    schedule: str
    map_to_name: str
    map_to_display_name: str
    required_fields: _containers.RepeatedCompositeFieldContainer[IntegrationField]
    optional_fields: _containers.RepeatedCompositeFieldContainer[IntegrationField]
    optional_fields_auto: str
    backfill: Backfill
    delivery: Delivery
    enabled: str
    def __init__(self, object_name: _Optional[str] = ..., destination: _Optional[str] = ..., schedule: _Optional[str] = ..., map_to_name: _Optional[str] = ..., map_to_display_name: _Optional[str] = ..., required_fields: _Optional[_Iterable[_Union[IntegrationField, _Mapping]]] = ..., optional_fields: _Optional[_Iterable[_Union[IntegrationField, _Mapping]]] = ..., optional_fields_auto: _Optional[str] = ..., backfill: _Optional[_Union[Backfill, _Mapping]] = ..., delivery: _Optional[_Union[Delivery, _Mapping]] = ..., enabled: _Optional[str] = ...) -> None: ...

class IntegrationField(_message.Message):
    __slots__ = ("field_name", "map_to_name", "map_to_display_name", "default", "prompt")
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    MAP_TO_NAME_FIELD_NUMBER: _ClassVar[int]
    MAP_TO_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    field_name: str
    map_to_name: str
    map_to_display_name: str
    default: str
    prompt: str
    def __init__(self, field_name: _Optional[str] = ..., map_to_name: _Optional[str] = ..., map_to_display_name: _Optional[str] = ..., default: _Optional[str] = ..., prompt: _Optional[str] = ...) -> None: ...

class Backfill(_message.Message):
    __slots__ = ("default_period",)
    DEFAULT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    default_period: DefaultPeriod
    def __init__(self, default_period: _Optional[_Union[DefaultPeriod, _Mapping]] = ...) -> None: ...

class DefaultPeriod(_message.Message):
    __slots__ = ("days", "full_history")
    DAYS_FIELD_NUMBER: _ClassVar[int]
    FULL_HISTORY_FIELD_NUMBER: _ClassVar[int]
    days: int
    full_history: bool
    def __init__(self, days: _Optional[int] = ..., full_history: _Optional[bool] = ...) -> None: ...

class Delivery(_message.Message):
    __slots__ = ("mode", "page_size")
    MODE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    mode: str
    page_size: int
    def __init__(self, mode: _Optional[str] = ..., page_size: _Optional[int] = ...) -> None: ...

class IntegrationWrite(_message.Message):
    __slots__ = ("objects",)
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[IntegrationWriteObject]
    def __init__(self, objects: _Optional[_Iterable[_Union[IntegrationWriteObject, _Mapping]]] = ...) -> None: ...

class IntegrationWriteObject(_message.Message):
    __slots__ = ("object_name", "inherit_mapping", "value_defaults")
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    INHERIT_MAPPING_FIELD_NUMBER: _ClassVar[int]
    VALUE_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    object_name: str
    inherit_mapping: bool
    value_defaults: ValueDefaults
    def __init__(self, object_name: _Optional[str] = ..., inherit_mapping: _Optional[bool] = ..., value_defaults: _Optional[_Union[ValueDefaults, _Mapping]] = ...) -> None: ...

class ValueDefaults(_message.Message):
    __slots__ = ("allow_any_fields",)
    ALLOW_ANY_FIELDS_FIELD_NUMBER: _ClassVar[int]
    allow_any_fields: bool
    def __init__(self, allow_any_fields: _Optional[bool] = ...) -> None: ...

class IntegrationSubscribe(_message.Message):
    __slots__ = ("objects",)
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[IntegrationSubscribeObject]
    def __init__(self, objects: _Optional[_Iterable[_Union[IntegrationSubscribeObject, _Mapping]]] = ...) -> None: ...

class IntegrationSubscribeObject(_message.Message):
    __slots__ = ("object_name", "destination", "inherit_fields_and_mapping", "create_event", "update_event", "delete_event", "association_change_event", "other_events")
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    INHERIT_FIELDS_AND_MAPPING_FIELD_NUMBER: _ClassVar[int]
    CREATE_EVENT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_EVENT_FIELD_NUMBER: _ClassVar[int]
    DELETE_EVENT_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATION_CHANGE_EVENT_FIELD_NUMBER: _ClassVar[int]
    OTHER_EVENTS_FIELD_NUMBER: _ClassVar[int]
    object_name: str
    destination: str
    inherit_fields_and_mapping: bool
    create_event: CreateEvent
    update_event: UpdateEvent
    delete_event: DeleteEvent
    association_change_event: AssociationChangeEvent
    other_events: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, object_name: _Optional[str] = ..., destination: _Optional[str] = ..., inherit_fields_and_mapping: _Optional[bool] = ..., create_event: _Optional[_Union[CreateEvent, _Mapping]] = ..., update_event: _Optional[_Union[UpdateEvent, _Mapping]] = ..., delete_event: _Optional[_Union[DeleteEvent, _Mapping]] = ..., association_change_event: _Optional[_Union[AssociationChangeEvent, _Mapping]] = ..., other_events: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateEvent(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: str
    def __init__(self, enabled: _Optional[str] = ...) -> None: ...

class UpdateEvent(_message.Message):
    __slots__ = ("enabled", "watch_fields_auto", "required_watch_fields")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    WATCH_FIELDS_AUTO_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_WATCH_FIELDS_FIELD_NUMBER: _ClassVar[int]
    enabled: str
    watch_fields_auto: str
    required_watch_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, enabled: _Optional[str] = ..., watch_fields_auto: _Optional[str] = ..., required_watch_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteEvent(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: str
    def __init__(self, enabled: _Optional[str] = ...) -> None: ...

class AssociationChangeEvent(_message.Message):
    __slots__ = ("enabled", "include_full_records")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FULL_RECORDS_FIELD_NUMBER: _ClassVar[int]
    enabled: str
    include_full_records: bool
    def __init__(self, enabled: _Optional[str] = ..., include_full_records: _Optional[bool] = ...) -> None: ...

class IntegrationProxy(_message.Message):
    __slots__ = ("enabled", "use_module")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    USE_MODULE_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    use_module: bool
    def __init__(self, enabled: _Optional[bool] = ..., use_module: _Optional[bool] = ...) -> None: ...

class WatchSchema(_message.Message):
    __slots__ = ("destination", "schedule", "all_objects")
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    ALL_OBJECTS_FIELD_NUMBER: _ClassVar[int]
    destination: str
    schedule: str
    all_objects: WatchSchemaAllObjects
    def __init__(self, destination: _Optional[str] = ..., schedule: _Optional[str] = ..., all_objects: _Optional[_Union[WatchSchemaAllObjects, _Mapping]] = ...) -> None: ...

class WatchSchemaAllObjects(_message.Message):
    __slots__ = ("field_created", "field_deleted", "field_changed")
    FIELD_CREATED_FIELD_NUMBER: _ClassVar[int]
    FIELD_DELETED_FIELD_NUMBER: _ClassVar[int]
    FIELD_CHANGED_FIELD_NUMBER: _ClassVar[int]
    field_created: WatchSchemaEvent
    field_deleted: WatchSchemaEvent
    field_changed: WatchSchemaEvent
    def __init__(self, field_created: _Optional[_Union[WatchSchemaEvent, _Mapping]] = ..., field_deleted: _Optional[_Union[WatchSchemaEvent, _Mapping]] = ..., field_changed: _Optional[_Union[WatchSchemaEvent, _Mapping]] = ...) -> None: ...

class WatchSchemaEvent(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: str
    def __init__(self, enabled: _Optional[str] = ...) -> None: ...
