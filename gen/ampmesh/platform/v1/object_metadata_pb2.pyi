from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ObjectMetadata(_message.Message):
    __slots__ = ("name", "display_name", "mapped_object_name", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FieldMetadata
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FieldMetadata, _Mapping]] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    MAPPED_OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    mapped_object_name: str
    fields: _containers.MessageMap[str, FieldMetadata]
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., mapped_object_name: _Optional[str] = ..., fields: _Optional[_Mapping[str, FieldMetadata]] = ...) -> None: ...

class FieldMetadata(_message.Message):
    __slots__ = ("field_name", "display_name", "value_type", "provider_type", "read_only", "is_custom", "is_required", "reference_to", "values")
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_TYPE_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    IS_CUSTOM_FIELD_NUMBER: _ClassVar[int]
    IS_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TO_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field_name: str
    display_name: str
    value_type: str
    provider_type: str
    read_only: bool
    is_custom: bool
    is_required: bool
    reference_to: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedCompositeFieldContainer[FieldValue]
    def __init__(self, field_name: _Optional[str] = ..., display_name: _Optional[str] = ..., value_type: _Optional[str] = ..., provider_type: _Optional[str] = ..., read_only: _Optional[bool] = ..., is_custom: _Optional[bool] = ..., is_required: _Optional[bool] = ..., reference_to: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[_Union[FieldValue, _Mapping]]] = ...) -> None: ...

class FieldValue(_message.Message):
    __slots__ = ("value", "display_value")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_VALUE_FIELD_NUMBER: _ClassVar[int]
    value: str
    display_value: str
    def __init__(self, value: _Optional[str] = ..., display_value: _Optional[str] = ...) -> None: ...

class FieldDefinition(_message.Message):
    __slots__ = ("field_name", "display_name", "description", "value_type", "required", "unique", "indexed", "string_options", "numeric_options", "association")
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_FIELD_NUMBER: _ClassVar[int]
    INDEXED_FIELD_NUMBER: _ClassVar[int]
    STRING_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    NUMERIC_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ASSOCIATION_FIELD_NUMBER: _ClassVar[int]
    field_name: str
    display_name: str
    description: str
    value_type: str
    required: bool
    unique: bool
    indexed: bool
    string_options: StringFieldOptions
    numeric_options: NumericFieldOptions
    association: AssociationDefinition
    def __init__(self, field_name: _Optional[str] = ..., display_name: _Optional[str] = ..., description: _Optional[str] = ..., value_type: _Optional[str] = ..., required: _Optional[bool] = ..., unique: _Optional[bool] = ..., indexed: _Optional[bool] = ..., string_options: _Optional[_Union[StringFieldOptions, _Mapping]] = ..., numeric_options: _Optional[_Union[NumericFieldOptions, _Mapping]] = ..., association: _Optional[_Union[AssociationDefinition, _Mapping]] = ...) -> None: ...

class StringFieldOptions(_message.Message):
    __slots__ = ("length", "pattern", "values", "values_restricted", "default_value")
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    VALUES_RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    length: int
    pattern: str
    values: _containers.RepeatedScalarFieldContainer[str]
    values_restricted: bool
    default_value: str
    def __init__(self, length: _Optional[int] = ..., pattern: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ..., values_restricted: _Optional[bool] = ..., default_value: _Optional[str] = ...) -> None: ...

class NumericFieldOptions(_message.Message):
    __slots__ = ("precision", "scale", "min", "max", "default_value")
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    precision: int
    scale: int
    min: float
    max: float
    default_value: float
    def __init__(self, precision: _Optional[int] = ..., scale: _Optional[int] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., default_value: _Optional[float] = ...) -> None: ...

class AssociationDefinition(_message.Message):
    __slots__ = ("association_type", "target_object", "target_field", "cardinality", "on_delete", "required", "reverse_lookup_field_name", "labels")
    ASSOCIATION_TYPE_FIELD_NUMBER: _ClassVar[int]
    TARGET_OBJECT_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_FIELD_NUMBER: _ClassVar[int]
    CARDINALITY_FIELD_NUMBER: _ClassVar[int]
    ON_DELETE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    REVERSE_LOOKUP_FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    association_type: str
    target_object: str
    target_field: str
    cardinality: str
    on_delete: str
    required: bool
    reverse_lookup_field_name: str
    labels: AssociationLabels
    def __init__(self, association_type: _Optional[str] = ..., target_object: _Optional[str] = ..., target_field: _Optional[str] = ..., cardinality: _Optional[str] = ..., on_delete: _Optional[str] = ..., required: _Optional[bool] = ..., reverse_lookup_field_name: _Optional[str] = ..., labels: _Optional[_Union[AssociationLabels, _Mapping]] = ...) -> None: ...

class AssociationLabels(_message.Message):
    __slots__ = ("singular", "plural")
    SINGULAR_FIELD_NUMBER: _ClassVar[int]
    PLURAL_FIELD_NUMBER: _ClassVar[int]
    singular: str
    plural: str
    def __init__(self, singular: _Optional[str] = ..., plural: _Optional[str] = ...) -> None: ...

class FieldUpsertResult(_message.Message):
    __slots__ = ("field_name", "action", "metadata", "warnings")
    FIELD_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    field_name: str
    action: str
    metadata: _struct_pb2.Struct
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, field_name: _Optional[str] = ..., action: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class GetObjectMetadataForInstallationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "object_name", "group_ref", "exclude_read_only")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    object_name: str
    group_ref: str
    exclude_read_only: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., object_name: _Optional[str] = ..., group_ref: _Optional[str] = ..., exclude_read_only: _Optional[bool] = ...) -> None: ...

class GetObjectMetadataForConnectionRequest(_message.Message):
    __slots__ = ("project_id_or_name", "provider", "object_name", "group_ref", "exclude_read_only")
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    provider: str
    object_name: str
    group_ref: str
    exclude_read_only: bool
    def __init__(self, project_id_or_name: _Optional[str] = ..., provider: _Optional[str] = ..., object_name: _Optional[str] = ..., group_ref: _Optional[str] = ..., exclude_read_only: _Optional[bool] = ...) -> None: ...

class UpsertMetadataForInstallationRequest(_message.Message):
    __slots__ = ("project_id_or_name", "integration_id", "group_ref", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.ListValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ...) -> None: ...
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    INTEGRATION_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    integration_id: str
    group_ref: str
    fields: _containers.MessageMap[str, _struct_pb2.ListValue]
    def __init__(self, project_id_or_name: _Optional[str] = ..., integration_id: _Optional[str] = ..., group_ref: _Optional[str] = ..., fields: _Optional[_Mapping[str, _struct_pb2.ListValue]] = ...) -> None: ...

class UpsertMetadataForConnectionRequest(_message.Message):
    __slots__ = ("project_id_or_name", "provider", "group_ref", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.ListValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ...) -> None: ...
    PROJECT_ID_OR_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    GROUP_REF_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    project_id_or_name: str
    provider: str
    group_ref: str
    fields: _containers.MessageMap[str, _struct_pb2.ListValue]
    def __init__(self, project_id_or_name: _Optional[str] = ..., provider: _Optional[str] = ..., group_ref: _Optional[str] = ..., fields: _Optional[_Mapping[str, _struct_pb2.ListValue]] = ...) -> None: ...

class UpsertMetadataResponse(_message.Message):
    __slots__ = ("success", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Struct
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    success: bool
    fields: _containers.MessageMap[str, _struct_pb2.Struct]
    def __init__(self, success: _Optional[bool] = ..., fields: _Optional[_Mapping[str, _struct_pb2.Struct]] = ...) -> None: ...
