import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BREAKER_STATE_UNSPECIFIED: _ClassVar[BreakerState]
    BREAKER_STATE_CLOSED: _ClassVar[BreakerState]
    BREAKER_STATE_OPEN: _ClassVar[BreakerState]
    BREAKER_STATE_HALF_OPEN: _ClassVar[BreakerState]
BREAKER_STATE_UNSPECIFIED: BreakerState
BREAKER_STATE_CLOSED: BreakerState
BREAKER_STATE_OPEN: BreakerState
BREAKER_STATE_HALF_OPEN: BreakerState

class DeploymentStatus(_message.Message):
    __slots__ = ("healthy", "breaker_state", "last_error", "last_error_time", "ewma_time_to_first_token", "ewma_latency", "in_flight")
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    BREAKER_STATE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_TIME_FIELD_NUMBER: _ClassVar[int]
    EWMA_TIME_TO_FIRST_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EWMA_LATENCY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    healthy: bool
    breaker_state: BreakerState
    last_error: str
    last_error_time: _timestamp_pb2.Timestamp
    ewma_time_to_first_token: _duration_pb2.Duration
    ewma_latency: _duration_pb2.Duration
    in_flight: int
    def __init__(self, healthy: _Optional[bool] = ..., breaker_state: _Optional[_Union[BreakerState, str]] = ..., last_error: _Optional[str] = ..., last_error_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ewma_time_to_first_token: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., ewma_latency: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., in_flight: _Optional[int] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("streaming", "tools", "json_schema", "max_context_tokens", "images", "reasoning")
    STREAMING_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    REASONING_FIELD_NUMBER: _ClassVar[int]
    streaming: bool
    tools: bool
    json_schema: bool
    max_context_tokens: int
    images: bool
    reasoning: bool
    def __init__(self, streaming: _Optional[bool] = ..., tools: _Optional[bool] = ..., json_schema: _Optional[bool] = ..., max_context_tokens: _Optional[int] = ..., images: _Optional[bool] = ..., reasoning: _Optional[bool] = ...) -> None: ...

class Price(_message.Message):
    __slots__ = ("input_micros_per_million", "output_micros_per_million")
    INPUT_MICROS_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_MICROS_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    input_micros_per_million: int
    output_micros_per_million: int
    def __init__(self, input_micros_per_million: _Optional[int] = ..., output_micros_per_million: _Optional[int] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("name", "provider", "model", "capabilities", "price", "description", "status", "tags")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    provider: str
    model: str
    capabilities: Capabilities
    price: Price
    description: str
    status: DeploymentStatus
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., capabilities: _Optional[_Union[Capabilities, _Mapping]] = ..., price: _Optional[_Union[Price, _Mapping]] = ..., description: _Optional[str] = ..., status: _Optional[_Union[DeploymentStatus, _Mapping]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelRoute(_message.Message):
    __slots__ = ("alias", "deployments", "is_default", "strategy")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    alias: str
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    is_default: bool
    strategy: str
    def __init__(self, alias: _Optional[str] = ..., deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ..., is_default: _Optional[bool] = ..., strategy: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("routes", "next_page_token")
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[ModelRoute]
    next_page_token: str
    def __init__(self, routes: _Optional[_Iterable[_Union[ModelRoute, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
