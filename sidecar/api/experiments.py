"""ExperimentService at the edge: Feedback and GetExperimentReport requests validated, the ledger
asked (tenant-scoped), and the report turned into its message. No statistic that is not a finite
number goes on the wire: such fields stay unset."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sidecar._gen.orchestrator.v1 import experiments_pb2 as pb
from sidecar.api.convert import Violations, duration, micros
from sidecar.config.experiments import NAME, ExperimentConfig
from sidecar.core.errors import Code, FieldViolation, InvalidRequestError, SidecarError
from sidecar.experiments.book import ExperimentBook
from sidecar.experiments.feedback import Feedback, record_feedback, validated
from sidecar.experiments.report import Report, VariantStats, VariantVerdict, Verdict, build_report
from sidecar.experiments.stats import StatsUnavailableError
from sidecar.ledger.record import FeedbackStatus, LedgerDisabledError, LedgerUnavailableError
from sidecar.ledger.writer import LedgerWriter

_log = logging.getLogger("sidecar.api")
T = TypeVar("T")
_NAME = re.compile(NAME)
CONFIDENCE = 0.95
MAX_ROWS = 250_000  # calls one report reads into memory
_VERDICTS = {
    Verdict.INSUFFICIENT_DATA: pb.EXPERIMENT_VERDICT_INSUFFICIENT_DATA,
    Verdict.PROMOTE: pb.EXPERIMENT_VERDICT_PROMOTE,
    Verdict.REJECT: pb.EXPERIMENT_VERDICT_REJECT,
    Verdict.NO_DIFFERENCE: pb.EXPERIMENT_VERDICT_NO_DIFFERENCE,
}
_METRICS = {"feedback": pb.EXPERIMENT_METRIC_FEEDBACK, "latency": pb.EXPERIMENT_METRIC_LATENCY}


class ExperimentNotFoundError(SidecarError):
    """The policy in force has no experiment of that name."""

    code = Code.NOT_FOUND
    reason = "EXPERIMENT_NOT_FOUND"


class StatsMissingError(SidecarError):
    """The sidecar was installed without the `stats` extra (scipy)."""

    code = Code.FAILED_PRECONDITION
    reason = "STATS_UNAVAILABLE"


async def feedback(ledger: LedgerWriter | None, req: pb.FeedbackRequest) -> pb.FeedbackResponse:
    """Validate, then score the call (this sidecar's unwritten records are written first)."""
    f = validated(Feedback(req.tenant_id, req.request_id, req.score, req.label))
    store = _enabled(ledger)
    result = await _read(_flushed_then(store, lambda: record_feedback(store.store, f)))
    return pb.FeedbackResponse(
        already_recorded=result.status is FeedbackStatus.REPEATED,
        experiment=result.experiment,
        variant=result.variant,
    )


async def report(
    ledger: LedgerWriter | None,
    book: ExperimentBook,
    req: pb.GetExperimentReportRequest | pb.GetExperimentReportAcrossTenantsRequest,
) -> pb.GetExperimentReportResponse:
    """The tenant's calls of the experiment in [start_time, end_time), compared; every tenant's for
    the AdminService's request, which names none."""
    tenant = req.tenant_id if isinstance(req, pb.GetExperimentReportRequest) else None
    start, end = _validated(req, tenant)
    exp = book.named(req.experiment)
    if exp is None:
        raise ExperimentNotFoundError(
            f"no experiment {req.experiment!r} is configured",
            metadata={"experiment": req.experiment},
            violations=[FieldViolation("experiment", "the name of an experiment this sidecar runs")],
        )
    store = _enabled(ledger)
    rows = await _read(
        _flushed_then(
            store, lambda: store.store.experiment_rows(req.experiment, start, end, tenant, MAX_ROWS + 1)
        )
    )
    if len(rows) > MAX_ROWS:
        raise InvalidRequestError(
            [FieldViolation("start_time", f"the range holds more than {MAX_ROWS} calls: narrow it")]
        )
    try:  # the tests and percentiles are CPU work: off the event loop
        built = await asyncio.to_thread(build_report, req.experiment, exp, rows)
    except StatsUnavailableError as exc:
        raise StatsMissingError(str(exc)) from exc
    return to_response(built, exp)


def _validated(
    req: pb.GetExperimentReportRequest | pb.GetExperimentReportAcrossTenantsRequest, tenant: str | None
) -> tuple[float, float]:
    bad = Violations()
    if tenant is not None:
        bad.check_id("tenant_id", tenant, required=True)
    if not req.experiment:
        bad.add("experiment", "required")
    elif not _NAME.fullmatch(req.experiment):
        bad.add("experiment", "an experiment name: lowercase letters, digits, _ and -, at most 32")
    start = bad.time("start_time", req.start_time, present=req.HasField("start_time"))
    end = bad.time("end_time", req.end_time, present=req.HasField("end_time"))
    if start is not None and end is not None and end <= start:
        bad.add("end_time", "must be after start_time")
    bad.raise_if_any()
    assert start is not None and end is not None
    return start, end


def _enabled(ledger: LedgerWriter | None) -> LedgerWriter:
    if ledger is None:
        raise LedgerDisabledError("this sidecar keeps no usage ledger (settings.telemetry.ledger.backend)")
    return ledger


async def _flushed_then(ledger: LedgerWriter, work: Callable[[], Awaitable[T]]) -> T:
    """This sidecar's queued records written, then `work` made and awaited: made only then, so a
    call cancelled during the flush leaves no coroutine that was never awaited."""
    await ledger.caught_up()
    return await work()


async def _read(work: Awaitable[T]) -> T:
    """A ledger operation; a database failure is LEDGER_UNAVAILABLE (classified errors pass)."""
    try:
        return await work
    except SidecarError:
        raise
    except Exception as exc:
        _log.error("ledger operation failed", extra={"error": type(exc).__name__})
        raise LedgerUnavailableError("the usage ledger cannot be used now; retry later") from exc


def to_response(r: Report, exp: ExperimentConfig) -> pb.GetExperimentReportResponse:
    ordered = sorted(r.variants, key=lambda v: (v.variant != r.control, v.variant))
    return pb.GetExperimentReportResponse(
        experiment=r.experiment,
        control=r.control,
        metric=_METRICS[r.metric],
        alpha=r.alpha,
        min_samples=exp.min_samples,
        variants=[_variant(v) for v in ordered],
        comparisons=[_comparison(v) for v in r.verdicts],
        status=exp.status,
        promoted=exp.promoted or "",
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _variant(v: VariantStats) -> pb.VariantReport:
    out = pb.VariantReport(
        variant=v.variant,
        calls=v.calls,
        errors=v.errors,
        total_tokens=v.tokens,
        cost_micros=micros(v.cost_usd),
        error_rate=_finite(v.error_rate),
        tokens_per_call=_finite(v.tokens_per_call),
        feedback=pb.FeedbackSummary(
            count=v.feedback.n,
            mean=_finite(v.feedback.mean),
            ci_low=_finite(v.feedback.ci_low),
            ci_high=_finite(v.feedback.ci_high),
            confidence=CONFIDENCE,
        ),
    )
    if math.isfinite(v.cost_per_call):
        out.cost_per_call_micros = micros(v.cost_per_call)
    # a variant whose every call was refused before any model ran (or cancelled) has calls but no
    # latency or cost per call of its own: NaN, which a Duration (or an integer) cannot hold
    for field, seconds in (("latency_p50", v.latency_p50), ("latency_p95", v.latency_p95),
                           ("latency_p99", v.latency_p99)):  # fmt: skip
        if math.isfinite(seconds):
            getattr(out, field).CopyFrom(duration(seconds))
    return out


def _comparison(d: VariantVerdict) -> pb.VariantComparison:
    out = pb.VariantComparison(
        variant=d.variant,
        verdict=_VERDICTS[d.verdict],
        reasons=list(d.reasons),
        control_samples=d.samples[0],
        variant_samples=d.samples[1],
    )
    if (c := d.comparison) is not None:
        stats = {
            "difference": c.difference,
            "welch_t": c.welch_t,
            "welch_p": c.welch_p,
            "mann_whitney_u": c.mann_whitney_u,
            "mann_whitney_p": c.mann_whitney_p,
            "cohens_d": c.cohens_d,
        }
        for field, value in stats.items():
            if math.isfinite(value):
                setattr(out, field, value)
    return out
