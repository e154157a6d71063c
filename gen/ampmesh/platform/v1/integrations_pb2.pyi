import datetime

from ampmesh.edge.v1 import options_pb2 as _options_pb2
from ampmesh.manifest.v1 import manifest_pb2 as _manifest_pb2
from ampmesh.platform.v1 import object_metadata_pb2 as _object_metadata_pb2
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

class Integration(_message.Message):
    __slots__ = ("id", "project_id", "name", "provider", "create_time", "update_time", "latest_revision")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LATEST_REVISION_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    name: str
    provider: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    latest_revision: Revision
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., name: _Optional[str] = ..., provider: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest_revision: _Optional[_Union[Revision, _Mapping]] = ...) -> None: ...

class Revision(_message.Message):
    __slots__ = ("id", "spec_version", "create_time", "content")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec_version: str
    create_time: _timestamp_pb2.Timestamp
    content: _manifest_pb2.Integration
    def __init__(self, id: _Optional[str] = ..., spec_version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content: _Optional[_Union[_manifest_pb2.Integration, _Mapping]] = ...) -> None: ...

class HydratedRevision(_message.Message):
    __slots__ = ("id", "spec_version", "create_time", "content")
    ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    id: str
    spec_version: str
    create_time: _timestamp_pb2.Timestamp
    content: HydratedIntegration
    def __init__(self, id: _Optional[str] = ..., spec_version: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., content: _Optional[_Union[HydratedIntegration, _Mapping]] = ...) -> None: ...

class HydratedIntegration(_message.Message):
    __slots__ = ("name", "display_name", "module", "provider", "read", "write", "proxy")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    PROXY_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    module: str
    provider: str
    read: HydratedIntegrationRead
    write: HydratedIntegrationWrite
    proxy: _manifest_pb2.IntegrationProxy
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., module: _Optional[str] = ..., provider: _Optional[str] = ..., read: _Optional[_Union[HydratedIntegrationRead, _Mapping]] = ..., write: _Optional[_Union[HydratedIntegrationWrite, _Mapping]] = ..., proxy: _Optional[_Union[_manifest_pb2.IntegrationProxy, _Mapping]] = ...) -> None: ...

class HydratedIntegrationRead(_message.Message):
    __slots__ = ("objects",)
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[HydratedIntegrationObject]
    def __init__(self, objects: _Optional[_Iterable[_Union[HydratedIntegrationObject, _Mapping]]] = ...) -> None: ...

class HydratedIntegrationObject(_message.Message):
    __slots__ = ("error", "object_name", "display_name", "map_to_name", "map_to_display_name", "destination", "schedule", "required_fields", "optional_fields", "optional_fields_auto", "all_fields_metadata", "all_fields", "backfill")
    class AllFieldsMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _object_metadata_pb2.FieldMetadata
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_object_metadata_pb2.FieldMetadata, _Mapping]] = ...) -> None: ...
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    MAP_TO_NAME_FIELD_NUMBER: _ClassVar[int]
    MAP_TO_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_FIELDS_AUTO_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELDS_METADATA_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    BACKFILL_FIELD_NUMBER: _ClassVar[int]
    error: str
    object_name: str
    display_name: str
    map_to_name: str
    map_to_display_name: str
    destination: str
    schedule: str
    required_fields: _containers.RepeatedCompositeFieldContainer[HydratedIntegrationField]
    optional_fields: _containers.RepeatedCompositeFieldContainer[HydratedIntegrationField]
    optional_fields_auto: str
    all_fields_metadata: _containers.MessageMap[str, _object_metadata_pb2.FieldMetadata]
    all_fields: _containers.RepeatedCompositeFieldContainer[HydratedIntegrationField]
    backfill: _manifest_pb2.Backfill
    def __init__(self, error: _Optional[str] = ..., object_name: _Optional[str] = ..., display_name: _Optional[str] = ..., map_to_name: _Optional[str] = ..., map_to_display_name: _Optional[str] = ..., destination: _Optional[str] = ..., schedule: _Optional[str] = ..., required_fields: _Optional[_Iterable[_Union[HydratedIntegrationField, _Mapping]]] = ..., optional_fields: _Optional[_Iterable[_Union[HydratedIntegrationField, _Mapping]]] = ..., optional_fields_auto: _Optional[str] = ..., all_fields_metadata: _Optional[_Mapping[str, _object_metadata_pb2.FieldMetadata]] = ..., all_fields: _Optional[_Iterable[_Union[HydratedIntegrationField, _Mapping]]] = ..., backfill: _Optional[_Union[_manifest_pb2.Backfill, _Mapping]] = ...) -> None: ...

