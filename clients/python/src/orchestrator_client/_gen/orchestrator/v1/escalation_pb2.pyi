import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import answers_pb2 as _answers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EscalationState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ESCALATION_STATE_UNSPECIFIED: _ClassVar[EscalationState]
    ESCALATION_STATE_OFFERED: _ClassVar[EscalationState]
    ESCALATION_STATE_QUEUED: _ClassVar[EscalationState]
    ESCALATION_STATE_ANSWERED: _ClassVar[EscalationState]
    ESCALATION_STATE_DECLINED: _ClassVar[EscalationState]
    ESCALATION_STATE_EXPIRED: _ClassVar[EscalationState]

class EscalationContextKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ESCALATION_CONTEXT_KIND_UNSPECIFIED: _ClassVar[EscalationContextKind]
    ESCALATION_CONTEXT_KIND_VERBATIM: _ClassVar[EscalationContextKind]
    ESCALATION_CONTEXT_KIND_SUMMARY: _ClassVar[EscalationContextKind]
ESCALATION_STATE_UNSPECIFIED: EscalationState
ESCALATION_STATE_OFFERED: EscalationState
ESCALATION_STATE_QUEUED: EscalationState
ESCALATION_STATE_ANSWERED: EscalationState
ESCALATION_STATE_DECLINED: EscalationState
ESCALATION_STATE_EXPIRED: EscalationState
ESCALATION_CONTEXT_KIND_UNSPECIFIED: EscalationContextKind
ESCALATION_CONTEXT_KIND_VERBATIM: EscalationContextKind
ESCALATION_CONTEXT_KIND_SUMMARY: EscalationContextKind

class ContextMessage(_message.Message):
    __slots__ = ("role", "text")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    role: str
    text: str
    def __init__(self, role: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class Escalation(_message.Message):
    __slots__ = ("id", "tenant_id", "agent_id", "user_id", "conversation_id", "question", "layer", "state", "reason", "context", "create_time", "offer_expire_time", "queue_time", "expire_time", "close_time", "answer", "canonical_answer_id", "decline_reason", "context_kind", "context_summary")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    OFFER_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    QUEUE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    DECLINE_REASON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_KIND_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant_id: str
    agent_id: str
    user_id: str
    conversation_id: str
    question: str
    layer: str
    state: EscalationState
    reason: str
    context: _containers.RepeatedCompositeFieldContainer[ContextMessage]
    create_time: _timestamp_pb2.Timestamp
    offer_expire_time: _timestamp_pb2.Timestamp
    queue_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    answer: str
    canonical_answer_id: str
    decline_reason: str
    context_kind: EscalationContextKind
    context_summary: str
    def __init__(self, id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., question: _Optional[str] = ..., layer: _Optional[str] = ..., state: _Optional[_Union[EscalationState, str]] = ..., reason: _Optional[str] = ..., context: _Optional[_Iterable[_Union[ContextMessage, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., offer_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queue_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., answer: _Optional[str] = ..., canonical_answer_id: _Optional[str] = ..., decline_reason: _Optional[str] = ..., context_kind: _Optional[_Union[EscalationContextKind, str]] = ..., context_summary: _Optional[str] = ...) -> None: ...

class AcceptEscalationRequest(_message.Message):
    __slots__ = ("tenant_id", "user_id", "escalation_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    user_id: str
    escalation_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., user_id: _Optional[str] = ..., escalation_id: _Optional[str] = ...) -> None: ...

class AcceptEscalationResponse(_message.Message):
    __slots__ = ("escalation", "path")
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    escalation: Escalation
    path: _answers_pb2.AnswerPath
    def __init__(self, escalation: _Optional[_Union[Escalation, _Mapping]] = ..., path: _Optional[_Union[_answers_pb2.AnswerPath, str]] = ...) -> None: ...

class ListEscalationsRequest(_message.Message):
    __slots__ = ("tenant_id", "agent_id", "states", "user_id", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    agent_id: str
    states: _containers.RepeatedScalarFieldContainer[EscalationState]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., states: _Optional[_Iterable[_Union[EscalationState, str]]] = ..., user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEscalationsResponse(_message.Message):
    __slots__ = ("escalations", "next_page_token")
    ESCALATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    escalations: _containers.RepeatedCompositeFieldContainer[Escalation]
    next_page_token: str
    def __init__(self, escalations: _Optional[_Iterable[_Union[Escalation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class AnswerEscalationRequest(_message.Message):
    __slots__ = ("tenant_id", "agent_id", "escalation_id", "answer", "layer")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    agent_id: str
    escalation_id: str
    answer: str
    layer: str
    def __init__(self, tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., escalation_id: _Optional[str] = ..., answer: _Optional[str] = ..., layer: _Optional[str] = ...) -> None: ...

class AnswerEscalationResponse(_message.Message):
    __slots__ = ("escalation", "canonical_answer_id")
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    escalation: Escalation
    canonical_answer_id: str
    def __init__(self, escalation: _Optional[_Union[Escalation, _Mapping]] = ..., canonical_answer_id: _Optional[str] = ...) -> None: ...

class DeclineEscalationRequest(_message.Message):
    __slots__ = ("tenant_id", "agent_id", "escalation_id", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    agent_id: str
    escalation_id: str
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ..., escalation_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeclineEscalationResponse(_message.Message):
    __slots__ = ("escalation",)
    ESCALATION_FIELD_NUMBER: _ClassVar[int]
    escalation: Escalation
    def __init__(self, escalation: _Optional[_Union[Escalation, _Mapping]] = ...) -> None: ...

class GetAnswerReportRequest(_message.Message):
    __slots__ = ("tenant_id", "agent_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    agent_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., agent_id: _Optional[str] = ...) -> None: ...

class GetAnswerReportResponse(_message.Message):
    __slots__ = ("messages", "paths", "users", "auto_answer_rate", "escalations_per_100_users", "reuse_rate", "queue_backlog", "decline_rate", "median_seconds_to_answer", "canonical_answers", "canonical_reuses")
    class PathsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    AUTO_ANSWER_RATE_FIELD_NUMBER: _ClassVar[int]
    ESCALATIONS_PER_100_USERS_FIELD_NUMBER: _ClassVar[int]
    REUSE_RATE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_BACKLOG_FIELD_NUMBER: _ClassVar[int]
    DECLINE_RATE_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_SECONDS_TO_ANSWER_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_ANSWERS_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_REUSES_FIELD_NUMBER: _ClassVar[int]
    messages: int
    paths: _containers.ScalarMap[str, int]
    users: int
    auto_answer_rate: float
    escalations_per_100_users: float
    reuse_rate: float
    queue_backlog: int
    decline_rate: float
    median_seconds_to_answer: float
    canonical_answers: int
    canonical_reuses: int
    def __init__(self, messages: _Optional[int] = ..., paths: _Optional[_Mapping[str, int]] = ..., users: _Optional[int] = ..., auto_answer_rate: _Optional[float] = ..., escalations_per_100_users: _Optional[float] = ..., reuse_rate: _Optional[float] = ..., queue_backlog: _Optional[int] = ..., decline_rate: _Optional[float] = ..., median_seconds_to_answer: _Optional[float] = ..., canonical_answers: _Optional[int] = ..., canonical_reuses: _Optional[int] = ...) -> None: ...
