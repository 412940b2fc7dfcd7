import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class QuotaMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUOTA_METRIC_UNSPECIFIED: _ClassVar[QuotaMetric]
    QUOTA_METRIC_REQUESTS: _ClassVar[QuotaMetric]
    QUOTA_METRIC_TOKENS: _ClassVar[QuotaMetric]
    QUOTA_METRIC_USD: _ClassVar[QuotaMetric]
    QUOTA_METRIC_CONCURRENCY: _ClassVar[QuotaMetric]

class QuotaWindow(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUOTA_WINDOW_UNSPECIFIED: _ClassVar[QuotaWindow]
    QUOTA_WINDOW_MINUTE: _ClassVar[QuotaWindow]
    QUOTA_WINDOW_DAY: _ClassVar[QuotaWindow]
    QUOTA_WINDOW_MONTH: _ClassVar[QuotaWindow]
    QUOTA_WINDOW_CONCURRENT: _ClassVar[QuotaWindow]

class QuotaScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUOTA_SCOPE_UNSPECIFIED: _ClassVar[QuotaScope]
    QUOTA_SCOPE_TENANT: _ClassVar[QuotaScope]
    QUOTA_SCOPE_USER: _ClassVar[QuotaScope]
QUOTA_METRIC_UNSPECIFIED: QuotaMetric
QUOTA_METRIC_REQUESTS: QuotaMetric
QUOTA_METRIC_TOKENS: QuotaMetric
QUOTA_METRIC_USD: QuotaMetric
QUOTA_METRIC_CONCURRENCY: QuotaMetric
QUOTA_WINDOW_UNSPECIFIED: QuotaWindow
QUOTA_WINDOW_MINUTE: QuotaWindow
QUOTA_WINDOW_DAY: QuotaWindow
QUOTA_WINDOW_MONTH: QuotaWindow
QUOTA_WINDOW_CONCURRENT: QuotaWindow
QUOTA_SCOPE_UNSPECIFIED: QuotaScope
QUOTA_SCOPE_TENANT: QuotaScope
QUOTA_SCOPE_USER: QuotaScope

class GetQuotaRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class QuotaLimit(_message.Message):
    __slots__ = ("name", "metric", "scope", "window", "limit", "used", "reserved", "remaining", "reset_time", "shadow")
    NAME_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    RESET_TIME_FIELD_NUMBER: _ClassVar[int]
    SHADOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    metric: QuotaMetric
    scope: QuotaScope
    window: QuotaWindow
    limit: int
    used: int
    reserved: int
    remaining: int
    reset_time: _timestamp_pb2.Timestamp
    shadow: bool
    def __init__(self, name: _Optional[str] = ..., metric: _Optional[_Union[QuotaMetric, str]] = ..., scope: _Optional[_Union[QuotaScope, str]] = ..., window: _Optional[_Union[QuotaWindow, str]] = ..., limit: _Optional[int] = ..., used: _Optional[int] = ..., reserved: _Optional[int] = ..., remaining: _Optional[int] = ..., reset_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., shadow: _Optional[bool] = ...) -> None: ...

class GetQuotaResponse(_message.Message):
    __slots__ = ("tier", "limits")
    TIER_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    tier: str
    limits: _containers.RepeatedCompositeFieldContainer[QuotaLimit]
    def __init__(self, tier: _Optional[str] = ..., limits: _Optional[_Iterable[_Union[QuotaLimit, _Mapping]]] = ...) -> None: ...
