import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BodyEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BODY_ENCODING_UNSPECIFIED: _ClassVar[BodyEncoding]
    BODY_ENCODING_ZLIB: _ClassVar[BodyEncoding]
BODY_ENCODING_UNSPECIFIED: BodyEncoding
BODY_ENCODING_ZLIB: BodyEncoding

class ReadResultPage(_message.Message):
    __slots__ = ("message", "destination_id", "destination_name", "integration_id", "connection_id", "page_number", "part_number", "part_count", "last_page", "body", "body_encoding")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PART_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_PAGE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    BODY_ENCODING_FIELD_NUMBER: _ClassVar[int]
    message: WebhookMessage
    destination_id: str
    destination_name: str
    integration_id: str
    connection_id: str
    page_number: int
    part_number: int
    part_count: int
    last_page: bool
    body: bytes
    body_encoding: BodyEncoding
    def __init__(self, message: _Optional[_Union[WebhookMessage, _Mapping]] = ..., destination_id: _Optional[str] = ..., destination_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., page_number: _Optional[int] = ..., part_number: _Optional[int] = ..., part_count: _Optional[int] = ..., last_page: _Optional[bool] = ..., body: _Optional[bytes] = ..., body_encoding: _Optional[_Union[BodyEncoding, str]] = ...) -> None: ...

class WebhookMessage(_message.Message):
    __slots__ = ("project_id", "provider", "workspace", "group_ref", "group_name", "installation_id", "installation_update_time", "object_name", "operation_id", "raw_object_name", "action", "result_info", "result", "consumer_ref", "consumer_name", "operation_time", "read_type")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    RAW_OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESULT_INFO_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_TIME_FIELD_NUMBER: _ClassVar[int]
    READ_TYPE_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    workspace: str
    group_ref: str
    group_name: str
    installation_id: str
    installation_update_time: _timestamp_pb2.Timestamp
    object_name: str
    operation_id: str
    raw_object_name: str
    action: str
    result_info: ResultInfo
    result: _containers.RepeatedCompositeFieldContainer[ResultEntry]
    consumer_ref: str
    consumer_name: str
    operation_time: _timestamp_pb2.Timestamp
    read_type: str
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., workspace: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., installation_update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., object_name: _Optional[str] = ..., operation_id: _Optional[str] = ..., raw_object_name: _Optional[str] = ..., action: _Optional[str] = ..., result_info: _Optional[_Union[ResultInfo, _Mapping]] = ..., result: _Optional[_Iterable[_Union[ResultEntry, _Mapping]]] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., operation_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., read_type: _Optional[str] = ...) -> None: ...

class ResultInfo(_message.Message):
    __slots__ = ("type", "download_url", "num_records")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DOWNLOAD_URL_FIELD_NUMBER: _ClassVar[int]
    NUM_RECORDS_FIELD_NUMBER: _ClassVar[int]
    type: str
    download_url: str
    num_records: int
    def __init__(self, type: _Optional[str] = ..., download_url: _Optional[str] = ..., num_records: _Optional[int] = ...) -> None: ...

class ResultEntry(_message.Message):
    __slots__ = ("fields", "mapped_fields", "associations", "raw", "raw_event", "from_record", "to_record", "subscribe_event_type", "provider_event_type", "id", "fields_updated", "deleted")
    class AssociationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.ListValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    MAPPED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATIONS_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    RAW_EVENT_FIELD_NUMBER: _ClassVar[int]
    FROM_RECORD_FIELD_NUMBER: _ClassVar[int]
    TO_RECORD_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_UPDATED_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    fields: _struct_pb2.Struct
    mapped_fields: _struct_pb2.Struct
    associations: _containers.MessageMap[str, _struct_pb2.ListValue]
    raw: _struct_pb2.Struct
    raw_event: _struct_pb2.Struct
    from_record: AssociatedObject
    to_record: AssociatedObject
    subscribe_event_type: str
    provider_event_type: str
    id: str
    fields_updated: _containers.RepeatedScalarFieldContainer[str]
    deleted: bool
    def __init__(self, fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., mapped_fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., associations: _Optional[_Mapping[str, _struct_pb2.ListValue]] = ..., raw: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., raw_event: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., from_record: _Optional[_Union[AssociatedObject, _Mapping]] = ..., to_record: _Optional[_Union[AssociatedObject, _Mapping]] = ..., subscribe_event_type: _Optional[str] = ..., provider_event_type: _Optional[str] = ..., id: _Optional[str] = ..., fields_updated: _Optional[_Iterable[str]] = ..., deleted: _Optional[bool] = ...) -> None: ...

class Association(_message.Message):
    __slots__ = ("id", "object_name", "raw_object_name", "fields", "mapped_fields", "raw", "provider_association_metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    RAW_OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    MAPPED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_ASSOCIATION_METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    object_name: str
    raw_object_name: str
    fields: _struct_pb2.Struct
    mapped_fields: _struct_pb2.Struct
    raw: _struct_pb2.Struct
    provider_association_metadata: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., object_name: _Optional[str] = ..., raw_object_name: _Optional[str] = ..., fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., mapped_fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., raw: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., provider_association_metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class AssociatedObject(_message.Message):
    __slots__ = ("id", "object_name", "raw_object_name", "fields", "mapped_fields", "raw")
    ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    RAW_OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    MAPPED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    id: str
    object_name: str
    raw_object_name: str
    fields: _struct_pb2.Struct
    mapped_fields: _struct_pb2.Struct
    raw: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., object_name: _Optional[str] = ..., raw_object_name: _Optional[str] = ..., fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., mapped_fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., raw: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
