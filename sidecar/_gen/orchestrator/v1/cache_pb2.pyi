from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class CacheMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_MODE_UNSPECIFIED: _ClassVar[CacheMode]
    CACHE_MODE_BYPASS: _ClassVar[CacheMode]

class CacheHitKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_HIT_KIND_UNSPECIFIED: _ClassVar[CacheHitKind]
    CACHE_HIT_KIND_EXACT: _ClassVar[CacheHitKind]
    CACHE_HIT_KIND_SEMANTIC: _ClassVar[CacheHitKind]
CACHE_MODE_UNSPECIFIED: CacheMode
CACHE_MODE_BYPASS: CacheMode
CACHE_HIT_KIND_UNSPECIFIED: CacheHitKind
CACHE_HIT_KIND_EXACT: CacheHitKind
CACHE_HIT_KIND_SEMANTIC: CacheHitKind
