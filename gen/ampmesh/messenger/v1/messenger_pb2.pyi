import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_PENDING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_RETRYING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_SUCCEEDED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_FAILED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_HELD: _ClassVar[DeliveryStatus]

class DeliveryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_KIND_UNSPECIFIED: _ClassVar[DeliveryKind]
    DELIVERY_KIND_READ_RESULT: _ClassVar[DeliveryKind]
    DELIVERY_KIND_NOTIFICATION: _ClassVar[DeliveryKind]

class AttemptOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_OUTCOME_UNSPECIFIED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_SUCCESS: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_RATE_LIMITED: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_SERVER_ERROR: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_CLIENT_ERROR: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_TIMEOUT: _ClassVar[AttemptOutcome]
    ATTEMPT_OUTCOME_NETWORK_ERROR: _ClassVar[AttemptOutcome]

class AttemptTrigger(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTEMPT_TRIGGER_UNSPECIFIED: _ClassVar[AttemptTrigger]
    ATTEMPT_TRIGGER_AUTOMATIC: _ClassVar[AttemptTrigger]
    ATTEMPT_TRIGGER_REDELIVER: _ClassVar[AttemptTrigger]
    ATTEMPT_TRIGGER_REPLAY: _ClassVar[AttemptTrigger]
    ATTEMPT_TRIGGER_ENDPOINT_ENABLED: _ClassVar[AttemptTrigger]

class EndpointState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENDPOINT_STATE_UNSPECIFIED: _ClassVar[EndpointState]
    ENDPOINT_STATE_ENABLED: _ClassVar[EndpointState]
    ENDPOINT_STATE_FAILING: _ClassVar[EndpointState]
    ENDPOINT_STATE_DISABLED: _ClassVar[EndpointState]
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_PENDING: DeliveryStatus
DELIVERY_STATUS_RETRYING: DeliveryStatus
DELIVERY_STATUS_SUCCEEDED: DeliveryStatus
DELIVERY_STATUS_FAILED: DeliveryStatus
DELIVERY_STATUS_HELD: DeliveryStatus
DELIVERY_KIND_UNSPECIFIED: DeliveryKind
DELIVERY_KIND_READ_RESULT: DeliveryKind
DELIVERY_KIND_NOTIFICATION: DeliveryKind
ATTEMPT_OUTCOME_UNSPECIFIED: AttemptOutcome
ATTEMPT_OUTCOME_SUCCESS: AttemptOutcome
ATTEMPT_OUTCOME_RATE_LIMITED: AttemptOutcome
ATTEMPT_OUTCOME_SERVER_ERROR: AttemptOutcome
ATTEMPT_OUTCOME_CLIENT_ERROR: AttemptOutcome
ATTEMPT_OUTCOME_TIMEOUT: AttemptOutcome
ATTEMPT_OUTCOME_NETWORK_ERROR: AttemptOutcome
ATTEMPT_TRIGGER_UNSPECIFIED: AttemptTrigger
ATTEMPT_TRIGGER_AUTOMATIC: AttemptTrigger
ATTEMPT_TRIGGER_REDELIVER: AttemptTrigger
ATTEMPT_TRIGGER_REPLAY: AttemptTrigger
ATTEMPT_TRIGGER_ENDPOINT_ENABLED: AttemptTrigger
ENDPOINT_STATE_UNSPECIFIED: EndpointState
ENDPOINT_STATE_ENABLED: EndpointState
ENDPOINT_STATE_FAILING: EndpointState
ENDPOINT_STATE_DISABLED: EndpointState

class Delivery(_message.Message):
    __slots__ = ("id", "project_id", "destination_id", "destination_name", "url", "kind", "event_type", "event_id", "operation_id", "installation_id", "object_name", "status", "attempt_count", "create_time", "next_attempt_time", "last_attempt_time", "complete_time", "last_status_code", "last_error", "payload_bytes", "record_count", "attempts", "body")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    destination_id: str
    destination_name: str
    url: str
    kind: DeliveryKind
    event_type: str
    event_id: str
    operation_id: str
    installation_id: str
    object_name: str
    status: DeliveryStatus
    attempt_count: int
    create_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    last_attempt_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    last_status_code: int
    last_error: str
    payload_bytes: int
    record_count: int
    attempts: _containers.RepeatedCompositeFieldContainer[DeliveryAttempt]
    body: bytes
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., destination_id: _Optional[str] = ..., destination_name: _Optional[str] = ..., url: _Optional[str] = ..., kind: _Optional[_Union[DeliveryKind, str]] = ..., event_type: _Optional[str] = ..., event_id: _Optional[str] = ..., operation_id: _Optional[str] = ..., installation_id: _Optional[str] = ..., object_name: _Optional[str] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., attempt_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_status_code: _Optional[int] = ..., last_error: _Optional[str] = ..., payload_bytes: _Optional[int] = ..., record_count: _Optional[int] = ..., attempts: _Optional[_Iterable[_Union[DeliveryAttempt, _Mapping]]] = ..., body: _Optional[bytes] = ...) -> None: ...

