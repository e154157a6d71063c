import datetime

from ampmesh.edge.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProviderApp(_message.Message):
    __slots__ = ("id", "project_id", "external_ref", "provider", "client_id", "client_secret", "scopes", "metadata", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_REF_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    external_ref: str
    provider: str
    client_id: str
    client_secret: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    metadata: ProviderAppMetadata
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., external_ref: _Optional[str] = ..., provider: _Optional[str] = ..., client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., metadata: _Optional[_Union[ProviderAppMetadata, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProviderAppMetadata(_message.Message):
    __slots__ = ("auth_query_params", "provider_params")
    class AuthQueryParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.ListValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ...) -> None: ...
    class ProviderParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    AUTH_QUERY_PARAMS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_PARAMS_FIELD_NUMBER: _ClassVar[int]
    auth_query_params: _containers.MessageMap[str, _struct_pb2.ListValue]
    provider_params: _containers.ScalarMap[str, str]
    def __init__(self, auth_query_params: _Optional[_Mapping[str, _struct_pb2.ListValue]] = ..., provider_params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListProviderAppsRequest(_message.Message):
    __slots__ = ("project_id_or_name",)
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    def __init__(self, project_id_or_name: _Optional[str] = ...) -> None: ...

class ListProviderAppsResponse(_message.Message):
    __slots__ = ("provider_apps",)
    PROVIDER_APPS_FIELD_NUMBER: _ClassVar[int]
    provider_apps: _containers.RepeatedCompositeFieldContainer[ProviderApp]
    def __init__(self, provider_apps: _Optional[_Iterable[_Union[ProviderApp, _Mapping]]] = ...) -> None: ...

class CreateProviderAppRequest(_message.Message):
    __slots__ = ("project_id_or_name", "provider_app")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    provider_app: ProviderApp
    def __init__(self, project_id_or_name: _Optional[str] = ..., provider_app: _Optional[_Union[ProviderApp, _Mapping]] = ...) -> None: ...

class UpdateProviderAppRequest(_message.Message):
    __slots__ = ("project_id_or_name", "provider_app_id", "update_mask", "provider_app")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    provider_app_id: str
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    provider_app: ProviderApp
    def __init__(self, project_id_or_name: _Optional[str] = ..., provider_app_id: _Optional[str] = ..., update_mask: _Optional[_Iterable[str]] = ..., provider_app: _Optional[_Union[ProviderApp, _Mapping]] = ...) -> None: ...

class DeleteProviderAppRequest(_message.Message):
    __slots__ = ("project_id_or_name", "provider_app_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    provider_app_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., provider_app_id: _Optional[str] = ...) -> None: ...
