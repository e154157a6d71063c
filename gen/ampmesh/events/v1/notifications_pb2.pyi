import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Notification(_message.Message):
    __slots__ = ("installation_created", "installation_updated", "installation_deleted", "read_backfill_done", "read_schedule_paused", "read_triggered_done", "read_triggered_error", "write_async_done", "subscribe_create_error", "connection_created", "connection_refreshed", "connection_updated", "connection_deleted", "connection_error", "destination_webhook_disabled")
    INSTALLATION_CREATED_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_UPDATED_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_DELETED_FIELD_NUMBER: _ClassVar[int]
    READ_BACKFILL_DONE_FIELD_NUMBER: _ClassVar[int]
    READ_SCHEDULE_PAUSED_FIELD_NUMBER: _ClassVar[int]
    READ_TRIGGERED_DONE_FIELD_NUMBER: _ClassVar[int]
    READ_TRIGGERED_ERROR_FIELD_NUMBER: _ClassVar[int]
    WRITE_ASYNC_DONE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_CREATE_ERROR_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_CREATED_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_REFRESHED_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_UPDATED_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_DELETED_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ERROR_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_WEBHOOK_DISABLED_FIELD_NUMBER: _ClassVar[int]
    installation_created: InstallationCreatedNotification
    installation_updated: InstallationUpdatedNotification
    installation_deleted: InstallationDeletedNotification
    read_backfill_done: ReadBackfillDoneNotification
    read_schedule_paused: ReadSchedulePausedNotification
    read_triggered_done: ReadTriggeredDoneNotification
    read_triggered_error: ReadTriggeredErrorNotification
    write_async_done: WriteAsyncDoneNotification
    subscribe_create_error: SubscribeCreateErrorNotification
    connection_created: ConnectionCreatedNotification
    connection_refreshed: ConnectionRefreshedNotification
    connection_updated: ConnectionUpdatedNotification
    connection_deleted: ConnectionDeletedNotification
    connection_error: ConnectionErrorNotification
    destination_webhook_disabled: DestinationWebhookDisabledNotification
    def __init__(self, installation_created: _Optional[_Union[InstallationCreatedNotification, _Mapping]] = ..., installation_updated: _Optional[_Union[InstallationUpdatedNotification, _Mapping]] = ..., installation_deleted: _Optional[_Union[InstallationDeletedNotification, _Mapping]] = ..., read_backfill_done: _Optional[_Union[ReadBackfillDoneNotification, _Mapping]] = ..., read_schedule_paused: _Optional[_Union[ReadSchedulePausedNotification, _Mapping]] = ..., read_triggered_done: _Optional[_Union[ReadTriggeredDoneNotification, _Mapping]] = ..., read_triggered_error: _Optional[_Union[ReadTriggeredErrorNotification, _Mapping]] = ..., write_async_done: _Optional[_Union[WriteAsyncDoneNotification, _Mapping]] = ..., subscribe_create_error: _Optional[_Union[SubscribeCreateErrorNotification, _Mapping]] = ..., connection_created: _Optional[_Union[ConnectionCreatedNotification, _Mapping]] = ..., connection_refreshed: _Optional[_Union[ConnectionRefreshedNotification, _Mapping]] = ..., connection_updated: _Optional[_Union[ConnectionUpdatedNotification, _Mapping]] = ..., connection_deleted: _Optional[_Union[ConnectionDeletedNotification, _Mapping]] = ..., connection_error: _Optional[_Union[ConnectionErrorNotification, _Mapping]] = ..., destination_webhook_disabled: _Optional[_Union[DestinationWebhookDisabledNotification, _Mapping]] = ...) -> None: ...

class InstallationCreatedNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: InstallationCreatedData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[InstallationCreatedData, _Mapping]] = ...) -> None: ...

class InstallationUpdatedNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: InstallationUpdatedData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[InstallationUpdatedData, _Mapping]] = ...) -> None: ...

class InstallationDeletedNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: InstallationDeletedData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[InstallationDeletedData, _Mapping]] = ...) -> None: ...

class ReadBackfillDoneNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: ReadBackfillDoneData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[ReadBackfillDoneData, _Mapping]] = ...) -> None: ...

class ReadSchedulePausedNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: ReadSchedulePausedData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[ReadSchedulePausedData, _Mapping]] = ...) -> None: ...

class ReadTriggeredDoneNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: ReadTriggeredDoneData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[ReadTriggeredDoneData, _Mapping]] = ...) -> None: ...

class ReadTriggeredErrorNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: ReadTriggeredErrorData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[ReadTriggeredErrorData, _Mapping]] = ...) -> None: ...

class WriteAsyncDoneNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: WriteAsyncDoneData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[WriteAsyncDoneData, _Mapping]] = ...) -> None: ...

class SubscribeCreateErrorNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: SubscribeCreateErrorData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[SubscribeCreateErrorData, _Mapping]] = ...) -> None: ...

class ConnectionCreatedNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: ConnectionData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[ConnectionData, _Mapping]] = ...) -> None: ...

class ConnectionRefreshedNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: ConnectionData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[ConnectionData, _Mapping]] = ...) -> None: ...

class ConnectionUpdatedNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: ConnectionData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[ConnectionData, _Mapping]] = ...) -> None: ...

class ConnectionDeletedNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: ConnectionData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[ConnectionData, _Mapping]] = ...) -> None: ...

class ConnectionErrorNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: ConnectionErrorData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[ConnectionErrorData, _Mapping]] = ...) -> None: ...

class DestinationWebhookDisabledNotification(_message.Message):
    __slots__ = ("notification_type", "data")
    NOTIFICATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    notification_type: str
    data: DestinationWebhookDisabledData
    def __init__(self, notification_type: _Optional[str] = ..., data: _Optional[_Union[DestinationWebhookDisabledData, _Mapping]] = ...) -> None: ...

class InstallationCreatedData(_message.Message):
    __slots__ = ("project_id", "provider", "integration_id", "integration_name", "installation_id", "connection_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "config", "config_url")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONFIG_URL_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    integration_id: str
    integration_name: str
    installation_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    config: _struct_pb2.Struct
    config_url: str
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., integration_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., config_url: _Optional[str] = ...) -> None: ...

class InstallationUpdatedData(_message.Message):
    __slots__ = ("project_id", "provider", "integration_id", "integration_name", "installation_id", "connection_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "config", "config_url", "last_config", "last_config_url")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONFIG_URL_FIELD_NUMBER: _ClassVar[int]
    LAST_CONFIG_FIELD_NUMBER: _ClassVar[int]
    LAST_CONFIG_URL_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    integration_id: str
    integration_name: str
    installation_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    config: _struct_pb2.Struct
    config_url: str
    last_config: _struct_pb2.Struct
    last_config_url: str
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., integration_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., config_url: _Optional[str] = ..., last_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., last_config_url: _Optional[str] = ...) -> None: ...

class InstallationDeletedData(_message.Message):
    __slots__ = ("project_id", "provider", "integration_id", "integration_name", "installation_id", "connection_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "config", "config_url")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONFIG_URL_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    integration_id: str
    integration_name: str
    installation_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    config: _struct_pb2.Struct
    config_url: str
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., integration_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., config_url: _Optional[str] = ...) -> None: ...

class ReadBackfillDoneData(_message.Message):
    __slots__ = ("project_id", "provider", "integration_id", "integration_name", "installation_id", "connection_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "object_name")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    integration_id: str
    integration_name: str
    installation_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    object_name: str
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., integration_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., object_name: _Optional[str] = ...) -> None: ...

