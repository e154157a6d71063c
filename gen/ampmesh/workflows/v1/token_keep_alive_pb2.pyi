import datetime

from ampmesh.events.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TokenKeepAliveInput(_message.Message):
    __slots__ = ("meta", "idle_threshold", "provider", "batch_size", "concurrency", "after_connection_id")
    META_FIELD_NUMBER: _ClassVar[int]
    IDLE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    AFTER_CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    idle_threshold: _duration_pb2.Duration
    provider: str
    batch_size: int
    concurrency: int
    after_connection_id: str
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., idle_threshold: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., provider: _Optional[str] = ..., batch_size: _Optional[int] = ..., concurrency: _Optional[int] = ..., after_connection_id: _Optional[str] = ...) -> None: ...

class TokenKeepAliveOutput(_message.Message):
    __slots__ = ("counts",)
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    counts: TokenKeepAliveCounts
    def __init__(self, counts: _Optional[_Union[TokenKeepAliveCounts, _Mapping]] = ...) -> None: ...

class TokenKeepAliveBatchInput(_message.Message):
    __slots__ = ("meta", "idle_threshold", "provider", "batch_size", "concurrency", "after_connection_id")
    META_FIELD_NUMBER: _ClassVar[int]
    IDLE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    AFTER_CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    meta: _envelope_pb2.EventMeta
    idle_threshold: _duration_pb2.Duration
    provider: str
    batch_size: int
    concurrency: int
    after_connection_id: str
    def __init__(self, meta: _Optional[_Union[_envelope_pb2.EventMeta, _Mapping]] = ..., idle_threshold: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., provider: _Optional[str] = ..., batch_size: _Optional[int] = ..., concurrency: _Optional[int] = ..., after_connection_id: _Optional[str] = ...) -> None: ...

class TokenKeepAliveBatchOutput(_message.Message):
    __slots__ = ("counts", "last_connection_id", "done")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    LAST_CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    counts: TokenKeepAliveCounts
    last_connection_id: str
    done: bool
    def __init__(self, counts: _Optional[_Union[TokenKeepAliveCounts, _Mapping]] = ..., last_connection_id: _Optional[str] = ..., done: _Optional[bool] = ...) -> None: ...

class TokenKeepAliveCounts(_message.Message):
    __slots__ = ("examined", "refreshed", "skipped", "failed", "bad_credentials")
    EXAMINED_FIELD_NUMBER: _ClassVar[int]
    REFRESHED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    BAD_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    examined: int
    refreshed: int
    skipped: int
    failed: int
    bad_credentials: int
    def __init__(self, examined: _Optional[int] = ..., refreshed: _Optional[int] = ..., skipped: _Optional[int] = ..., failed: _Optional[int] = ..., bad_credentials: _Optional[int] = ...) -> None: ...
