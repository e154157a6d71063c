from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
REST_FIELD_NUMBER: _ClassVar[int]
rest: _descriptor.FieldDescriptor

class RestRule(_message.Message):
    __slots__ = ("success_status", "ignore_unknown_query_parameters")
    SUCCESS_STATUS_FIELD_NUMBER: _ClassVar[int]
    IGNORE_UNKNOWN_QUERY_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    success_status: int
    ignore_unknown_query_parameters: bool
    def __init__(self, success_status: _Optional[int] = ..., ignore_unknown_query_parameters: _Optional[bool] = ...) -> None: ...
