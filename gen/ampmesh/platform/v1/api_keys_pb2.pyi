from ampmesh.edge.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ApiKey(_message.Message):
    __slots__ = ("key", "label", "scopes", "project_id", "active")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    key: str
    label: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    project_id: str
    active: bool
    def __init__(self, key: _Optional[str] = ..., label: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., project_id: _Optional[str] = ..., active: _Optional[bool] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("project_id_or_name", "active")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    active: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., active: _Optional[bool] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys",)
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("project_id_or_name", "api_key")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    api_key: ApiKey
    def __init__(self, project_id_or_name: _Optional[str] = ..., api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class GetApiKeyRequest(_message.Message):
    __slots__ = ("project_id_or_name", "api_key")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    api_key: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., api_key: _Optional[str] = ...) -> None: ...

class UpdateApiKeyRequest(_message.Message):
    __slots__ = ("project_id_or_name", "key", "update_mask", "api_key")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    key: str
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    api_key: ApiKey
    def __init__(self, project_id_or_name: _Optional[str] = ..., key: _Optional[str] = ..., update_mask: _Optional[_Iterable[str]] = ..., api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class DeleteApiKeyRequest(_message.Message):
    __slots__ = ("project_id_or_name", "api_key")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    api_key: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., api_key: _Optional[str] = ...) -> None: ...
