from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Topic(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOPIC_UNSPECIFIED: _ClassVar[Topic]
    TOPIC_READ_RESULTS: _ClassVar[Topic]
    TOPIC_OPERATIONS: _ClassVar[Topic]
    TOPIC_LOGS: _ClassVar[Topic]
    TOPIC_CONNECTIONS: _ClassVar[Topic]
    TOPIC_NOTIFICATIONS: _ClassVar[Topic]
    TOPIC_PROVIDER_EVENTS: _ClassVar[Topic]
TOPIC_UNSPECIFIED: Topic
TOPIC_READ_RESULTS: Topic
TOPIC_OPERATIONS: Topic
TOPIC_LOGS: Topic
TOPIC_CONNECTIONS: Topic
TOPIC_NOTIFICATIONS: Topic
TOPIC_PROVIDER_EVENTS: Topic
PUBSUB_TOPIC_ID_FIELD_NUMBER: _ClassVar[int]
pubsub_topic_id: _descriptor.FieldDescriptor
PUBSUB_SUBSCRIBERS_FIELD_NUMBER: _ClassVar[int]
pubsub_subscribers: _descriptor.FieldDescriptor
TOPIC_FIELD_NUMBER: _ClassVar[int]
topic: _descriptor.FieldDescriptor
