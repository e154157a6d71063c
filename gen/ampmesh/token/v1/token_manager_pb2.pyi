import datetime

from ampmesh.events.v1 import connection_events_pb2 as _connection_events_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RefreshMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFRESH_MODE_UNSPECIFIED: _ClassVar[RefreshMode]
    REFRESH_MODE_AHEAD_OF_EXPIRY: _ClassVar[RefreshMode]
    REFRESH_MODE_IF_EXPIRED: _ClassVar[RefreshMode]
    REFRESH_MODE_FORCE: _ClassVar[RefreshMode]
    REFRESH_MODE_NEVER: _ClassVar[RefreshMode]

class TokenSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_SOURCE_UNSPECIFIED: _ClassVar[TokenSource]
    TOKEN_SOURCE_MEMORY: _ClassVar[TokenSource]
    TOKEN_SOURCE_REDIS: _ClassVar[TokenSource]
    TOKEN_SOURCE_POSTGRES: _ClassVar[TokenSource]
    TOKEN_SOURCE_PROVIDER: _ClassVar[TokenSource]

class AttachmentLocation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTACHMENT_LOCATION_UNSPECIFIED: _ClassVar[AttachmentLocation]
    ATTACHMENT_LOCATION_HEADER: _ClassVar[AttachmentLocation]
    ATTACHMENT_LOCATION_QUERY: _ClassVar[AttachmentLocation]

class RefreshReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFRESH_REASON_UNSPECIFIED: _ClassVar[RefreshReason]
    REFRESH_REASON_MANUAL: _ClassVar[RefreshReason]
    REFRESH_REASON_KEEP_ALIVE: _ClassVar[RefreshReason]
    REFRESH_REASON_TOKEN_REJECTED: _ClassVar[RefreshReason]

class TokenFailureReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_FAILURE_REASON_UNSPECIFIED: _ClassVar[TokenFailureReason]
    TOKEN_FAILURE_REASON_BAD_CREDENTIALS: _ClassVar[TokenFailureReason]
    TOKEN_FAILURE_REASON_PROVIDER_UNAVAILABLE: _ClassVar[TokenFailureReason]
    TOKEN_FAILURE_REASON_RATE_LIMITED: _ClassVar[TokenFailureReason]
    TOKEN_FAILURE_REASON_NOT_REFRESHABLE: _ClassVar[TokenFailureReason]
    TOKEN_FAILURE_REASON_CREDENTIALS_NOT_ALLOWED: _ClassVar[TokenFailureReason]
REFRESH_MODE_UNSPECIFIED: RefreshMode
REFRESH_MODE_AHEAD_OF_EXPIRY: RefreshMode
REFRESH_MODE_IF_EXPIRED: RefreshMode
REFRESH_MODE_FORCE: RefreshMode
REFRESH_MODE_NEVER: RefreshMode
TOKEN_SOURCE_UNSPECIFIED: TokenSource
TOKEN_SOURCE_MEMORY: TokenSource
TOKEN_SOURCE_REDIS: TokenSource
TOKEN_SOURCE_POSTGRES: TokenSource
TOKEN_SOURCE_PROVIDER: TokenSource
ATTACHMENT_LOCATION_UNSPECIFIED: AttachmentLocation
ATTACHMENT_LOCATION_HEADER: AttachmentLocation
ATTACHMENT_LOCATION_QUERY: AttachmentLocation
REFRESH_REASON_UNSPECIFIED: RefreshReason
REFRESH_REASON_MANUAL: RefreshReason
REFRESH_REASON_KEEP_ALIVE: RefreshReason
REFRESH_REASON_TOKEN_REJECTED: RefreshReason
TOKEN_FAILURE_REASON_UNSPECIFIED: TokenFailureReason
TOKEN_FAILURE_REASON_BAD_CREDENTIALS: TokenFailureReason
TOKEN_FAILURE_REASON_PROVIDER_UNAVAILABLE: TokenFailureReason
TOKEN_FAILURE_REASON_RATE_LIMITED: TokenFailureReason
TOKEN_FAILURE_REASON_NOT_REFRESHABLE: TokenFailureReason
TOKEN_FAILURE_REASON_CREDENTIALS_NOT_ALLOWED: TokenFailureReason

class DescribeShardRequest(_message.Message):
    __slots__ = ("connection_id",)
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    def __init__(self, connection_id: _Optional[str] = ...) -> None: ...

class DescribeShardResponse(_message.Message):
    __slots__ = ("shard", "connection_id", "caller")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    shard: str
    connection_id: str
    caller: str
    def __init__(self, shard: _Optional[str] = ..., connection_id: _Optional[str] = ..., caller: _Optional[str] = ...) -> None: ...

class ConnectionContext(_message.Message):
    __slots__ = ("project_id", "connection_id", "provider", "provider_app_id", "provider_workspace_ref", "provider_metadata", "group_ref", "group_name", "consumer_ref", "consumer_name")
    class ProviderMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_WORKSPACE_REF_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_METADATA_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    connection_id: str
    provider: str
    provider_app_id: str
    provider_workspace_ref: str
    provider_metadata: _containers.ScalarMap[str, str]
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    def __init__(self, project_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., provider: _Optional[str] = ..., provider_app_id: _Optional[str] = ..., provider_workspace_ref: _Optional[str] = ..., provider_metadata: _Optional[_Mapping[str, str]] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ...) -> None: ...

