import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Persona(_message.Message):
    __slots__ = ("id", "display_name", "aliases", "category", "tiers", "default_route", "prompt_tokens")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ROUTE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    category: str
    tiers: _containers.RepeatedScalarFieldContainer[str]
    default_route: str
    prompt_tokens: int
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., category: _Optional[str] = ..., tiers: _Optional[_Iterable[str]] = ..., default_route: _Optional[str] = ..., prompt_tokens: _Optional[int] = ...) -> None: ...

class ListPersonasRequest(_message.Message):
    __slots__ = ("category", "tier", "page_size", "page_token")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    category: str
    tier: str
    page_size: int
    page_token: str
    def __init__(self, category: _Optional[str] = ..., tier: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPersonasResponse(_message.Message):
    __slots__ = ("personas", "default_persona_id", "next_page_token")
    PERSONAS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PERSONA_ID_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    personas: _containers.RepeatedCompositeFieldContainer[Persona]
    default_persona_id: str
    next_page_token: str
    def __init__(self, personas: _Optional[_Iterable[_Union[Persona, _Mapping]]] = ..., default_persona_id: _Optional[str] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SwitchRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "conversation_id", "persona_id", "command", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PERSONA_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    conversation_id: str
    persona_id: str
    command: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., persona_id: _Optional[str] = ..., command: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SwitchResponse(_message.Message):
    __slots__ = ("persona", "previous_persona_id", "version")
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_PERSONA_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    persona: Persona
    previous_persona_id: str
    version: int
    def __init__(self, persona: _Optional[_Union[Persona, _Mapping]] = ..., previous_persona_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SwitchRecord(_message.Message):
    __slots__ = ("conversation_id", "from_persona_id", "to_persona_id", "command", "success", "error_reason", "time", "version")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_PERSONA_ID_FIELD_NUMBER: _ClassVar[int]
    TO_PERSONA_ID_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    from_persona_id: str
    to_persona_id: str
    command: str
    success: bool
    error_reason: str
    time: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, conversation_id: _Optional[str] = ..., from_persona_id: _Optional[str] = ..., to_persona_id: _Optional[str] = ..., command: _Optional[str] = ..., success: _Optional[bool] = ..., error_reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ...) -> None: ...

class ListSwitchHistoryRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "conversation_id", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    conversation_id: str
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSwitchHistoryResponse(_message.Message):
    __slots__ = ("switches", "next_page_token")
    SWITCHES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    switches: _containers.RepeatedCompositeFieldContainer[SwitchRecord]
    next_page_token: str
    def __init__(self, switches: _Optional[_Iterable[_Union[SwitchRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ClearConversationRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "conversation_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    conversation_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ...) -> None: ...

class ClearConversationResponse(_message.Message):
    __slots__ = ("cleared",)
    CLEARED_FIELD_NUMBER: _ClassVar[int]
    cleared: bool
    def __init__(self, cleared: _Optional[bool] = ...) -> None: ...
