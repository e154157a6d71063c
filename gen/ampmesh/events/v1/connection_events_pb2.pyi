import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthScheme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTH_SCHEME_UNSPECIFIED: _ClassVar[AuthScheme]
    AUTH_SCHEME_NONE: _ClassVar[AuthScheme]
    AUTH_SCHEME_API_KEY: _ClassVar[AuthScheme]
    AUTH_SCHEME_BASIC: _ClassVar[AuthScheme]
    AUTH_SCHEME_OAUTH2_AUTHORIZATION_CODE: _ClassVar[AuthScheme]
    AUTH_SCHEME_OAUTH2_AUTHORIZATION_CODE_PKCE: _ClassVar[AuthScheme]
    AUTH_SCHEME_OAUTH2_CLIENT_CREDENTIALS: _ClassVar[AuthScheme]
    AUTH_SCHEME_OAUTH2_PASSWORD: _ClassVar[AuthScheme]
    AUTH_SCHEME_CUSTOM: _ClassVar[AuthScheme]

class ConnectionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTION_STATUS_UNSPECIFIED: _ClassVar[ConnectionStatus]
    CONNECTION_STATUS_CREATED: _ClassVar[ConnectionStatus]
    CONNECTION_STATUS_WORKING: _ClassVar[ConnectionStatus]
    CONNECTION_STATUS_BAD_CREDENTIALS: _ClassVar[ConnectionStatus]

