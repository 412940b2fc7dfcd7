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

class ExperimentMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_METRIC_UNSPECIFIED: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_FEEDBACK: _ClassVar[ExperimentMetric]
    EXPERIMENT_METRIC_LATENCY: _ClassVar[ExperimentMetric]

class ExperimentVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPERIMENT_VERDICT_UNSPECIFIED: _ClassVar[ExperimentVerdict]
    EXPERIMENT_VERDICT_INSUFFICIENT_DATA: _ClassVar[ExperimentVerdict]
    EXPERIMENT_VERDICT_PROMOTE: _ClassVar[ExperimentVerdict]
    EXPERIMENT_VERDICT_REJECT: _ClassVar[ExperimentVerdict]
    EXPERIMENT_VERDICT_NO_DIFFERENCE: _ClassVar[ExperimentVerdict]
EXPERIMENT_METRIC_UNSPECIFIED: ExperimentMetric
EXPERIMENT_METRIC_FEEDBACK: ExperimentMetric
EXPERIMENT_METRIC_LATENCY: ExperimentMetric
EXPERIMENT_VERDICT_UNSPECIFIED: ExperimentVerdict
EXPERIMENT_VERDICT_INSUFFICIENT_DATA: ExperimentVerdict
EXPERIMENT_VERDICT_PROMOTE: ExperimentVerdict
EXPERIMENT_VERDICT_REJECT: ExperimentVerdict
EXPERIMENT_VERDICT_NO_DIFFERENCE: ExperimentVerdict

class FeedbackRequest(_message.Message):
    __slots__ = ("tenant_id", "request_id", "score", "label")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    request_id: str
    score: float
    label: str
    def __init__(self, tenant_id: _Optional[str] = ..., request_id: _Optional[str] = ..., score: _Optional[float] = ..., label: _Optional[str] = ...) -> None: ...

class FeedbackResponse(_message.Message):
    __slots__ = ("already_recorded", "experiment", "variant")
    ALREADY_RECORDED_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    already_recorded: bool
    experiment: str
    variant: str
    def __init__(self, already_recorded: _Optional[bool] = ..., experiment: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class GetExperimentReportRequest(_message.Message):
    __slots__ = ("tenant_id", "experiment", "start_time", "end_time")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    experiment: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., experiment: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FeedbackSummary(_message.Message):
    __slots__ = ("count", "mean", "ci_low", "ci_high", "confidence")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    count: int
    mean: float
    ci_low: float
    ci_high: float
    confidence: float
    def __init__(self, count: _Optional[int] = ..., mean: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class VariantReport(_message.Message):
    __slots__ = ("variant", "calls", "errors", "error_rate", "latency_p50", "latency_p95", "latency_p99", "total_tokens", "tokens_per_call", "cost_micros", "cost_per_call_micros", "feedback")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P99_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_CALL_FIELD_NUMBER: _ClassVar[int]
    COST_MICROS_FIELD_NUMBER: _ClassVar[int]
    COST_PER_CALL_MICROS_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_FIELD_NUMBER: _ClassVar[int]
    variant: str
    calls: int
    errors: int
    error_rate: float
    latency_p50: _duration_pb2.Duration
    latency_p95: _duration_pb2.Duration
    latency_p99: _duration_pb2.Duration
    total_tokens: int
    tokens_per_call: float
    cost_micros: int
    cost_per_call_micros: int
    feedback: FeedbackSummary
    def __init__(self, variant: _Optional[str] = ..., calls: _Optional[int] = ..., errors: _Optional[int] = ..., error_rate: _Optional[float] = ..., latency_p50: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., latency_p95: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., latency_p99: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., total_tokens: _Optional[int] = ..., tokens_per_call: _Optional[float] = ..., cost_micros: _Optional[int] = ..., cost_per_call_micros: _Optional[int] = ..., feedback: _Optional[_Union[FeedbackSummary, _Mapping]] = ...) -> None: ...

class VariantComparison(_message.Message):
    __slots__ = ("variant", "verdict", "reasons", "control_samples", "variant_samples", "difference", "welch_t", "welch_p", "mann_whitney_u", "mann_whitney_p", "cohens_d")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    VARIANT_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DIFFERENCE_FIELD_NUMBER: _ClassVar[int]
    WELCH_T_FIELD_NUMBER: _ClassVar[int]
    WELCH_P_FIELD_NUMBER: _ClassVar[int]
    MANN_WHITNEY_U_FIELD_NUMBER: _ClassVar[int]
    MANN_WHITNEY_P_FIELD_NUMBER: _ClassVar[int]
    COHENS_D_FIELD_NUMBER: _ClassVar[int]
    variant: str
    verdict: ExperimentVerdict
    reasons: _containers.RepeatedScalarFieldContainer[str]
    control_samples: int
    variant_samples: int
    difference: float
    welch_t: float
    welch_p: float
    mann_whitney_u: float
    mann_whitney_p: float
    cohens_d: float
    def __init__(self, variant: _Optional[str] = ..., verdict: _Optional[_Union[ExperimentVerdict, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., control_samples: _Optional[int] = ..., variant_samples: _Optional[int] = ..., difference: _Optional[float] = ..., welch_t: _Optional[float] = ..., welch_p: _Optional[float] = ..., mann_whitney_u: _Optional[float] = ..., mann_whitney_p: _Optional[float] = ..., cohens_d: _Optional[float] = ...) -> None: ...

class GetExperimentReportResponse(_message.Message):
    __slots__ = ("experiment", "control", "metric", "alpha", "min_samples", "variants", "comparisons", "status", "promoted")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    COMPARISONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROMOTED_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    control: str
    metric: ExperimentMetric
    alpha: float
    min_samples: int
    variants: _containers.RepeatedCompositeFieldContainer[VariantReport]
    comparisons: _containers.RepeatedCompositeFieldContainer[VariantComparison]
    status: str
    promoted: str
    def __init__(self, experiment: _Optional[str] = ..., control: _Optional[str] = ..., metric: _Optional[_Union[ExperimentMetric, str]] = ..., alpha: _Optional[float] = ..., min_samples: _Optional[int] = ..., variants: _Optional[_Iterable[_Union[VariantReport, _Mapping]]] = ..., comparisons: _Optional[_Iterable[_Union[VariantComparison, _Mapping]]] = ..., status: _Optional[str] = ..., promoted: _Optional[str] = ...) -> None: ...

class GetExperimentReportAcrossTenantsRequest(_message.Message):
    __slots__ = ("experiment", "start_time", "end_time")
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    experiment: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, experiment: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetExperimentReportAcrossTenantsResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: GetExperimentReportResponse
    def __init__(self, report: _Optional[_Union[GetExperimentReportResponse, _Mapping]] = ...) -> None: ...