class DeliveryAttempt(_message.Message):
    __slots__ = ("number", "trigger", "start_time", "duration", "outcome", "status_code", "response_body", "retry_after", "error")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    number: int
    trigger: AttemptTrigger
    start_time: _timestamp_pb2.Timestamp
    duration: _duration_pb2.Duration
    outcome: AttemptOutcome
    status_code: int
    response_body: str
    retry_after: _duration_pb2.Duration
    error: str
    def __init__(self, number: _Optional[int] = ..., trigger: _Optional[_Union[AttemptTrigger, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., outcome: _Optional[_Union[AttemptOutcome, str]] = ..., status_code: _Optional[int] = ..., response_body: _Optional[str] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class Endpoint(_message.Message):
    __slots__ = ("project_id", "destination_id", "destination_name", "url", "state", "consecutive_failures", "failing_since", "last_success_time", "last_failure_time", "disable_time", "disable_reason", "pending_deliveries", "held_deliveries")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    FAILING_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_SUCCESS_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_FAILURE_TIME_FIELD_NUMBER: _ClassVar[int]
    DISABLE_TIME_FIELD_NUMBER: _ClassVar[int]
    DISABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    PENDING_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    HELD_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    destination_id: str
    destination_name: str
    url: str
    state: EndpointState
    consecutive_failures: int
    failing_since: _timestamp_pb2.Timestamp
    last_success_time: _timestamp_pb2.Timestamp
    last_failure_time: _timestamp_pb2.Timestamp
    disable_time: _timestamp_pb2.Timestamp
    disable_reason: str
    pending_deliveries: int
    held_deliveries: int
    def __init__(self, project_id: _Optional[str] = ..., destination_id: _Optional[str] = ..., destination_name: _Optional[str] = ..., url: _Optional[str] = ..., state: _Optional[_Union[EndpointState, str]] = ..., consecutive_failures: _Optional[int] = ..., failing_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_success_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_failure_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disable_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disable_reason: _Optional[str] = ..., pending_deliveries: _Optional[int] = ..., held_deliveries: _Optional[int] = ...) -> None: ...

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("project_id", "destination_id", "operation_id", "status", "kind", "start_time", "end_time", "page_size", "page_token")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    destination_id: str
    operation_id: str
    status: DeliveryStatus
    kind: DeliveryKind
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, project_id: _Optional[str] = ..., destination_id: _Optional[str] = ..., operation_id: _Optional[str] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., kind: _Optional[_Union[DeliveryKind, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeliveriesResponse(_message.Message):
    __slots__ = ("deliveries", "next_page_token")
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[Delivery]
    next_page_token: str
    def __init__(self, deliveries: _Optional[_Iterable[_Union[Delivery, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetDeliveryRequest(_message.Message):
    __slots__ = ("project_id", "delivery_id", "include_body")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_BODY_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    delivery_id: str
    include_body: bool
    def __init__(self, project_id: _Optional[str] = ..., delivery_id: _Optional[str] = ..., include_body: _Optional[bool] = ...) -> None: ...

class RedeliverDeliveryRequest(_message.Message):
    __slots__ = ("project_id", "delivery_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    delivery_id: str
    def __init__(self, project_id: _Optional[str] = ..., delivery_id: _Optional[str] = ...) -> None: ...

class ReplayDeliveriesRequest(_message.Message):
    __slots__ = ("project_id", "destination_id", "operation_id", "start_time", "end_time", "statuses", "dry_run")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    destination_id: str
    operation_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    statuses: _containers.RepeatedScalarFieldContainer[DeliveryStatus]
    dry_run: bool
    def __init__(self, project_id: _Optional[str] = ..., destination_id: _Optional[str] = ..., operation_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., statuses: _Optional[_Iterable[_Union[DeliveryStatus, str]]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class ReplayDeliveriesResponse(_message.Message):
    __slots__ = ("matched", "scheduled")
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    matched: int
    scheduled: int
    def __init__(self, matched: _Optional[int] = ..., scheduled: _Optional[int] = ...) -> None: ...

class TestDestinationRequest(_message.Message):
    __slots__ = ("project_id", "destination_id", "event_type", "timeout")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    destination_id: str
    event_type: str
    timeout: _duration_pb2.Duration
    def __init__(self, project_id: _Optional[str] = ..., destination_id: _Optional[str] = ..., event_type: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class TestDestinationResponse(_message.Message):
    __slots__ = ("success", "url", "message_id", "request_headers", "request_body", "outcome", "status_code", "response_body", "duration", "error")
    class RequestHeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_HEADERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_BODY_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    success: bool
    url: str
    message_id: str
    request_headers: _containers.ScalarMap[str, str]
    request_body: bytes
    outcome: AttemptOutcome
    status_code: int
    response_body: str
    duration: _duration_pb2.Duration
    error: str
    def __init__(self, success: _Optional[bool] = ..., url: _Optional[str] = ..., message_id: _Optional[str] = ..., request_headers: _Optional[_Mapping[str, str]] = ..., request_body: _Optional[bytes] = ..., outcome: _Optional[_Union[AttemptOutcome, str]] = ..., status_code: _Optional[int] = ..., response_body: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class GetEndpointRequest(_message.Message):
    __slots__ = ("project_id", "destination_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    destination_id: str
    def __init__(self, project_id: _Optional[str] = ..., destination_id: _Optional[str] = ...) -> None: ...

class EnableEndpointRequest(_message.Message):
    __slots__ = ("project_id", "destination_id", "discard_held")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    DISCARD_HELD_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    destination_id: str
    discard_held: bool
    def __init__(self, project_id: _Optional[str] = ..., destination_id: _Optional[str] = ..., discard_held: _Optional[bool] = ...) -> None: ...

class CountRecordedPagesRequest(_message.Message):
    __slots__ = ("project_id", "operation_id", "destination_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    operation_id: str
    destination_id: str
    def __init__(self, project_id: _Optional[str] = ..., operation_id: _Optional[str] = ..., destination_id: _Optional[str] = ...) -> None: ...

class CountRecordedPagesResponse(_message.Message):
    __slots__ = ("recorded", "destination_found")
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FOUND_FIELD_NUMBER: _ClassVar[int]
    recorded: int
    destination_found: bool
    def __init__(self, recorded: _Optional[int] = ..., destination_found: _Optional[bool] = ...) -> None: ...

class FindUnrecordedPagesRequest(_message.Message):
    __slots__ = ("project_id", "destination_id", "keys")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    destination_id: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, project_id: _Optional[str] = ..., destination_id: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class FindUnrecordedPagesResponse(_message.Message):
    __slots__ = ("missing_keys",)
    MISSING_KEYS_FIELD_NUMBER: _ClassVar[int]
    missing_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, missing_keys: _Optional[_Iterable[str]] = ...) -> None: ...
