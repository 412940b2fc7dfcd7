import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnswerPath(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANSWER_PATH_UNSPECIFIED: _ClassVar[AnswerPath]
    ANSWER_PATH_AUTO_ANSWER: _ClassVar[AnswerPath]
    ANSWER_PATH_CLARIFY: _ClassVar[AnswerPath]
    ANSWER_PATH_CANONICAL: _ClassVar[AnswerPath]
    ANSWER_PATH_OFFER_ESCALATION: _ClassVar[AnswerPath]
    ANSWER_PATH_QUEUED: _ClassVar[AnswerPath]
    ANSWER_PATH_REFUSE: _ClassVar[AnswerPath]
ANSWER_PATH_UNSPECIFIED: AnswerPath
ANSWER_PATH_AUTO_ANSWER: AnswerPath
ANSWER_PATH_CLARIFY: AnswerPath
ANSWER_PATH_CANONICAL: AnswerPath
ANSWER_PATH_OFFER_ESCALATION: AnswerPath
ANSWER_PATH_QUEUED: AnswerPath
ANSWER_PATH_REFUSE: AnswerPath

class AnswerSignals(_message.Message):
    __slots__ = ("similarity", "novelty", "complexity", "vagueness", "confidence")
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    NOVELTY_FIELD_NUMBER: _ClassVar[int]
    COMPLEXITY_FIELD_NUMBER: _ClassVar[int]
    VAGUENESS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    similarity: float
    novelty: float
    complexity: float
    vagueness: float
    confidence: float
    def __init__(self, similarity: _Optional[float] = ..., novelty: _Optional[float] = ..., complexity: _Optional[float] = ..., vagueness: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class AnswerDecision(_message.Message):
    __slots__ = ("path", "reason", "signals", "canonical_answer_id", "escalation_id", "offer_expire_time", "alternatives", "available_time")
    PATH_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_ANSWER_ID_FIELD_NUMBER: _ClassVar[int]
    ESCALATION_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_TIME_FIELD_NUMBER: _ClassVar[int]
    path: AnswerPath
    reason: str
    signals: AnswerSignals
    canonical_answer_id: str
    escalation_id: str
    offer_expire_time: _timestamp_pb2.Timestamp
    alternatives: _containers.RepeatedScalarFieldContainer[str]
    available_time: _timestamp_pb2.Timestamp
    def __init__(self, path: _Optional[_Union[AnswerPath, str]] = ..., reason: _Optional[str] = ..., signals: _Optional[_Union[AnswerSignals, _Mapping]] = ..., canonical_answer_id: _Optional[str] = ..., escalation_id: _Optional[str] = ..., offer_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., alternatives: _Optional[_Iterable[str]] = ..., available_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
