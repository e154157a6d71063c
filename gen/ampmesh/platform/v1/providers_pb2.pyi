from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListProvidersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers",)
    class ProvidersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ProviderInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ProviderInfo, _Mapping]] = ...) -> None: ...
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.MessageMap[str, ProviderInfo]
    def __init__(self, providers: _Optional[_Mapping[str, ProviderInfo]] = ...) -> None: ...

class GetProviderRequest(_message.Message):
    __slots__ = ("provider",)
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    provider: str
    def __init__(self, provider: _Optional[str] = ...) -> None: ...

class ProviderInfo(_message.Message):
    __slots__ = ("name", "auth_type", "base_url", "default_module", "oauth2_opts", "api_key_opts", "basic_opts", "custom_opts", "support", "auth_health_check", "display_name", "post_auth_info_needed", "media", "labels", "subscribe_requirements", "modules", "metadata", "provider_app_metadata")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ModulesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ModuleInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ModuleInfo, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    AUTH_TYPE_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODULE_FIELD_NUMBER: _ClassVar[int]
    OAUTH2_OPTS_FIELD_NUMBER: _ClassVar[int]
    API_KEY_OPTS_FIELD_NUMBER: _ClassVar[int]
    BASIC_OPTS_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_OPTS_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    AUTH_HEALTH_CHECK_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    POST_AUTH_INFO_NEEDED_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    MODULES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_APP_METADATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    auth_type: str
    base_url: str
    default_module: str
    oauth2_opts: Oauth2Opts
    api_key_opts: ApiKeyOpts
    basic_opts: BasicAuthOpts
    custom_opts: CustomAuthOpts
    support: Support
    auth_health_check: AuthHealthCheck
    display_name: str
    post_auth_info_needed: bool
    media: Media
    labels: _containers.ScalarMap[str, str]
    subscribe_requirements: SubscribeRequirements
    modules: _containers.MessageMap[str, ModuleInfo]
    metadata: ProviderInfoMetadata
    provider_app_metadata: ProviderAppMetadataFields
    def __init__(self, name: _Optional[str] = ..., auth_type: _Optional[str] = ..., base_url: _Optional[str] = ..., default_module: _Optional[str] = ..., oauth2_opts: _Optional[_Union[Oauth2Opts, _Mapping]] = ..., api_key_opts: _Optional[_Union[ApiKeyOpts, _Mapping]] = ..., basic_opts: _Optional[_Union[BasicAuthOpts, _Mapping]] = ..., custom_opts: _Optional[_Union[CustomAuthOpts, _Mapping]] = ..., support: _Optional[_Union[Support, _Mapping]] = ..., auth_health_check: _Optional[_Union[AuthHealthCheck, _Mapping]] = ..., display_name: _Optional[str] = ..., post_auth_info_needed: _Optional[bool] = ..., media: _Optional[_Union[Media, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., subscribe_requirements: _Optional[_Union[SubscribeRequirements, _Mapping]] = ..., modules: _Optional[_Mapping[str, ModuleInfo]] = ..., metadata: _Optional[_Union[ProviderInfoMetadata, _Mapping]] = ..., provider_app_metadata: _Optional[_Union[ProviderAppMetadataFields, _Mapping]] = ...) -> None: ...

class Support(_message.Message):
    __slots__ = ("bulk_write", "proxy", "read", "subscribe", "write", "delete", "subscribe_support", "batch_write", "search")
    BULK_WRITE_FIELD_NUMBER: _ClassVar[int]
    PROXY_FIELD_NUMBER: _ClassVar[int]
    READ_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_SUPPORT_FIELD_NUMBER: _ClassVar[int]
    BATCH_WRITE_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    bulk_write: BulkWriteSupport
    proxy: bool
    read: bool
    subscribe: bool
    write: bool
    delete: bool
    subscribe_support: SubscribeSupport
    batch_write: BatchWriteSupport
    search: SearchSupport
    def __init__(self, bulk_write: _Optional[_Union[BulkWriteSupport, _Mapping]] = ..., proxy: _Optional[bool] = ..., read: _Optional[bool] = ..., subscribe: _Optional[bool] = ..., write: _Optional[bool] = ..., delete: _Optional[bool] = ..., subscribe_support: _Optional[_Union[SubscribeSupport, _Mapping]] = ..., batch_write: _Optional[_Union[BatchWriteSupport, _Mapping]] = ..., search: _Optional[_Union[SearchSupport, _Mapping]] = ...) -> None: ...

class SearchSupport(_message.Message):
    __slots__ = ("operators",)
    OPERATORS_FIELD_NUMBER: _ClassVar[int]
    operators: SearchOperators
    def __init__(self, operators: _Optional[_Union[SearchOperators, _Mapping]] = ...) -> None: ...

class SearchOperators(_message.Message):
    __slots__ = ("equals",)
    EQUALS_FIELD_NUMBER: _ClassVar[int]
    equals: bool
    def __init__(self, equals: _Optional[bool] = ...) -> None: ...

class BulkWriteSupport(_message.Message):
    __slots__ = ("insert", "update", "upsert", "delete")
    INSERT_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    UPSERT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    insert: bool
    update: bool
    upsert: bool
    delete: bool
    def __init__(self, insert: _Optional[bool] = ..., update: _Optional[bool] = ..., upsert: _Optional[bool] = ..., delete: _Optional[bool] = ...) -> None: ...

class SubscribeSupport(_message.Message):
    __slots__ = ("create", "update", "delete", "pass_through")
    CREATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    PASS_THROUGH_FIELD_NUMBER: _ClassVar[int]
    create: bool
    update: bool
    delete: bool
    pass_through: bool
    def __init__(self, create: _Optional[bool] = ..., update: _Optional[bool] = ..., delete: _Optional[bool] = ..., pass_through: _Optional[bool] = ...) -> None: ...

class SubscribeRequirements(_message.Message):
    __slots__ = ("registration", "maintenance", "post_process", "subscribe_by_api")
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    MAINTENANCE_FIELD_NUMBER: _ClassVar[int]
    POST_PROCESS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_BY_API_FIELD_NUMBER: _ClassVar[int]
    registration: bool
    maintenance: bool
    post_process: bool
    subscribe_by_api: bool
    def __init__(self, registration: _Optional[bool] = ..., maintenance: _Optional[bool] = ..., post_process: _Optional[bool] = ..., subscribe_by_api: _Optional[bool] = ...) -> None: ...

class BatchWriteSupport(_message.Message):
    __slots__ = ("delete", "create", "update", "upsert")
    DELETE_FIELD_NUMBER: _ClassVar[int]
    CREATE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    UPSERT_FIELD_NUMBER: _ClassVar[int]
    delete: BatchWriteSupportConfig
    create: BatchWriteSupportConfig
    update: BatchWriteSupportConfig
    upsert: BatchWriteSupportConfig
    def __init__(self, delete: _Optional[_Union[BatchWriteSupportConfig, _Mapping]] = ..., create: _Optional[_Union[BatchWriteSupportConfig, _Mapping]] = ..., update: _Optional[_Union[BatchWriteSupportConfig, _Mapping]] = ..., upsert: _Optional[_Union[BatchWriteSupportConfig, _Mapping]] = ...) -> None: ...

class BatchWriteSupportConfig(_message.Message):
    __slots__ = ("supported", "default_record_limit", "object_record_limits")
    class ObjectRecordLimitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_RECORD_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OBJECT_RECORD_LIMITS_FIELD_NUMBER: _ClassVar[int]
    supported: bool
    default_record_limit: int
    object_record_limits: _containers.ScalarMap[str, int]
    def __init__(self, supported: _Optional[bool] = ..., default_record_limit: _Optional[int] = ..., object_record_limits: _Optional[_Mapping[str, int]] = ...) -> None: ...

class TokenMetadataFields(_message.Message):
    __slots__ = ("workspace_ref_field", "consumer_ref_field", "scopes_field", "other_fields")
    WORKSPACE_REF_FIELD_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELDS_FIELD_NUMBER: _ClassVar[int]
    workspace_ref_field: str
    consumer_ref_field: str
    scopes_field: str
    other_fields: _containers.RepeatedCompositeFieldContainer[TokenMetadataOtherField]
    def __init__(self, workspace_ref_field: _Optional[str] = ..., consumer_ref_field: _Optional[str] = ..., scopes_field: _Optional[str] = ..., other_fields: _Optional[_Iterable[_Union[TokenMetadataOtherField, _Mapping]]] = ...) -> None: ...

class TokenMetadataOtherField(_message.Message):
    __slots__ = ("name", "display_name", "path", "capture")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    path: str
    capture: str
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., path: _Optional[str] = ..., capture: _Optional[str] = ...) -> None: ...

class Media(_message.Message):
    __slots__ = ("regular", "dark_mode")
    REGULAR_FIELD_NUMBER: _ClassVar[int]
    DARK_MODE_FIELD_NUMBER: _ClassVar[int]
    regular: MediaTypeRegular
    dark_mode: MediaTypeDarkMode
    def __init__(self, regular: _Optional[_Union[MediaTypeRegular, _Mapping]] = ..., dark_mode: _Optional[_Union[MediaTypeDarkMode, _Mapping]] = ...) -> None: ...

class MediaTypeDarkMode(_message.Message):
    __slots__ = ("icon_url", "logo_url")
    ICON_URL_FIELD_NUMBER: _ClassVar[int]
    LOGO_URL_FIELD_NUMBER: _ClassVar[int]
    icon_url: str
    logo_url: str
    def __init__(self, icon_url: _Optional[str] = ..., logo_url: _Optional[str] = ...) -> None: ...

class MediaTypeRegular(_message.Message):
    __slots__ = ("icon_url", "logo_url")
    ICON_URL_FIELD_NUMBER: _ClassVar[int]
    LOGO_URL_FIELD_NUMBER: _ClassVar[int]
    icon_url: str
    logo_url: str
    def __init__(self, icon_url: _Optional[str] = ..., logo_url: _Optional[str] = ...) -> None: ...

class Oauth2Opts(_message.Message):
    __slots__ = ("grant_type", "auth_url", "token_url", "explicit_scopes_required", "explicit_workspace_required", "audience", "scope_mappings", "token_metadata_fields", "docs_url", "auth_url_params", "access_token_opts", "keep_alive_interval_hours")
    class ScopeMappingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class AuthUrlParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    GRANT_TYPE_FIELD_NUMBER: _ClassVar[int]
    AUTH_URL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_URL_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_SCOPES_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    EXPLICIT_WORKSPACE_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_MAPPINGS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_METADATA_FIELDS_FIELD_NUMBER: _ClassVar[int]
    DOCS_URL_FIELD_NUMBER: _ClassVar[int]
    AUTH_URL_PARAMS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_TOKEN_OPTS_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_INTERVAL_HOURS_FIELD_NUMBER: _ClassVar[int]
    grant_type: str
    auth_url: str
    token_url: str
    explicit_scopes_required: bool
    explicit_workspace_required: bool
    audience: _containers.RepeatedScalarFieldContainer[str]
    scope_mappings: _containers.ScalarMap[str, str]
    token_metadata_fields: TokenMetadataFields
    docs_url: str
    auth_url_params: _containers.ScalarMap[str, str]
    access_token_opts: AccessTokenOpts
    keep_alive_interval_hours: int
    def __init__(self, grant_type: _Optional[str] = ..., auth_url: _Optional[str] = ..., token_url: _Optional[str] = ..., explicit_scopes_required: _Optional[bool] = ..., explicit_workspace_required: _Optional[bool] = ..., audience: _Optional[_Iterable[str]] = ..., scope_mappings: _Optional[_Mapping[str, str]] = ..., token_metadata_fields: _Optional[_Union[TokenMetadataFields, _Mapping]] = ..., docs_url: _Optional[str] = ..., auth_url_params: _Optional[_Mapping[str, str]] = ..., access_token_opts: _Optional[_Union[AccessTokenOpts, _Mapping]] = ..., keep_alive_interval_hours: _Optional[int] = ...) -> None: ...

class AccessTokenOpts(_message.Message):
    __slots__ = ("attachment_type", "header", "docs_url")
    ATTACHMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DOCS_URL_FIELD_NUMBER: _ClassVar[int]
    attachment_type: str
    header: AccessTokenOptsHeader
    docs_url: str
    def __init__(self, attachment_type: _Optional[str] = ..., header: _Optional[_Union[AccessTokenOptsHeader, _Mapping]] = ..., docs_url: _Optional[str] = ...) -> None: ...

class AccessTokenOptsHeader(_message.Message):
    __slots__ = ("name", "value_prefix")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    name: str
    value_prefix: str
    def __init__(self, name: _Optional[str] = ..., value_prefix: _Optional[str] = ...) -> None: ...

class ApiKeyOpts(_message.Message):
    __slots__ = ("attachment_type", "query", "header", "docs_url")
    ATTACHMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DOCS_URL_FIELD_NUMBER: _ClassVar[int]
    attachment_type: str
    query: ApiKeyOptsQuery
    header: ApiKeyOptsHeader
    docs_url: str
    def __init__(self, attachment_type: _Optional[str] = ..., query: _Optional[_Union[ApiKeyOptsQuery, _Mapping]] = ..., header: _Optional[_Union[ApiKeyOptsHeader, _Mapping]] = ..., docs_url: _Optional[str] = ...) -> None: ...

class ApiKeyOptsQuery(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ApiKeyOptsHeader(_message.Message):
    __slots__ = ("name", "value_prefix")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_PREFIX_FIELD_NUMBER: _ClassVar[int]
    name: str
    value_prefix: str
    def __init__(self, name: _Optional[str] = ..., value_prefix: _Optional[str] = ...) -> None: ...

class BasicAuthOpts(_message.Message):
    __slots__ = ("api_key_as_basic", "api_key_as_basic_opts", "docs_url")
    API_KEY_AS_BASIC_FIELD_NUMBER: _ClassVar[int]
    API_KEY_AS_BASIC_OPTS_FIELD_NUMBER: _ClassVar[int]
    DOCS_URL_FIELD_NUMBER: _ClassVar[int]
    api_key_as_basic: bool
    api_key_as_basic_opts: ApiKeyAsBasicOpts
    docs_url: str
    def __init__(self, api_key_as_basic: _Optional[bool] = ..., api_key_as_basic_opts: _Optional[_Union[ApiKeyAsBasicOpts, _Mapping]] = ..., docs_url: _Optional[str] = ...) -> None: ...

class ApiKeyAsBasicOpts(_message.Message):
    __slots__ = ("field_used", "key_format")
    FIELD_USED_FIELD_NUMBER: _ClassVar[int]
    KEY_FORMAT_FIELD_NUMBER: _ClassVar[int]
    field_used: str
    key_format: str
    def __init__(self, field_used: _Optional[str] = ..., key_format: _Optional[str] = ...) -> None: ...

class CustomAuthOpts(_message.Message):
    __slots__ = ("headers", "query_params", "inputs", "provider_inputs", "multi_step")
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    QUERY_PARAMS_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_INPUTS_FIELD_NUMBER: _ClassVar[int]
    MULTI_STEP_FIELD_NUMBER: _ClassVar[int]
    headers: _containers.RepeatedCompositeFieldContainer[CustomAuthHeader]
    query_params: _containers.RepeatedCompositeFieldContainer[CustomAuthQueryParam]
    inputs: _containers.RepeatedCompositeFieldContainer[CustomAuthInput]
    provider_inputs: _containers.RepeatedCompositeFieldContainer[CustomAuthInput]
    multi_step: bool
    def __init__(self, headers: _Optional[_Iterable[_Union[CustomAuthHeader, _Mapping]]] = ..., query_params: _Optional[_Iterable[_Union[CustomAuthQueryParam, _Mapping]]] = ..., inputs: _Optional[_Iterable[_Union[CustomAuthInput, _Mapping]]] = ..., provider_inputs: _Optional[_Iterable[_Union[CustomAuthInput, _Mapping]]] = ..., multi_step: _Optional[bool] = ...) -> None: ...

class CustomAuthHeader(_message.Message):
    __slots__ = ("name", "value_template")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value_template: str
    def __init__(self, name: _Optional[str] = ..., value_template: _Optional[str] = ...) -> None: ...

class CustomAuthQueryParam(_message.Message):
    __slots__ = ("name", "value_template")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value_template: str
    def __init__(self, name: _Optional[str] = ..., value_template: _Optional[str] = ...) -> None: ...

class CustomAuthInput(_message.Message):
    __slots__ = ("name", "display_name", "prompt", "docs_url", "field_type", "options")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    DOCS_URL_FIELD_NUMBER: _ClassVar[int]
    FIELD_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    prompt: str
    docs_url: str
    field_type: str
    options: _containers.RepeatedCompositeFieldContainer[CustomAuthInputOption]
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., prompt: _Optional[str] = ..., docs_url: _Optional[str] = ..., field_type: _Optional[str] = ..., options: _Optional[_Iterable[_Union[CustomAuthInputOption, _Mapping]]] = ...) -> None: ...

class CustomAuthInputOption(_message.Message):
    __slots__ = ("value", "label")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    value: str
    label: str
    def __init__(self, value: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class AuthHealthCheck(_message.Message):
    __slots__ = ("url", "method", "success_status_codes")
    URL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_STATUS_CODES_FIELD_NUMBER: _ClassVar[int]
    url: str
    method: str
    success_status_codes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, url: _Optional[str] = ..., method: _Optional[str] = ..., success_status_codes: _Optional[_Iterable[int]] = ...) -> None: ...

class ModuleInfo(_message.Message):
    __slots__ = ("display_name", "base_url", "support", "subscribe_requirements")
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    display_name: str
    base_url: str
    support: Support
    subscribe_requirements: SubscribeRequirements
    def __init__(self, display_name: _Optional[str] = ..., base_url: _Optional[str] = ..., support: _Optional[_Union[Support, _Mapping]] = ..., subscribe_requirements: _Optional[_Union[SubscribeRequirements, _Mapping]] = ...) -> None: ...

class ProviderInfoMetadata(_message.Message):
    __slots__ = ("input", "post_authentication")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    POST_AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    input: _containers.RepeatedCompositeFieldContainer[MetadataItemInput]
    post_authentication: _containers.RepeatedCompositeFieldContainer[MetadataItemPostAuthentication]
    def __init__(self, input: _Optional[_Iterable[_Union[MetadataItemInput, _Mapping]]] = ..., post_authentication: _Optional[_Iterable[_Union[MetadataItemPostAuthentication, _Mapping]]] = ...) -> None: ...

class MetadataItemInput(_message.Message):
    __slots__ = ("name", "display_name", "prompt", "default_value", "docs_url", "module_dependencies")
    class ModuleDependenciesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ModuleDependency
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ModuleDependency, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DOCS_URL_FIELD_NUMBER: _ClassVar[int]
    MODULE_DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    prompt: str
    default_value: str
    docs_url: str
    module_dependencies: _containers.MessageMap[str, ModuleDependency]
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., prompt: _Optional[str] = ..., default_value: _Optional[str] = ..., docs_url: _Optional[str] = ..., module_dependencies: _Optional[_Mapping[str, ModuleDependency]] = ...) -> None: ...

class MetadataItemPostAuthentication(_message.Message):
    __slots__ = ("name", "module_dependencies")
    class ModuleDependenciesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ModuleDependency
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ModuleDependency, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODULE_DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    module_dependencies: _containers.MessageMap[str, ModuleDependency]
    def __init__(self, name: _Optional[str] = ..., module_dependencies: _Optional[_Mapping[str, ModuleDependency]] = ...) -> None: ...

class ModuleDependency(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProviderAppMetadataFields(_message.Message):
    __slots__ = ("auth_query_params", "provider_params")
    AUTH_QUERY_PARAMS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_PARAMS_FIELD_NUMBER: _ClassVar[int]
    auth_query_params: _containers.RepeatedCompositeFieldContainer[MetadataItemInput]
    provider_params: _containers.RepeatedCompositeFieldContainer[MetadataItemInput]
    def __init__(self, auth_query_params: _Optional[_Iterable[_Union[MetadataItemInput, _Mapping]]] = ..., provider_params: _Optional[_Iterable[_Union[MetadataItemInput, _Mapping]]] = ...) -> None: ...
