from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Capabilities(_message.Message):
    __slots__ = ("streaming", "tools", "json_schema", "max_context_tokens")
    STREAMING_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    MAX_CONTEXT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    streaming: bool
    tools: bool
    json_schema: bool
    max_context_tokens: int
    def __init__(self, streaming: _Optional[bool] = ..., tools: _Optional[bool] = ..., json_schema: _Optional[bool] = ..., max_context_tokens: _Optional[int] = ...) -> None: ...

class Price(_message.Message):
    __slots__ = ("input_per_million", "output_per_million")
    INPUT_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    input_per_million: float
    output_per_million: float
    def __init__(self, input_per_million: _Optional[float] = ..., output_per_million: _Optional[float] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("name", "provider", "model", "capabilities", "price", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    provider: str
    model: str
    capabilities: Capabilities
    price: Price
    description: str
    def __init__(self, name: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., capabilities: _Optional[_Union[Capabilities, _Mapping]] = ..., price: _Optional[_Union[Price, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class ModelRoute(_message.Message):
    __slots__ = ("alias", "deployments", "is_default")
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENTS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    alias: str
    deployments: _containers.RepeatedCompositeFieldContainer[Deployment]
    is_default: bool
    def __init__(self, alias: _Optional[str] = ..., deployments: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("routes",)
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[ModelRoute]
    def __init__(self, routes: _Optional[_Iterable[_Union[ModelRoute, _Mapping]]] = ...) -> None: ...