class RefreshTrigger(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFRESH_TRIGGER_UNSPECIFIED: _ClassVar[RefreshTrigger]
    REFRESH_TRIGGER_AHEAD_OF_EXPIRY: _ClassVar[RefreshTrigger]
    REFRESH_TRIGGER_FORCED: _ClassVar[RefreshTrigger]
    REFRESH_TRIGGER_KEEP_ALIVE: _ClassVar[RefreshTrigger]

class ConnectionErrorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTION_ERROR_KIND_UNSPECIFIED: _ClassVar[ConnectionErrorKind]
    CONNECTION_ERROR_KIND_INVALID_GRANT: _ClassVar[ConnectionErrorKind]
    CONNECTION_ERROR_KIND_REVOKED: _ClassVar[ConnectionErrorKind]
    CONNECTION_ERROR_KIND_INVALID_CLIENT: _ClassVar[ConnectionErrorKind]
    CONNECTION_ERROR_KIND_PROVIDER_UNAVAILABLE: _ClassVar[ConnectionErrorKind]
    CONNECTION_ERROR_KIND_RATE_LIMITED: _ClassVar[ConnectionErrorKind]
    CONNECTION_ERROR_KIND_OTHER: _ClassVar[ConnectionErrorKind]
AUTH_SCHEME_UNSPECIFIED: AuthScheme
AUTH_SCHEME_NONE: AuthScheme
AUTH_SCHEME_API_KEY: AuthScheme
AUTH_SCHEME_BASIC: AuthScheme
AUTH_SCHEME_OAUTH2_AUTHORIZATION_CODE: AuthScheme
AUTH_SCHEME_OAUTH2_AUTHORIZATION_CODE_PKCE: AuthScheme
AUTH_SCHEME_OAUTH2_CLIENT_CREDENTIALS: AuthScheme
AUTH_SCHEME_OAUTH2_PASSWORD: AuthScheme
AUTH_SCHEME_CUSTOM: AuthScheme
CONNECTION_STATUS_UNSPECIFIED: ConnectionStatus
CONNECTION_STATUS_CREATED: ConnectionStatus
CONNECTION_STATUS_WORKING: ConnectionStatus
CONNECTION_STATUS_BAD_CREDENTIALS: ConnectionStatus
REFRESH_TRIGGER_UNSPECIFIED: RefreshTrigger
REFRESH_TRIGGER_AHEAD_OF_EXPIRY: RefreshTrigger
REFRESH_TRIGGER_FORCED: RefreshTrigger
REFRESH_TRIGGER_KEEP_ALIVE: RefreshTrigger
CONNECTION_ERROR_KIND_UNSPECIFIED: ConnectionErrorKind
CONNECTION_ERROR_KIND_INVALID_GRANT: ConnectionErrorKind
CONNECTION_ERROR_KIND_REVOKED: ConnectionErrorKind
CONNECTION_ERROR_KIND_INVALID_CLIENT: ConnectionErrorKind
CONNECTION_ERROR_KIND_PROVIDER_UNAVAILABLE: ConnectionErrorKind
CONNECTION_ERROR_KIND_RATE_LIMITED: ConnectionErrorKind
CONNECTION_ERROR_KIND_OTHER: ConnectionErrorKind

class ConnectionInfo(_message.Message):
    __slots__ = ("connection_id", "provider", "provider_app_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "provider_workspace_ref", "auth_scheme", "status")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_WORKSPACE_REF_FIELD_NUMBER: _ClassVar[int]
    AUTH_SCHEME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    provider: str
    provider_app_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    provider_workspace_ref: str
    auth_scheme: AuthScheme
    status: ConnectionStatus
    def __init__(self, connection_id: _Optional[str] = ..., provider: _Optional[str] = ..., provider_app_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., provider_workspace_ref: _Optional[str] = ..., auth_scheme: _Optional[_Union[AuthScheme, str]] = ..., status: _Optional[_Union[ConnectionStatus, str]] = ...) -> None: ...

class ConnectionCreated(_message.Message):
    __slots__ = ("connection", "create_time")
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    connection: ConnectionInfo
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, connection: _Optional[_Union[ConnectionInfo, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConnectionRefreshed(_message.Message):
    __slots__ = ("connection", "trigger", "access_token_expire_time", "refresh_token_rotated", "recovered", "provider_latency")
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_ROTATED_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_LATENCY_FIELD_NUMBER: _ClassVar[int]
    connection: ConnectionInfo
    trigger: RefreshTrigger
    access_token_expire_time: _timestamp_pb2.Timestamp
    refresh_token_rotated: bool
    recovered: bool
    provider_latency: _duration_pb2.Duration
    def __init__(self, connection: _Optional[_Union[ConnectionInfo, _Mapping]] = ..., trigger: _Optional[_Union[RefreshTrigger, str]] = ..., access_token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_token_rotated: _Optional[bool] = ..., recovered: _Optional[bool] = ..., provider_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ConnectionUpdated(_message.Message):
    __slots__ = ("connection", "updated_fields")
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    connection: ConnectionInfo
    updated_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, connection: _Optional[_Union[ConnectionInfo, _Mapping]] = ..., updated_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class ConnectionDeleted(_message.Message):
    __slots__ = ("connection", "revoked_at_provider", "revocation_detail")
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_DETAIL_FIELD_NUMBER: _ClassVar[int]
    connection: ConnectionInfo
    revoked_at_provider: bool
    revocation_detail: str
    def __init__(self, connection: _Optional[_Union[ConnectionInfo, _Mapping]] = ..., revoked_at_provider: _Optional[bool] = ..., revocation_detail: _Optional[str] = ...) -> None: ...

class ConnectionError(_message.Message):
    __slots__ = ("connection", "kind", "errors", "provider_status_code", "provider_error", "previous_status", "will_retry")
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ERROR_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    WILL_RETRY_FIELD_NUMBER: _ClassVar[int]
    connection: ConnectionInfo
    kind: ConnectionErrorKind
    errors: _containers.RepeatedScalarFieldContainer[str]
    provider_status_code: int
    provider_error: str
    previous_status: ConnectionStatus
    will_retry: bool
    def __init__(self, connection: _Optional[_Union[ConnectionInfo, _Mapping]] = ..., kind: _Optional[_Union[ConnectionErrorKind, str]] = ..., errors: _Optional[_Iterable[str]] = ..., provider_status_code: _Optional[int] = ..., provider_error: _Optional[str] = ..., previous_status: _Optional[_Union[ConnectionStatus, str]] = ..., will_retry: _Optional[bool] = ...) -> None: ...
