from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Operator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATOR_UNSPECIFIED: _ClassVar[Operator]
    OPERATOR_EQ: _ClassVar[Operator]
    OPERATOR_NEQ: _ClassVar[Operator]
    OPERATOR_IN: _ClassVar[Operator]
    OPERATOR_NOT_IN: _ClassVar[Operator]
    OPERATOR_VERSION_GT: _ClassVar[Operator]
    OPERATOR_VERSION_GTE: _ClassVar[Operator]
    OPERATOR_VERSION_LT: _ClassVar[Operator]
    OPERATOR_VERSION_LTE: _ClassVar[Operator]
    OPERATOR_EXISTS: _ClassVar[Operator]
    OPERATOR_NOT_EXISTS: _ClassVar[Operator]
OPERATOR_UNSPECIFIED: Operator
OPERATOR_EQ: Operator
OPERATOR_NEQ: Operator
OPERATOR_IN: Operator
OPERATOR_NOT_IN: Operator
OPERATOR_VERSION_GT: Operator
OPERATOR_VERSION_GTE: Operator
OPERATOR_VERSION_LT: Operator
OPERATOR_VERSION_LTE: Operator
OPERATOR_EXISTS: Operator
OPERATOR_NOT_EXISTS: Operator

class Condition(_message.Message):
    __slots__ = ("attribute", "op", "values")
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    attribute: str
    op: Operator
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, attribute: _Optional[str] = ..., op: _Optional[_Union[Operator, str]] = ..., values: _Optional[_Iterable[str]] = ...) -> None: ...

class HeaderRoute(_message.Message):
    __slots__ = ("header", "value", "variant")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    header: str
    value: str
    variant: str
    def __init__(self, header: _Optional[str] = ..., value: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...
