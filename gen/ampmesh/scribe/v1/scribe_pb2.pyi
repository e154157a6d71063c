import datetime

from ampmesh.events.v1 import envelope_pb2 as _envelope_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeadLetterState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEAD_LETTER_STATE_UNSPECIFIED: _ClassVar[DeadLetterState]
    DEAD_LETTER_STATE_PENDING: _ClassVar[DeadLetterState]
    DEAD_LETTER_STATE_RESOLVED: _ClassVar[DeadLetterState]
DEAD_LETTER_STATE_UNSPECIFIED: DeadLetterState
DEAD_LETTER_STATE_PENDING: DeadLetterState
DEAD_LETTER_STATE_RESOLVED: DeadLetterState

class EventTypeIngestion(_message.Message):
    __slots__ = ("event_type", "persisted", "duplicates_skipped", "dead_lettered", "dead_letters_pending", "last_event_time", "last_persist_time")
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PERSISTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_PENDING_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_PERSIST_TIME_FIELD_NUMBER: _ClassVar[int]
    event_type: str
    persisted: int
    duplicates_skipped: int
    dead_lettered: int
    dead_letters_pending: int
    last_event_time: _timestamp_pb2.Timestamp
    last_persist_time: _timestamp_pb2.Timestamp
    def __init__(self, event_type: _Optional[str] = ..., persisted: _Optional[int] = ..., duplicates_skipped: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., dead_letters_pending: _Optional[int] = ..., last_event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_persist_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IngestionStatus(_message.Message):
    __slots__ = ("project_id", "event_types", "count_start_time")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    COUNT_START_TIME_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    event_types: _containers.RepeatedCompositeFieldContainer[EventTypeIngestion]
    count_start_time: _timestamp_pb2.Timestamp
    def __init__(self, project_id: _Optional[str] = ..., event_types: _Optional[_Iterable[_Union[EventTypeIngestion, _Mapping]]] = ..., count_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("id", "project_id", "event_id", "event_type", "idempotency_key", "subscription", "data", "attributes", "envelope", "error", "delivery_attempts", "create_time", "state", "retry_count", "last_retry_time")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_RETRY_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    event_id: str
    event_type: str
    idempotency_key: str
    subscription: str
    data: bytes
    attributes: _containers.ScalarMap[str, str]
    envelope: _envelope_pb2.Envelope
    error: str
    delivery_attempts: int
    create_time: _timestamp_pb2.Timestamp
    state: DeadLetterState
    retry_count: int
    last_retry_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., subscription: _Optional[str] = ..., data: _Optional[bytes] = ..., attributes: _Optional[_Mapping[str, str]] = ..., envelope: _Optional[_Union[_envelope_pb2.Envelope, _Mapping]] = ..., error: _Optional[str] = ..., delivery_attempts: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[_Union[DeadLetterState, str]] = ..., retry_count: _Optional[int] = ..., last_retry_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetIngestionStatusRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("project_id", "event_type", "state", "page_size", "page_token")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    event_type: str
    state: DeadLetterState
    page_size: int
    page_token: str
    def __init__(self, project_id: _Optional[str] = ..., event_type: _Optional[str] = ..., state: _Optional[_Union[DeadLetterState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters", "next_page_token")
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    next_page_token: str
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RetryDeadLettersRequest(_message.Message):
    __slots__ = ("ids", "project_id", "event_type")
    IDS_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    project_id: str
    event_type: str
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., project_id: _Optional[str] = ..., event_type: _Optional[str] = ...) -> None: ...

class RetryDeadLettersResponse(_message.Message):
    __slots__ = ("retried", "persisted", "duplicates_skipped", "failed", "still_failing")
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    PERSISTED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    STILL_FAILING_FIELD_NUMBER: _ClassVar[int]
    retried: int
    persisted: int
    duplicates_skipped: int
    failed: int
    still_failing: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    def __init__(self, retried: _Optional[int] = ..., persisted: _Optional[int] = ..., duplicates_skipped: _Optional[int] = ..., failed: _Optional[int] = ..., still_failing: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ...) -> None: ...
