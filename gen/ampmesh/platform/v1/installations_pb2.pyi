import datetime

from ampmesh.edge.v1 import options_pb2 as _options_pb2
from ampmesh.manifest.v1 import config_pb2 as _config_pb2
from ampmesh.platform.v1 import connections_pb2 as _connections_pb2
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

class Installation(_message.Message):
    __slots__ = ("id", "project_id", "integration_id", "group", "health_status", "last_operation_status", "connection", "create_time", "created_by", "update_time", "config")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    HEALTH_STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_OPERATION_STATUS_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    integration_id: str
    group: _connections_pb2.Group
    health_status: str
    last_operation_status: str
    connection: _connections_pb2.Connection
    create_time: _timestamp_pb2.Timestamp
    created_by: str
    update_time: _timestamp_pb2.Timestamp
    config: _config_pb2.Config
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., integration_id: _Optional[str] = ..., group: _Optional[_Union[_connections_pb2.Group, _Mapping]] = ..., health_status: _Optional[str] = ..., last_operation_status: _Optional[str] = ..., connection: _Optional[_Union[_connections_pb2.Connection, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., config: _Optional[_Union[_config_pb2.Config, _Mapping]] = ...) -> None: ...

class InstallationInput(_message.Message):
    __slots__ = ("group_ref", "connection_id", "config")
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    group_ref: str
    connection_id: str
    config: _config_pb2.Config
    def __init__(self, group_ref: _Optional[str] = ..., connection_id: _Optional[str] = ..., config: _Optional[_Union[_config_pb2.Config, _Mapping]] = ...) -> None: ...

class InstallationUpdate(_message.Message):
    __slots__ = ("update_mask", "installation")
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_FIELD_NUMBER: _ClassVar[int]
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    installation: InstallationPatch
    def __init__(self, update_mask: _Optional[_Iterable[str]] = ..., installation: _Optional[_Union[InstallationPatch, _Mapping]] = ...) -> None: ...

class InstallationPatch(_message.Message):
    __slots__ = ("connection_id", "config")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    config: _config_pb2.Config
    def __init__(self, connection_id: _Optional[str] = ..., config: _Optional[_Union[_config_pb2.Config, _Mapping]] = ...) -> None: ...

class JsonPatchOperation(_message.Message):
    __slots__ = ("op", "path", "value")
    OP_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    op: str
    path: str
    value: _struct_pb2.Value
    def __init__(self, op: _Optional[str] = ..., path: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ListInstallationsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "group_ref")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    group_ref: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., group_ref: _Optional[str] = ...) -> None: ...

class ListInstallationsResponse(_message.Message):
    __slots__ = ("installations",)
    INSTALLATIONS_FIELD_NUMBER: _ClassVar[int]
    installations: _containers.RepeatedCompositeFieldContainer[Installation]
    def __init__(self, installations: _Optional[_Iterable[_Union[Installation, _Mapping]]] = ...) -> None: ...

class CreateInstallationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "installation", "skip_sampling")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_FIELD_NUMBER: _ClassVar[int]
    SKIP_SAMPLING_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    installation: InstallationInput
    skip_sampling: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation: _Optional[_Union[InstallationInput, _Mapping]] = ..., skip_sampling: _Optional[bool] = ...) -> None: ...

class GetInstallationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "installation_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    installation_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ...) -> None: ...

class UpdateInstallationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "installation_id", "update", "skip_sampling")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    SKIP_SAMPLING_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    installation_id: str
    update: InstallationUpdate
    skip_sampling: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., update: _Optional[_Union[InstallationUpdate, _Mapping]] = ..., skip_sampling: _Optional[bool] = ...) -> None: ...

class DeleteInstallationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "installation_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    installation_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., installation_id: _Optional[str] = ...) -> None: ...

class PatchObjectConfigContentRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "object_name", "group_ref", "installation_id", "action", "changes")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    object_name: str
    group_ref: str
    installation_id: str
    action: str
    changes: _containers.RepeatedCompositeFieldContainer[JsonPatchOperation]
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., object_name: _Optional[str] = ..., group_ref: _Optional[str] = ..., installation_id: _Optional[str] = ..., action: _Optional[str] = ..., changes: _Optional[_Iterable[_Union[JsonPatchOperation, _Mapping]]] = ...) -> None: ...

class ListInstallationsForProjectRequest(_message.Message):
    __slots__ = ("project_id_or_name", "group_ref")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    group_ref: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., group_ref: _Optional[str] = ...) -> None: ...

class ListInstallationsForProjectResponse(_message.Message):
    __slots__ = ("installations",)
    INSTALLATIONS_FIELD_NUMBER: _ClassVar[int]
    installations: _containers.RepeatedCompositeFieldContainer[Installation]
    def __init__(self, installations: _Optional[_Iterable[_Union[Installation, _Mapping]]] = ...) -> None: ...
