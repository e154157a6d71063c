from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AuthorizeRequest(_message.Message):
    __slots__ = ("token_rejected",)
    TOKEN_REJECTED_FIELD_NUMBER: _ClassVar[int]
    token_rejected: bool
    def __init__(self, token_rejected: _Optional[bool] = ...) -> None: ...

class Decision(_message.Message):
    __slots__ = ("scheme", "authority", "path_prefix", "headers", "query", "installation_id", "connection_id", "project_id", "provider", "cache_seconds", "calls", "throttle")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    AUTHORITY_FIELD_NUMBER: _ClassVar[int]
    PATH_PREFIX_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CACHE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    scheme: str
    authority: str
    path_prefix: str
    headers: _containers.ScalarMap[str, str]
    query: str
    installation_id: str
    connection_id: str
    project_id: str
    provider: str
    cache_seconds: float
    calls: int
    throttle: bool
    def __init__(self, scheme: _Optional[str] = ..., authority: _Optional[str] = ..., path_prefix: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., query: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., project_id: _Optional[str] = ..., provider: _Optional[str] = ..., cache_seconds: _Optional[float] = ..., calls: _Optional[int] = ..., throttle: _Optional[bool] = ...) -> None: ...

class RecordHoldRequest(_message.Message):
    __slots__ = ("connection_id", "retry_after")
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    connection_id: str
    retry_after: str
    def __init__(self, connection_id: _Optional[str] = ..., retry_after: _Optional[str] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("retry_at", "retryable", "retry_after_seconds")
    RETRY_AT_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    retry_at: str
    retryable: bool
    retry_after_seconds: int
    def __init__(self, retry_at: _Optional[str] = ..., retryable: _Optional[bool] = ..., retry_after_seconds: _Optional[int] = ...) -> None: ...
