import datetime

from ampmesh.edge.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Project(_message.Message):
    __slots__ = ("id", "name", "app_name", "org_id", "create_time", "update_time", "entitlements")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    APP_NAME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    app_name: str
    org_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    entitlements: ProjectEntitlements
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., app_name: _Optional[str] = ..., org_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., entitlements: _Optional[_Union[ProjectEntitlements, _Mapping]] = ...) -> None: ...

class ProjectEntitlements(_message.Message):
    __slots__ = ("branding_removal", "log_retention_days")
    BRANDING_REMOVAL_FIELD_NUMBER: _ClassVar[int]
    LOG_RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    branding_removal: BrandingRemovalEntitlement
    log_retention_days: LogRetentionDaysEntitlement
    def __init__(self, branding_removal: _Optional[_Union[BrandingRemovalEntitlement, _Mapping]] = ..., log_retention_days: _Optional[_Union[LogRetentionDaysEntitlement, _Mapping]] = ...) -> None: ...

class BrandingRemovalEntitlement(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: bool
    def __init__(self, value: _Optional[bool] = ...) -> None: ...

class LogRetentionDaysEntitlement(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class ListProjectsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProjectsResponse(_message.Message):
    __slots__ = ("projects",)
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[Project]
    def __init__(self, projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ...) -> None: ...

class CreateProjectRequest(_message.Message):
    __slots__ = ("project",)
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project: Project
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ...) -> None: ...

class GetProjectRequest(_message.Message):
    __slots__ = ("project_id_or_name", "include_entitlements")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    include_entitlements: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., include_entitlements: _Optional[bool] = ...) -> None: ...

class UpdateProjectRequest(_message.Message):
    __slots__ = ("project_id_or_name", "update_mask", "project")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    project: Project
    def __init__(self, project_id_or_name: _Optional[str] = ..., update_mask: _Optional[_Iterable[str]] = ..., project: _Optional[_Union[Project, _Mapping]] = ...) -> None: ...