class Credentials(_message.Message):
    __slots__ = ("oauth2_authorization_code", "oauth2_client_credentials", "oauth2_password", "api_key", "basic", "custom")
    OAUTH2_AUTHORIZATION_CODE_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_CLIENT_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    BASIC_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    oauth2_authorization_code: OAuth2AuthorizationCodeCredentials
    oauth2_client_credentials: OAuth2ClientCredentials
    oauth2_password: OAuth2PasswordCredentials
    api_key: ApiKeyCredentials
    basic: BasicCredentials
    custom: CustomCredentials
    def __init__(self, oauth2_authorization_code: _Optional[_Union[OAuth2AuthorizationCodeCredentials, _Mapping]] = ..., oauth2_client_credentials: _Optional[_Union[OAuth2ClientCredentials, _Mapping]] = ..., oauth2_password: _Optional[_Union[OAuth2PasswordCredentials, _Mapping]] = ..., api_key: _Optional[_Union[ApiKeyCredentials, _Mapping]] = ..., basic: _Optional[_Union[BasicCredentials, _Mapping]] = ..., custom: _Optional[_Union[CustomCredentials, _Mapping]] = ...) -> None: ...

class OAuth2Token(_message.Message):
    __slots__ = ("token", "issue_time", "expire_time")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ISSUE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    token: str
    issue_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, token: _Optional[str] = ..., issue_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OAuth2AuthorizationCodeCredentials(_message.Message):
    __slots__ = ("access_token", "refresh_token", "scopes", "token_type", "pkce")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    TOKEN_TYPE_FIELD_NUMBER: _ClassVar[int]
    PKCE_FIELD_NUMBER: _ClassVar[int]
    access_token: OAuth2Token
    refresh_token: OAuth2Token
    scopes: _containers.RepeatedScalarFieldContainer[str]
    token_type: str
    pkce: bool
    def __init__(self, access_token: _Optional[_Union[OAuth2Token, _Mapping]] = ..., refresh_token: _Optional[_Union[OAuth2Token, _Mapping]] = ..., scopes: _Optional[_Iterable[str]] = ..., token_type: _Optional[str] = ..., pkce: _Optional[bool] = ...) -> None: ...

class OAuth2ClientCredentials(_message.Message):
    __slots__ = ("client_id", "client_secret", "scopes", "audience", "access_token")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    client_secret: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    audience: _containers.RepeatedScalarFieldContainer[str]
    access_token: OAuth2Token
    def __init__(self, client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., audience: _Optional[_Iterable[str]] = ..., access_token: _Optional[_Union[OAuth2Token, _Mapping]] = ...) -> None: ...

class OAuth2PasswordCredentials(_message.Message):
    __slots__ = ("username", "password", "client_id", "client_secret", "scopes", "access_token", "refresh_token")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    client_id: str
    client_secret: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    access_token: OAuth2Token
    refresh_token: OAuth2Token
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., access_token: _Optional[_Union[OAuth2Token, _Mapping]] = ..., refresh_token: _Optional[_Union[OAuth2Token, _Mapping]] = ...) -> None: ...

