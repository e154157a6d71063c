import datetime

from ampmesh.edge.v1 import options_pb2 as _options_pb2
from ampmesh.platform.v1 import provider_apps_pb2 as _provider_apps_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Connection(_message.Message):
    __slots__ = ("id", "project_id", "provider", "provider_app", "group", "consumer", "provider_workspace_ref", "provider_consumer_ref", "create_time", "update_time", "auth_scheme", "status", "oauth2_authorization_code", "api_key", "provider_metadata")
    class ProviderMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ProviderMetadataInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ProviderMetadataInfo, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_WORKSPACE_REF_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    AUTH_SCHEME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_AUTHORIZATION_CODE_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    provider: str
    provider_app: _provider_apps_pb2.ProviderApp
    group: Group
    consumer: Consumer
    provider_workspace_ref: str
    provider_consumer_ref: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    auth_scheme: str
    status: str
    oauth2_authorization_code: Oauth2AuthorizationCodeTokensOnly
    api_key: str
    provider_metadata: _containers.MessageMap[str, ProviderMetadataInfo]
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., provider: _Optional[str] = ..., provider_app: _Optional[_Union[_provider_apps_pb2.ProviderApp, _Mapping]] = ..., group: _Optional[_Union[Group, _Mapping]] = ..., consumer: _Optional[_Union[Consumer, _Mapping]] = ..., provider_workspace_ref: _Optional[str] = ..., provider_consumer_ref: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., auth_scheme: _Optional[str] = ..., status: _Optional[str] = ..., oauth2_authorization_code: _Optional[_Union[Oauth2AuthorizationCodeTokensOnly, _Mapping]] = ..., api_key: _Optional[str] = ..., provider_metadata: _Optional[_Mapping[str, ProviderMetadataInfo]] = ...) -> None: ...

class Group(_message.Message):
    __slots__ = ("group_ref", "group_name", "project_id", "create_time", "update_time")
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    group_ref: str
    group_name: str
    project_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., project_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Consumer(_message.Message):
    __slots__ = ("consumer_ref", "consumer_name", "project_id", "create_time", "update_time")
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    consumer_ref: str
    consumer_name: str
    project_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., project_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ProviderMetadataInfo(_message.Message):
    __slots__ = ("value", "source", "display_name")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    value: str
    source: str
    display_name: str
    def __init__(self, value: _Optional[str] = ..., source: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class Oauth2AuthorizationCodeTokensOnly(_message.Message):
    __slots__ = ("access_token", "refresh_token", "scopes")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    access_token: Oauth2Token
    refresh_token: Oauth2Token
    scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, access_token: _Optional[_Union[Oauth2Token, _Mapping]] = ..., refresh_token: _Optional[_Union[Oauth2Token, _Mapping]] = ..., scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class Oauth2Token(_message.Message):
    __slots__ = ("token", "issued_at", "expires_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token: str
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, token: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConnectionInput(_message.Message):
    __slots__ = ("provider_workspace_ref", "provider_metadata", "group_name", "group_ref", "consumer_name", "consumer_ref", "provider", "api_key", "custom_auth", "basic_auth", "oauth2_client_credentials", "oauth2_password_credentials", "oauth2_authorization_code")
    class ProviderMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ProviderMetadataInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ProviderMetadataInfo, _Mapping]] = ...) -> None: ...
    PROVIDER_WORKSPACE_REF_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_METADATA_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_AUTH_FIELD_NUMBER: _ClassVar[int]
    BASIC_AUTH_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_CLIENT_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_PASSWORD_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_AUTHORIZATION_CODE_FIELD_NUMBER: _ClassVar[int]
    provider_workspace_ref: str
    provider_metadata: _containers.MessageMap[str, ProviderMetadataInfo]
    group_name: str
    group_ref: str
    consumer_name: str
    consumer_ref: str
    provider: str
    api_key: str
    custom_auth: _struct_pb2.Struct
    basic_auth: BasicAuthCredentials
    oauth2_client_credentials: Oauth2ClientCredentials
    oauth2_password_credentials: Oauth2PasswordCredentials
    oauth2_authorization_code: Oauth2AuthorizationCodeTokensOnly
    def __init__(self, provider_workspace_ref: _Optional[str] = ..., provider_metadata: _Optional[_Mapping[str, ProviderMetadataInfo]] = ..., group_name: _Optional[str] = ..., group_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., provider: _Optional[str] = ..., api_key: _Optional[str] = ..., custom_auth: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., basic_auth: _Optional[_Union[BasicAuthCredentials, _Mapping]] = ..., oauth2_client_credentials: _Optional[_Union[Oauth2ClientCredentials, _Mapping]] = ..., oauth2_password_credentials: _Optional[_Union[Oauth2PasswordCredentials, _Mapping]] = ..., oauth2_authorization_code: _Optional[_Union[Oauth2AuthorizationCodeTokensOnly, _Mapping]] = ...) -> None: ...

class BasicAuthCredentials(_message.Message):
    __slots__ = ("username", "password")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class Oauth2ClientCredentials(_message.Message):
    __slots__ = ("client_id", "client_secret", "scopes")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    client_secret: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class Oauth2PasswordCredentials(_message.Message):
    __slots__ = ("username", "password", "client_id", "client_secret", "scopes")
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    username: str
    password: str
    client_id: str
    client_secret: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, username: _Optional[str] = ..., password: _Optional[str] = ..., client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ...) -> None: ...

