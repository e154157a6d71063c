import datetime

from ampmesh.edge.v1 import options_pb2 as _options_pb2
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

class JWTKey(_message.Message):
    __slots__ = ("id", "project_id", "label", "algorithm", "public_key_pem", "active", "create_time", "update_time", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    label: str
    algorithm: str
    public_key_pem: str
    active: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    name: str
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., label: _Optional[str] = ..., algorithm: _Optional[str] = ..., public_key_pem: _Optional[str] = ..., active: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., name: _Optional[str] = ...) -> None: ...

class CreateJwtKeyRequest(_message.Message):
    __slots__ = ("project_id_or_name", "label", "algorithm", "public_key_pem", "name")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    label: str
    algorithm: str
    public_key_pem: str
    name: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., label: _Optional[str] = ..., algorithm: _Optional[str] = ..., public_key_pem: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CreateJwtKeyResponse(_message.Message):
    __slots__ = ("kid",)
    KID_FIELD_NUMBER: _ClassVar[int]
    kid: str
    def __init__(self, kid: _Optional[str] = ...) -> None: ...

class ListJwtKeysRequest(_message.Message):
    __slots__ = ("project_id_or_name", "active")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    active: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., active: _Optional[bool] = ...) -> None: ...

class ListJwtKeysResponse(_message.Message):
    __slots__ = ("jwt_keys",)
    JWT_KEYS_FIELD_NUMBER: _ClassVar[int]
    jwt_keys: _containers.RepeatedCompositeFieldContainer[JWTKey]
    def __init__(self, jwt_keys: _Optional[_Iterable[_Union[JWTKey, _Mapping]]] = ...) -> None: ...

class GetJwtKeyRequest(_message.Message):
    __slots__ = ("project_id_or_name", "key_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    key_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class UpdateJwtKeyRequest(_message.Message):
    __slots__ = ("project_id_or_name", "key_id", "update_mask", "jwt_key")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    JWT_KEY_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    key_id: str
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    jwt_key: JWTKey
    def __init__(self, project_id_or_name: _Optional[str] = ..., key_id: _Optional[str] = ..., update_mask: _Optional[_Iterable[str]] = ..., jwt_key: _Optional[_Union[JWTKey, _Mapping]] = ...) -> None: ...

class DeleteJwtKeyRequest(_message.Message):
    __slots__ = ("project_id_or_name", "key_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    key_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...
