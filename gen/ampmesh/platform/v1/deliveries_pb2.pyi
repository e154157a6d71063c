import datetime

from ampmesh.messenger.v1 import messenger_pb2 as _messenger_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListDeliveriesRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name", "operation_id", "status", "kind", "start_time", "end_time", "page_size", "page_token")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    operation_id: str
    status: _messenger_pb2.DeliveryStatus
    kind: _messenger_pb2.DeliveryKind
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ..., operation_id: _Optional[str] = ..., status: _Optional[_Union[_messenger_pb2.DeliveryStatus, str]] = ..., kind: _Optional[_Union[_messenger_pb2.DeliveryKind, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetDeliveryRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name", "delivery_id", "include_body")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_BODY_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    delivery_id: str
    include_body: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ..., delivery_id: _Optional[str] = ..., include_body: _Optional[bool] = ...) -> None: ...

class RedeliverDeliveryRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name", "delivery_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    delivery_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ..., delivery_id: _Optional[str] = ...) -> None: ...

class ReplayDeliveriesRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name", "operation_id", "start_time", "end_time", "statuses", "dry_run")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    operation_id: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    statuses: _containers.RepeatedScalarFieldContainer[_messenger_pb2.DeliveryStatus]
    dry_run: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ..., operation_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., statuses: _Optional[_Iterable[_Union[_messenger_pb2.DeliveryStatus, str]]] = ..., dry_run: _Optional[bool] = ...) -> None: ...

class GetEndpointRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ...) -> None: ...

class EnableEndpointRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name", "discard_held")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DISCARD_HELD_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    discard_held: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ..., discard_held: _Optional[bool] = ...) -> None: ...

class TestDestinationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name", "event_type")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    event_type: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ..., event_type: _Optional[str] = ...) -> None: ...
