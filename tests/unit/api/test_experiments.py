"""The ExperimentService edge: a report's statistics that are not finite never reach the wire (the
optional fields stay unset), and the request priority and variant override fields."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import experiments_pb2 as pb
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import priority_pb2
from sidecar.api.experiments import to_response
from sidecar.api.priority import request_priority, requested_variant
from sidecar.config.experiments import ExperimentConfig
from sidecar.core.priority import Priority
from sidecar.experiments.report import build_report
from sidecar.experiments.stats import Comparison
from sidecar.ledger.record import ExperimentRow

EXP = ExperimentConfig.model_validate(
    {"route": "chat", "control": "a", "variants": {"a": {}, "b": {}}, "min_samples": 2}
)


def row(variant: str, score: float | None, latency: float = 0.2) -> ExperimentRow:
    return ExperimentRow(variant, True, latency, 10, 0.000_25, score)


def _finite_everywhere(message: object) -> list[str]:
    """Paths of every double field that is NaN or infinite."""
    from google.protobuf.message import Message

    bad: list[str] = []
    assert isinstance(message, Message)
    for field, value in message.ListFields():
        if field.message_type is not None:
            items = list(value) if field.is_repeated else [value]
            for item in items:
                bad += [f"{field.name}.{p}" for p in _finite_everywhere(item)]
        elif isinstance(value, float) and not math.isfinite(value):
            bad.append(field.name)
    return bad


def test_constant_samples_give_no_t_statistic_and_no_nan_on_the_wire() -> None:
    # both variants constant and equal: Welch's t is nan, Cohen's d 0
    rows = [row("a", 0.5), row("a", 0.5), row("b", 0.5), row("b", 0.5)]
    out = to_response(build_report("tone", EXP, rows), EXP)
    (c,) = out.comparisons
    assert not c.HasField("welch_t") and not c.HasField("welch_p")
    assert c.HasField("difference") and c.difference == 0 and c.cohens_d == 0
    assert c.verdict == pb.EXPERIMENT_VERDICT_NO_DIFFERENCE
    assert _finite_everywhere(out) == []
    poisoned = pb.GetExperimentReportResponse(variants=[pb.VariantReport(error_rate=math.nan)])
    assert _finite_everywhere(poisoned) == ["variants.error_rate"]  # the check itself can fail


def test_an_empty_variant_has_only_counts() -> None:
    out = to_response(build_report("tone", EXP, [row("a", 0.1), row("a", 0.9)]), EXP)
    a, b = out.variants
    assert a.cost_per_call_micros == 250 and a.cost_micros == 500 and a.total_tokens == 20
    assert a.feedback.HasField("ci_low") and a.latency_p50.ToNanoseconds() == 200_000_000
    assert b.calls == 0 and b.feedback.count == 0
    for field in ("error_rate", "tokens_per_call", "cost_per_call_micros", "latency_p50", "latency_p99"):
        assert not b.HasField(field), field
    assert not b.feedback.HasField("mean") and not b.feedback.HasField("ci_low")
    (c,) = out.comparisons
    assert c.verdict == pb.EXPERIMENT_VERDICT_INSUFFICIENT_DATA and (
        c.control_samples,
        c.variant_samples,
    ) == (2, 0)
    assert not c.HasField("difference")


def test_infinite_statistics_are_left_unset() -> None:
    from sidecar.api.experiments import _comparison
    from sidecar.experiments.report import VariantVerdict, Verdict

    c = Comparison(0.3, math.inf, 0.0, 4.0, math.nan, -math.inf)
    out = _comparison(VariantVerdict("b", c, Verdict.PROMOTE, ("why",), (3, 3)))
    assert [f.name for f, _ in out.ListFields() if f.name in {"welch_t", "mann_whitney_p", "cohens_d"}] == []
    assert out.welch_p == 0.0 and out.HasField("welch_p") and out.mann_whitney_u == 4.0


def bad_collector() -> tuple[list[tuple[str, str]], object]:
    seen: list[tuple[str, str]] = []
    return seen, lambda field, why: seen.append((field, why))


@pytest.mark.parametrize(
    ("level", "metadata", "expected", "fields"),
    [
        (priority_pb2.PRIORITY_UNSPECIFIED, {}, Priority.NORMAL, []),
        (priority_pb2.PRIORITY_UNSPECIFIED, {"priority": "urgent"}, Priority.URGENT, []),
        (priority_pb2.PRIORITY_LOW, {}, Priority.LOW, []),
        (priority_pb2.PRIORITY_CRITICAL, {"priority": "CRITICAL"}, Priority.CRITICAL, []),
        (priority_pb2.PRIORITY_HIGH, {"priority": "low"}, Priority.HIGH, ["priority"]),
        (42, {}, Priority.NORMAL, ["priority"]),
        (priority_pb2.PRIORITY_UNSPECIFIED, {"priority": "top"}, Priority.NORMAL, ["metadata[priority]"]),
    ],
)
def test_the_request_priority(
    level: int, metadata: dict[str, str], expected: Priority, fields: list[str]
) -> None:
    seen, bad = bad_collector()
    req = gen.GenerationInput(priority=level, metadata=metadata)  # type: ignore[arg-type]
    assert request_priority(req, bad) is expected  # type: ignore[arg-type]
    assert [f for f, _ in seen] == fields


@pytest.mark.parametrize(
    ("named", "metadata", "expected", "fields"),
    [
        ("", {"experiment_variant": "b"}, "", []),  # the label alone is the experiment layer's
        ("b", {}, "b", []),
        ("b", {"experiment_variant": "b"}, "b", []),
        ("b", {"experiment_variant": "a"}, "b", ["experiment_variant"]),
        ("no spaces", {}, "", ["experiment_variant"]),
        ("x" * 65, {}, "", ["experiment_variant"]),
    ],
)
def test_the_requested_variant(
    named: str, metadata: dict[str, str], expected: str, fields: list[str]
) -> None:
    seen, bad = bad_collector()
    req = gen.GenerationInput(experiment_variant=named, metadata=metadata)
    assert requested_variant(req, bad) == expected  # type: ignore[arg-type]
    assert [f for f, _ in seen] == fields


async def test_feedback_cancelled_while_the_ledger_flushes_leaves_no_coroutine_unawaited(clock: Any) -> None:
    """The ledger's operation was made before the flush it waits for: a caller whose deadline ended
    during the flush left a coroutine that was never awaited (a RuntimeWarning per call)."""
    import gc
    import warnings

    from sidecar.api.experiments import feedback
    from sidecar.ledger.writer import LedgerPolicy, LedgerWriter
    from sidecar.telemetry.metrics import Metrics
    from tests.unit.ledger.test_writer import BlockedStore, record

    store = BlockedStore()
    writer = LedgerWriter(store, LedgerPolicy(), clock=clock, signals=Metrics())  # type: ignore[arg-type]
    await writer.start()
    writer.submit(record(1))  # the flush waits for this write, which waits for release
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        task = asyncio.create_task(
            feedback(writer, pb.FeedbackRequest(tenant_id="t", request_id="r1", score=1))
        )
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        del task
        gc.collect()
    assert not [w for w in seen if "never awaited" in str(w.message)]
    store.release.set()
    await writer.stop()