class ListConnectionsRequest(_message.Message):
    __slots__ = ("project_id_or_name", "provider", "group_ref", "consumer_ref")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    provider: str
    group_ref: str
    consumer_ref: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., provider: _Optional[str] = ..., group_ref: _Optional[str] = ..., consumer_ref: _Optional[str] = ...) -> None: ...

class ListConnectionsResponse(_message.Message):
    __slots__ = ("connections",)
    CONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    connections: _containers.RepeatedCompositeFieldContainer[Connection]
    def __init__(self, connections: _Optional[_Iterable[_Union[Connection, _Mapping]]] = ...) -> None: ...

class GenerateConnectionRequest(_message.Message):
    __slots__ = ("project_id_or_name", "connection")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    connection: ConnectionInput
    def __init__(self, project_id_or_name: _Optional[str] = ..., connection: _Optional[_Union[ConnectionInput, _Mapping]] = ...) -> None: ...

class GetConnectionRequest(_message.Message):
    __slots__ = ("project_id_or_name", "connection_id", "include_creds", "include_refresh_token", "refresh")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CREDS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    connection_id: str
    include_creds: bool
    include_refresh_token: bool
    refresh: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., connection_id: _Optional[str] = ..., include_creds: _Optional[bool] = ..., include_refresh_token: _Optional[bool] = ..., refresh: _Optional[str] = ...) -> None: ...

class UpdateConnectionRequest(_message.Message):
    __slots__ = ("project_id_or_name", "connection_id", "update_mask", "connection")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    connection_id: str
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    connection: ConnectionInput
    def __init__(self, project_id_or_name: _Optional[str] = ..., connection_id: _Optional[str] = ..., update_mask: _Optional[_Iterable[str]] = ..., connection: _Optional[_Union[ConnectionInput, _Mapping]] = ...) -> None: ...

class DeleteConnectionRequest(_message.Message):
    __slots__ = ("project_id_or_name", "connection_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    connection_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., connection_id: _Optional[str] = ...) -> None: ...

class OauthConnectRequest(_message.Message):
    __slots__ = ("project_id_or_name", "provider", "group_ref", "group_name", "consumer_ref", "consumer_name", "provider_workspace_ref", "provider_metadata", "provider_app_id", "enable_csrf_protection")
    class ProviderMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ProviderMetadataInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ProviderMetadataInfo, _Mapping]] = ...) -> None: ...
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_WORKSPACE_REF_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_METADATA_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLE_CSRF_PROTECTION_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    provider: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    provider_workspace_ref: str
    provider_metadata: _containers.MessageMap[str, ProviderMetadataInfo]
    provider_app_id: str
    enable_csrf_protection: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., provider: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., provider_workspace_ref: _Optional[str] = ..., provider_metadata: _Optional[_Mapping[str, ProviderMetadataInfo]] = ..., provider_app_id: _Optional[str] = ..., enable_csrf_protection: _Optional[bool] = ...) -> None: ...

class OauthUpdateRequest(_message.Message):
    __slots__ = ("project_id_or_name", "connection_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    connection_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., connection_id: _Optional[str] = ...) -> None: ...

class CustomAuthConnectRequest(_message.Message):
    __slots__ = ("project_id_or_name", "provider", "group_ref", "group_name", "consumer_ref", "consumer_name", "provider_metadata", "provider_app_id", "custom_auth", "session_id", "callback_params")
    class ProviderMetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ProviderMetadataInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ProviderMetadataInfo, _Mapping]] = ...) -> None: ...
    class CallbackParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_METADATA_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_AUTH_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_PARAMS_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    provider: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    provider_metadata: _containers.MessageMap[str, ProviderMetadataInfo]
    provider_app_id: str
    custom_auth: _struct_pb2.Struct
    session_id: str
    callback_params: _containers.ScalarMap[str, str]
    def __init__(self, project_id_or_name: _Optional[str] = ..., provider: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., provider_metadata: _Optional[_Mapping[str, ProviderMetadataInfo]] = ..., provider_app_id: _Optional[str] = ..., custom_auth: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., session_id: _Optional[str] = ..., callback_params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CustomAuthConnectResponse(_message.Message):
    __slots__ = ("redirect", "connection")
    REDIRECT_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    redirect: CustomAuthRedirect
    connection: Connection
    def __init__(self, redirect: _Optional[_Union[CustomAuthRedirect, _Mapping]] = ..., connection: _Optional[_Union[Connection, _Mapping]] = ...) -> None: ...

class CustomAuthRedirect(_message.Message):
    __slots__ = ("url", "session_id")
    URL_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    url: str
    session_id: str
    def __init__(self, url: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class OauthCallbackRequest(_message.Message):
    __slots__ = ("code", "state", "error", "error_description", "error_uri", "scope", "iss", "realm_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ERROR_URI_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    ISS_FIELD_NUMBER: _ClassVar[int]
    REALM_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    state: str
    error: str
    error_description: str
    error_uri: str
    scope: str
    iss: str
    realm_id: str
    def __init__(self, code: _Optional[str] = ..., state: _Optional[str] = ..., error: _Optional[str] = ..., error_description: _Optional[str] = ..., error_uri: _Optional[str] = ..., scope: _Optional[str] = ..., iss: _Optional[str] = ..., realm_id: _Optional[str] = ...) -> None: ...
