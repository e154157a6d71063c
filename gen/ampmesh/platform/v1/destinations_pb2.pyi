import datetime

from ampmesh.edge.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Destination(_message.Message):
    __slots__ = ("id", "name", "type", "metadata", "secrets", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    type: str
    metadata: DestinationMetadata
    secrets: DestinationSecrets
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., metadata: _Optional[_Union[DestinationMetadata, _Mapping]] = ..., secrets: _Optional[_Union[DestinationSecrets, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DestinationWithSecrets(_message.Message):
    __slots__ = ("id", "name", "type", "metadata", "create_time", "update_time", "secrets")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SECRETS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    type: str
    metadata: DestinationMetadata
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    secrets: DestinationRevealedSecrets
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., metadata: _Optional[_Union[DestinationMetadata, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., secrets: _Optional[_Union[DestinationRevealedSecrets, _Mapping]] = ...) -> None: ...

class DestinationRevealedSecrets(_message.Message):
    __slots__ = ("webhook_signing_key",)
    WEBHOOK_SIGNING_KEY_FIELD_NUMBER: _ClassVar[int]
    webhook_signing_key: str
    def __init__(self, webhook_signing_key: _Optional[str] = ...) -> None: ...

class DestinationMetadata(_message.Message):
    __slots__ = ("url", "headers", "region", "stream_name", "endpoint_url", "partition_key_template", "bucket", "key_template", "storage_class", "username", "table_name", "database", "account_identifier", "user_id", "db_name", "schema_name", "project_id", "dataset_id", "table_id", "workgroup_name", "cluster_identifier", "db_user", "account", "container", "queue_url", "topic_id", "server_url", "exchange", "tls", "name", "batch_size", "max_wait_secs")
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    STREAM_NAME_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_URL_FIELD_NUMBER: _ClassVar[int]
    PARTITION_KEY_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_CLASS_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    TABLE_NAME_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DB_NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_ID_FIELD_NUMBER: _ClassVar[int]
    TABLE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKGROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    DB_USER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    QUEUE_URL_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_URL_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    TLS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_SECS_FIELD_NUMBER: _ClassVar[int]
    url: str
    headers: _containers.ScalarMap[str, str]
    region: str
    stream_name: str
    endpoint_url: str
    partition_key_template: str
    bucket: str
    key_template: str
    storage_class: str
    username: str
    table_name: str
    database: str
    account_identifier: str
    user_id: str
    db_name: str
    schema_name: str
    project_id: str
    dataset_id: str
    table_id: str
    workgroup_name: str
    cluster_identifier: str
    db_user: str
    account: str
    container: str
    queue_url: str
    topic_id: str
    server_url: str
    exchange: str
    tls: bool
    name: str
    batch_size: int
    max_wait_secs: int
    def __init__(self, url: _Optional[str] = ..., headers: _Optional[_Mapping[str, str]] = ..., region: _Optional[str] = ..., stream_name: _Optional[str] = ..., endpoint_url: _Optional[str] = ..., partition_key_template: _Optional[str] = ..., bucket: _Optional[str] = ..., key_template: _Optional[str] = ..., storage_class: _Optional[str] = ..., username: _Optional[str] = ..., table_name: _Optional[str] = ..., database: _Optional[str] = ..., account_identifier: _Optional[str] = ..., user_id: _Optional[str] = ..., db_name: _Optional[str] = ..., schema_name: _Optional[str] = ..., project_id: _Optional[str] = ..., dataset_id: _Optional[str] = ..., table_id: _Optional[str] = ..., workgroup_name: _Optional[str] = ..., cluster_identifier: _Optional[str] = ..., db_user: _Optional[str] = ..., account: _Optional[str] = ..., container: _Optional[str] = ..., queue_url: _Optional[str] = ..., topic_id: _Optional[str] = ..., server_url: _Optional[str] = ..., exchange: _Optional[str] = ..., tls: _Optional[bool] = ..., name: _Optional[str] = ..., batch_size: _Optional[int] = ..., max_wait_secs: _Optional[int] = ...) -> None: ...

class DestinationSecrets(_message.Message):
    __slots__ = ("aws_key_id", "aws_secret_key", "aws_session_token", "password", "private_key", "credentials", "access_key_id", "secret_access_key", "access_key", "username", "connection_string")
    AWS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    AWS_SECRET_KEY_FIELD_NUMBER: _ClassVar[int]
    AWS_SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SECRET_ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCESS_KEY_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_STRING_FIELD_NUMBER: _ClassVar[int]
    aws_key_id: str
    aws_secret_key: str
    aws_session_token: str
    password: str
    private_key: str
    credentials: str
    access_key_id: str
    secret_access_key: str
    access_key: str
    username: str
    connection_string: str
    def __init__(self, aws_key_id: _Optional[str] = ..., aws_secret_key: _Optional[str] = ..., aws_session_token: _Optional[str] = ..., password: _Optional[str] = ..., private_key: _Optional[str] = ..., credentials: _Optional[str] = ..., access_key_id: _Optional[str] = ..., secret_access_key: _Optional[str] = ..., access_key: _Optional[str] = ..., username: _Optional[str] = ..., connection_string: _Optional[str] = ...) -> None: ...

class Topic(_message.Message):
    __slots__ = ("id", "name", "project_id", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    project_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., project_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class NotificationEventTopicRoute(_message.Message):
    __slots__ = ("id", "event_type", "topic_id", "project_id", "create_time", "update_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    event_type: str
    topic_id: str
    project_id: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., event_type: _Optional[str] = ..., topic_id: _Optional[str] = ..., project_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TopicDestinationRoute(_message.Message):
    __slots__ = ("id", "topic_id", "destination_id", "project_id", "create_time")
    ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: str
    topic_id: str
    destination_id: str
    project_id: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., topic_id: _Optional[str] = ..., destination_id: _Optional[str] = ..., project_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateDestinationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination: Destination
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination: _Optional[_Union[Destination, _Mapping]] = ...) -> None: ...

class ListDestinationsRequest(_message.Message):
    __slots__ = ("project_id_or_name",)
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    def __init__(self, project_id_or_name: _Optional[str] = ...) -> None: ...

class ListDestinationsResponse(_message.Message):
    __slots__ = ("destinations",)
    DESTINATIONS_FIELD_NUMBER: _ClassVar[int]
    destinations: _containers.RepeatedCompositeFieldContainer[Destination]
    def __init__(self, destinations: _Optional[_Iterable[_Union[Destination, _Mapping]]] = ...) -> None: ...

class GetDestinationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name", "include_secrets", "rotate")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SECRETS_FIELD_NUMBER: _ClassVar[int]
    ROTATE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    include_secrets: bool
    rotate: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ..., include_secrets: _Optional[bool] = ..., rotate: _Optional[bool] = ...) -> None: ...

class UpdateDestinationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name", "update_mask", "destination")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    update_mask: _containers.RepeatedScalarFieldContainer[str]
    destination: Destination
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ..., update_mask: _Optional[_Iterable[str]] = ..., destination: _Optional[_Union[Destination, _Mapping]] = ...) -> None: ...

class DeleteDestinationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "destination_id_or_name")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    destination_id_or_name: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., destination_id_or_name: _Optional[str] = ...) -> None: ...

class CreateTopicRequest(_message.Message):
    __slots__ = ("project_id_or_name", "topic")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    topic: Topic
    def __init__(self, project_id_or_name: _Optional[str] = ..., topic: _Optional[_Union[Topic, _Mapping]] = ...) -> None: ...

class ListTopicsRequest(_message.Message):
    __slots__ = ("project_id_or_name",)
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    def __init__(self, project_id_or_name: _Optional[str] = ...) -> None: ...

class ListTopicsResponse(_message.Message):
    __slots__ = ("topics",)
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    topics: _containers.RepeatedCompositeFieldContainer[Topic]
    def __init__(self, topics: _Optional[_Iterable[_Union[Topic, _Mapping]]] = ...) -> None: ...

class UpdateTopicRequest(_message.Message):
    __slots__ = ("project_id_or_name", "topic_id", "topic")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    topic_id: str
    topic: Topic
    def __init__(self, project_id_or_name: _Optional[str] = ..., topic_id: _Optional[str] = ..., topic: _Optional[_Union[Topic, _Mapping]] = ...) -> None: ...

class DeleteTopicRequest(_message.Message):
    __slots__ = ("project_id_or_name", "topic_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    topic_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., topic_id: _Optional[str] = ...) -> None: ...

class CreateNotificationEventTopicRouteRequest(_message.Message):
    __slots__ = ("project_id_or_name", "notification_event_topic_route")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_EVENT_TOPIC_ROUTE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    notification_event_topic_route: NotificationEventTopicRoute
    def __init__(self, project_id_or_name: _Optional[str] = ..., notification_event_topic_route: _Optional[_Union[NotificationEventTopicRoute, _Mapping]] = ...) -> None: ...

class ListNotificationEventTopicRoutesRequest(_message.Message):
    __slots__ = ("project_id_or_name", "topic_id", "event_type")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    topic_id: str
    event_type: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., topic_id: _Optional[str] = ..., event_type: _Optional[str] = ...) -> None: ...

class ListNotificationEventTopicRoutesResponse(_message.Message):
    __slots__ = ("notification_event_topic_routes",)
    NOTIFICATION_EVENT_TOPIC_ROUTES_FIELD_NUMBER: _ClassVar[int]
    notification_event_topic_routes: _containers.RepeatedCompositeFieldContainer[NotificationEventTopicRoute]
    def __init__(self, notification_event_topic_routes: _Optional[_Iterable[_Union[NotificationEventTopicRoute, _Mapping]]] = ...) -> None: ...

class DeleteNotificationEventTopicRouteRequest(_message.Message):
    __slots__ = ("project_id_or_name", "route_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUTE_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    route_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., route_id: _Optional[str] = ...) -> None: ...

class CreateTopicDestinationRouteRequest(_message.Message):
    __slots__ = ("project_id_or_name", "topic_destination_route")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_DESTINATION_ROUTE_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    topic_destination_route: TopicDestinationRoute
    def __init__(self, project_id_or_name: _Optional[str] = ..., topic_destination_route: _Optional[_Union[TopicDestinationRoute, _Mapping]] = ...) -> None: ...

class ListTopicDestinationRoutesRequest(_message.Message):
    __slots__ = ("project_id_or_name", "topic_id", "destination_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    topic_id: str
    destination_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., topic_id: _Optional[str] = ..., destination_id: _Optional[str] = ...) -> None: ...

class ListTopicDestinationRoutesResponse(_message.Message):
    __slots__ = ("topic_destination_routes",)
    TOPIC_DESTINATION_ROUTES_FIELD_NUMBER: _ClassVar[int]
    topic_destination_routes: _containers.RepeatedCompositeFieldContainer[TopicDestinationRoute]
    def __init__(self, topic_destination_routes: _Optional[_Iterable[_Union[TopicDestinationRoute, _Mapping]]] = ...) -> None: ...

class DeleteTopicDestinationRouteRequest(_message.Message):
    __slots__ = ("project_id_or_name", "route_id")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUTE_ID_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    route_id: str
    def __init__(self, project_id_or_name: _Optional[str] = ..., route_id: _Optional[str] = ...) -> None: ...