class HydratedIntegrationField(_message.Message):
    __slots__ = ("field_name", "display_name", "map_to_name", "map_to_display_name", "default", "prompt")
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    MAP_TO_NAME_FIELD_NUMBER: _ClassVar[int]
    MAP_TO_DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    field_name: str
    display_name: str
    map_to_name: str
    map_to_display_name: str
    default: str
    prompt: str
    def __init__(self, field_name: _Optional[str] = ..., display_name: _Optional[str] = ..., map_to_name: _Optional[str] = ..., map_to_display_name: _Optional[str] = ..., default: _Optional[str] = ..., prompt: _Optional[str] = ...) -> None: ...

class HydratedIntegrationWrite(_message.Message):
    __slots__ = ("objects",)
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    objects: _containers.RepeatedCompositeFieldContainer[HydratedIntegrationWriteObject]
    def __init__(self, objects: _Optional[_Iterable[_Union[HydratedIntegrationWriteObject, _Mapping]]] = ...) -> None: ...

class HydratedIntegrationWriteObject(_message.Message):
    __slots__ = ("object_name", "display_name", "value_defaults")
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    object_name: str
    display_name: str
    value_defaults: _manifest_pb2.ValueDefaults
    def __init__(self, object_name: _Optional[str] = ..., display_name: _Optional[str] = ..., value_defaults: _Optional[_Union[_manifest_pb2.ValueDefaults, _Mapping]] = ...) -> None: ...

class IntegrationSource(_message.Message):
    __slots__ = ("source_zip_url", "source_yaml")
    SOURCE_ZIP_URL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_YAML_FIELD_NUMBER: _ClassVar[int]
    source_zip_url: str
    source_yaml: str
    def __init__(self, source_zip_url: _Optional[str] = ..., source_yaml: _Optional[str] = ...) -> None: ...

class ListIntegrationsRequest(_message.Message):
    __slots__ = ("project_id_or_name",)
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    def __init__(self, project_id_or_name: _Optional[str] = ...) -> None: ...

class ListIntegrationsResponse(_message.Message):
    __slots__ = ("integrations",)
    INTEGRATIONS_FIELD_NUMBER: _ClassVar[int]
    integrations: _containers.RepeatedCompositeFieldContainer[Integration]
    def __init__(self, integrations: _Optional[_Iterable[_Union[Integration, _Mapping]]] = ...) -> None: ...

class CreateIntegrationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration: Integration
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration: _Optional[_Union[Integration, _Mapping]] = ...) -> None: ...

class GetIntegrationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id_or_name")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id_or_name: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id_or_name: _Optional[str] = ...) -> None: ...

class DeleteIntegrationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id_or_name")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id_or_name: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id_or_name: _Optional[str] = ...) -> None: ...

class BatchUpsertIntegrationsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "source", "destructive")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTRUCTIVE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    source: IntegrationSource
    destructive: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., source: _Optional[_Union[IntegrationSource, _Mapping]] = ..., destructive: _Optional[bool] = ...) -> None: ...

class BatchUpsertIntegrationsResponse(_message.Message):
    __slots__ = ("integrations",)
    INTEGRATIONS_FIELD_NUMBER: _ClassVar[int]
    integrations: _containers.RepeatedCompositeFieldContainer[Integration]
    def __init__(self, integrations: _Optional[_Iterable[_Union[Integration, _Mapping]]] = ...) -> None: ...

class CreateRevisionRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "source", "destructive")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DESTRUCTIVE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    source: IntegrationSource
    destructive: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., source: _Optional[_Union[IntegrationSource, _Mapping]] = ..., destructive: _Optional[bool] = ...) -> None: ...

class GetHydratedRevisionRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "revision_id", "connection_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    revision_id: str
    connection_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., revision_id: _Optional[str] = ..., connection_id: _Optional[str] = ...) -> None: ...