class ApiKeyCredentials(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class BasicCredentials(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class CustomCredentials(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _struct_pb2.Struct
    def __init__(self, values: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StoredCredentials(_message.Message):
    __slots__ = ("connection_id", "project_id", "provider", "auth_scheme", "status", "scopes", "access_token_expire_time", "has_refresh_token", "refresh_token_expire_time", "encryption_key_id", "last_refresh_time", "create_time", "update_time")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    AUTH_SCHEME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    HAS_REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_REFRESH_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    project_id: str
    provider: str
    auth_scheme: _connection_events_pb2.AuthScheme
    status: _connection_events_pb2.ConnectionStatus
    scopes: _containers.RepeatedScalarFieldContainer[str]
    access_token_expire_time: _timestamp_pb2.Timestamp
    has_refresh_token: bool
    refresh_token_expire_time: _timestamp_pb2.Timestamp
    encryption_key_id: str
    last_refresh_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, connection_id: _Optional[str] = ..., project_id: _Optional[str] = ..., provider: _Optional[str] = ..., auth_scheme: _Optional[_Union[_connection_events_pb2.AuthScheme, str]] = ..., status: _Optional[_Union[_connection_events_pb2.ConnectionStatus, str]] = ..., scopes: _Optional[_Iterable[str]] = ..., access_token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., has_refresh_token: _Optional[bool] = ..., refresh_token_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., encryption_key_id: _Optional[str] = ..., last_refresh_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("location", "name", "value")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    location: AttachmentLocation
    name: str
    value: str
    def __init__(self, location: _Optional[_Union[AttachmentLocation, str]] = ..., name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class AccessToken(_message.Message):
    __slots__ = ("connection_id", "token", "token_type", "expire_time", "auth_scheme", "attachments", "scopes")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOKEN_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    AUTH_SCHEME_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENTS_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    token: str
    token_type: str
    expire_time: _timestamp_pb2.Timestamp
    auth_scheme: _connection_events_pb2.AuthScheme
    attachments: _containers.RepeatedCompositeFieldContainer[Attachment]
    scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, connection_id: _Optional[str] = ..., token: _Optional[str] = ..., token_type: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., auth_scheme: _Optional[_Union[_connection_events_pb2.AuthScheme, str]] = ..., attachments: _Optional[_Iterable[_Union[Attachment, _Mapping]]] = ..., scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class StoreCredentialsRequest(_message.Message):
    __slots__ = ("connection", "credentials", "replace", "obtain_token", "updated_fields")
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    OBTAIN_TOKEN_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    connection: ConnectionContext
    credentials: Credentials
    replace: bool
    obtain_token: bool
    updated_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, connection: _Optional[_Union[ConnectionContext, _Mapping]] = ..., credentials: _Optional[_Union[Credentials, _Mapping]] = ..., replace: _Optional[bool] = ..., obtain_token: _Optional[bool] = ..., updated_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class ExchangeAuthorizationCodeRequest(_message.Message):
    __slots__ = ("connection", "code", "code_verifier", "redirect_uri", "requested_scopes")
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    CODE_VERIFIER_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_URI_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_SCOPES_FIELD_NUMBER: _ClassVar[int]
    connection: ConnectionContext
    code: str
    code_verifier: str
    redirect_uri: str
    requested_scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, connection: _Optional[_Union[ConnectionContext, _Mapping]] = ..., code: _Optional[str] = ..., code_verifier: _Optional[str] = ..., redirect_uri: _Optional[str] = ..., requested_scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class ExchangeAuthorizationCodeResponse(_message.Message):
    __slots__ = ("credentials", "token_response_metadata")
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_RESPONSE_METADATA_FIELD_NUMBER: _ClassVar[int]
    credentials: StoredCredentials
    token_response_metadata: _struct_pb2.Struct
    def __init__(self, credentials: _Optional[_Union[StoredCredentials, _Mapping]] = ..., token_response_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetTokenRequest(_message.Message):
    __slots__ = ("connection_id", "project_id", "refresh", "min_validity", "include_credentials")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    MIN_VALIDITY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    project_id: str
    refresh: RefreshMode
    min_validity: _duration_pb2.Duration
    include_credentials: bool
    def __init__(self, connection_id: _Optional[str] = ..., project_id: _Optional[str] = ..., refresh: _Optional[_Union[RefreshMode, str]] = ..., min_validity: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., include_credentials: _Optional[bool] = ...) -> None: ...

class GetTokenResponse(_message.Message):
    __slots__ = ("token", "source", "refreshed", "credentials", "stored")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REFRESHED_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    token: AccessToken
    source: TokenSource
    refreshed: bool
    credentials: Credentials
    stored: StoredCredentials
    def __init__(self, token: _Optional[_Union[AccessToken, _Mapping]] = ..., source: _Optional[_Union[TokenSource, str]] = ..., refreshed: _Optional[bool] = ..., credentials: _Optional[_Union[Credentials, _Mapping]] = ..., stored: _Optional[_Union[StoredCredentials, _Mapping]] = ...) -> None: ...

class RefreshTokenRequest(_message.Message):
    __slots__ = ("connection_id", "project_id", "reason", "skip_if_refreshed_within")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SKIP_IF_REFRESHED_WITHIN_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    project_id: str
    reason: RefreshReason
    skip_if_refreshed_within: _duration_pb2.Duration
    def __init__(self, connection_id: _Optional[str] = ..., project_id: _Optional[str] = ..., reason: _Optional[_Union[RefreshReason, str]] = ..., skip_if_refreshed_within: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class RefreshTokenResponse(_message.Message):
    __slots__ = ("token", "refreshed", "stored")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESHED_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    token: AccessToken
    refreshed: bool
    stored: StoredCredentials
    def __init__(self, token: _Optional[_Union[AccessToken, _Mapping]] = ..., refreshed: _Optional[bool] = ..., stored: _Optional[_Union[StoredCredentials, _Mapping]] = ...) -> None: ...

class RevokeCredentialsRequest(_message.Message):
    __slots__ = ("connection_id", "project_id")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    project_id: str
    def __init__(self, connection_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class RevokeCredentialsResponse(_message.Message):
    __slots__ = ("revoked_at_provider", "detail", "stored")
    REVOKED_AT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    revoked_at_provider: bool
    detail: str
    stored: StoredCredentials
    def __init__(self, revoked_at_provider: _Optional[bool] = ..., detail: _Optional[str] = ..., stored: _Optional[_Union[StoredCredentials, _Mapping]] = ...) -> None: ...

class DeleteCredentialsRequest(_message.Message):
    __slots__ = ("connection_id", "project_id", "revoke_at_provider")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKE_AT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    project_id: str
    revoke_at_provider: bool
    def __init__(self, connection_id: _Optional[str] = ..., project_id: _Optional[str] = ..., revoke_at_provider: _Optional[bool] = ...) -> None: ...