class ReadSchedulePausedData(_message.Message):
    __slots__ = ("project_id", "provider", "integration_id", "integration_name", "installation_id", "connection_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "config", "config_url", "error")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CONFIG_URL_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    integration_id: str
    integration_name: str
    installation_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    config: _struct_pb2.Struct
    config_url: str
    error: str
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., integration_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., config_url: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ReadTriggeredDoneData(_message.Message):
    __slots__ = ("project_id", "provider", "integration_id", "integration_name", "installation_id", "connection_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "object_name", "from_timestamp", "until_timestamp")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    UNTIL_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    integration_id: str
    integration_name: str
    installation_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    object_name: str
    from_timestamp: _timestamp_pb2.Timestamp
    until_timestamp: _timestamp_pb2.Timestamp
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., integration_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., object_name: _Optional[str] = ..., from_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReadTriggeredErrorData(_message.Message):
    __slots__ = ("project_id", "provider", "integration_id", "integration_name", "installation_id", "connection_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "object_name", "from_timestamp", "until_timestamp", "error")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    FROM_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    UNTIL_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    integration_id: str
    integration_name: str
    installation_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    object_name: str
    from_timestamp: _timestamp_pb2.Timestamp
    until_timestamp: _timestamp_pb2.Timestamp
    error: str
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., integration_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., object_name: _Optional[str] = ..., from_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until_timestamp: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class WriteAsyncDoneData(_message.Message):
    __slots__ = ("project_id", "provider", "integration_id", "integration_name", "installation_id", "connection_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "object_name", "success", "successful_record_ids", "errors")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    SUCCESSFUL_RECORD_IDS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    integration_id: str
    integration_name: str
    installation_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    object_name: str
    success: bool
    successful_record_ids: _containers.RepeatedScalarFieldContainer[str]
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., integration_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., object_name: _Optional[str] = ..., success: _Optional[bool] = ..., successful_record_ids: _Optional[_Iterable[str]] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...

class SubscribeCreateErrorData(_message.Message):
    __slots__ = ("project_id", "provider", "integration_id", "integration_name", "installation_id", "connection_id", "group_ref", "group_name", "consumer_ref", "consumer_name", "error")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTALLATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    provider: str
    integration_id: str
    integration_name: str
    installation_id: str
    connection_id: str
    group_ref: str
    group_name: str
    consumer_ref: str
    consumer_name: str
    error: str
    def __init__(self, project_id: _Optional[str] = ..., provider: _Optional[str] = ..., integration_id: _Optional[str] = ..., integration_name: _Optional[str] = ..., installation_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., group_name: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class ConnectionData(_message.Message):
    __slots__ = ("project_id", "connection_id", "provider", "group_ref", "consumer_ref", "consumer_name", "revoked_at_provider", "revocation_detail")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_DETAIL_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    connection_id: str
    provider: str
    group_ref: str
    consumer_ref: str
    consumer_name: str
    revoked_at_provider: bool
    revocation_detail: str
    def __init__(self, project_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., provider: _Optional[str] = ..., group_ref: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., revoked_at_provider: _Optional[bool] = ..., revocation_detail: _Optional[str] = ...) -> None: ...

class ConnectionErrorData(_message.Message):
    __slots__ = ("project_id", "connection_id", "provider", "group_ref", "consumer_ref", "consumer_name", "errors", "error")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_REF_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_NAME_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    connection_id: str
    provider: str
    group_ref: str
    consumer_ref: str
    consumer_name: str
    errors: _containers.RepeatedScalarFieldContainer[str]
    error: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, project_id: _Optional[str] = ..., connection_id: _Optional[str] = ..., provider: _Optional[str] = ..., group_ref: _Optional[str] = ..., consumer_ref: _Optional[str] = ..., consumer_name: _Optional[str] = ..., errors: _Optional[_Iterable[str]] = ..., error: _Optional[_Iterable[str]] = ...) -> None: ...

class DestinationWebhookDisabledData(_message.Message):
    __slots__ = ("project_id", "destination_id", "destination_name", "url")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    destination_id: str
    destination_name: str
    url: str
    def __init__(self, project_id: _Optional[str] = ..., destination_id: _Optional[str] = ..., destination_name: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...
