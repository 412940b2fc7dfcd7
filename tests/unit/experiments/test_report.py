"""The report: per-variant figures, no verdict before the minimum sample, gates, the verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.config.experiments import ExperimentConfig
from sidecar.experiments.control import changes
from sidecar.experiments.report import Verdict, build_report, render
from sidecar.ledger.record import ExperimentRow


def exp(**kw: Any) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"route": "chat", "control": "a", "variants": {"a": {}, "b": {}}, "min_samples": 5} | kw
    )


def rows(variant: str, scores: list[float], *, cost: float = 0.01, errors: int = 0) -> list[ExperimentRow]:
    out = [ExperimentRow(variant, True, 0.1 * (i + 1), 10, cost, s) for i, s in enumerate(scores)]
    return out + [ExperimentRow(variant, False, 0.05, 0, 0.0, None) for _ in range(errors)]


def test_figures_per_variant() -> None:
    report = build_report("tone", exp(), rows("a", [0.5, 0.6, 0.7, 0.8]) + rows("b", [0.9] * 2, errors=2))
    a, b = report.variants
    assert (a.calls, a.error_rate, a.feedback.n, a.feedback.mean) == (4, 0.0, 4, pytest.approx(0.65))
    assert (a.latency_p50, a.latency_p99) == (pytest.approx(0.2), pytest.approx(0.4))
    assert (b.calls, b.error_rate, b.cost_per_call) == (4, 0.5, pytest.approx(0.005))
    assert report.verdicts[0].verdict is Verdict.INSUFFICIENT_DATA  # fewer than 5 scores each


def test_calls_the_caller_ended_or_was_refused_are_not_a_variants_errors() -> None:
    """Users leaving mid-answer and a tenant over its quota failed every variant's max_error_rate gate
    alike; they are calls, not the variant's errors. A deadline is still an error (a slower model
    makes more of them), and so is a provider failing."""
    caller = [ExperimentRow("b", False, 0.05, 0, 0.0, None, outcome=o) for o in ("CANCELLED", "RATE_LIMITED")]
    own = [
        ExperimentRow("b", False, 0.05, 0, 0.0, None, outcome=o)
        for o in ("DEADLINE_EXCEEDED", "PROVIDERS_UNAVAILABLE")
    ]
    ok = [ExperimentRow("b", True, 0.1, 10, 0.01, 0.9, outcome="OK") for _ in range(6)]
    report = build_report("tone", exp(), rows("a", [0.5] * 4) + ok + caller + own)
    b = report.variants[1]
    assert (b.calls, b.errors, b.error_rate) == (10, 2, pytest.approx(2 / 8))


def test_calls_shed_at_capacity_are_not_a_variants_errors() -> None:
    """The experiment layer assigns a variant before admission: a burst the sidecar sheds with
    OVERLOADED was refused before any model ran, and it sheds every variant's calls alike. Counted
    as errors, 137 sheds of 213 calls put the variant at an error rate of 0.83 and its verdict at
    REJECT (max_error_rate) whatever its model did."""
    shed = [ExperimentRow("b", False, 0.0, 0, 0.0, None, outcome="OVERLOADED") for _ in range(14)]
    ok = [ExperimentRow("b", True, 0.1, 10, 0.01, 0.9, outcome="OK") for _ in range(5)]
    control = [ExperimentRow("a", True, 0.1, 10, 0.01, 0.5, outcome="OK") for _ in range(5)]
    report = build_report("tone", exp(), control + ok + shed)
    b = report.variants[1]
    assert (b.calls, b.errors, b.error_rate) == (19, 0, 0.0)
    assert report.verdicts[0].verdict is not Verdict.REJECT


def test_latency_percentiles_are_the_variants_own_calls() -> None:
    """Calls refused before any model ran (14 shed at once, a tenant over its quota) end at once:
    counted in the percentiles, they put a variant's p50 at 0 s against the control's 2 s. The
    calls the caller ended are left out too; the variant's own errors (a deadline) stay in."""
    refused = [ExperimentRow("b", False, 0.0, 0, 0.0, None, outcome="OVERLOADED") for _ in range(14)]
    refused += [ExperimentRow("b", False, 0.001, 0, 0.0, None, outcome="TOKEN_QUOTA_EXCEEDED")]
    left = [ExperimentRow("b", False, 0.3, 0, 0.0, None, outcome="CANCELLED")]
    ok = [ExperimentRow("b", True, 2.0, 10, 0.01, 0.9, outcome="OK") for _ in range(5)]
    slow = [ExperimentRow("b", False, 9.0, 0, 0.0, None, outcome="DEADLINE_EXCEEDED")]
    control = [ExperimentRow("a", True, 2.0, 10, 0.01, 0.5, outcome="OK") for _ in range(5)]
    b = build_report("tone", exp(), control + ok + refused + left + slow).variants[1]
    assert (b.calls, b.latency_p50, b.latency_p99) == (22, 2.0, 9.0)


def test_cost_and_tokens_per_call_are_the_variants_own_calls() -> None:
    """A call refused before any model ran (shed at a deployment's capacity, over quota) costs
    nothing: averaged in, 15 sheds beside 5 served calls put a variant 50 % dearer than the control
    at a quarter of the control's cost per call, and its verdict at PROMOTE past max_cost_increase."""
    a = [0.50, 0.52, 0.48, 0.51, 0.49, 0.50]
    better = [0.80, 0.82, 0.78, 0.81, 0.79, 0.80]
    shed = [ExperimentRow("b", False, 0.0, 0, 0.0, None, outcome="OVERLOADED") for _ in range(18)]
    report = build_report("tone", exp(), rows("a", a) + rows("b", better, cost=0.015) + shed)
    b = report.variants[1]
    assert (b.calls, b.cost_per_call, b.tokens_per_call) == (24, pytest.approx(0.015), 10)
    assert b.cost_usd == pytest.approx(6 * 0.015) and b.tokens == 60  # the totals are every call's
    verdict = report.verdicts[0]
    assert verdict.verdict is Verdict.REJECT and "cost per call +50%" in verdict.reasons[0]


def test_a_clearly_better_variant_is_promoted_and_a_worse_one_rejected() -> None:
    a = [0.50, 0.52, 0.48, 0.51, 0.49, 0.50]
    better = [0.90, 0.92, 0.88, 0.91, 0.89, 0.90]
    up = build_report("tone", exp(), rows("a", a) + rows("b", better))
    assert up.verdicts[0].verdict is Verdict.PROMOTE
    down = build_report("tone", exp(), rows("a", better) + rows("b", a))
    assert down.verdicts[0].verdict is Verdict.REJECT
    same = build_report("tone", exp(), rows("a", a) + rows("b", list(reversed(a))))
    assert same.verdicts[0].verdict is Verdict.NO_DIFFERENCE
    assert "Welch" in render(up) and "PROMOTE" in render(up)


def test_gates_reject_a_better_but_costlier_or_less_accurate_variant() -> None:
    a = [0.50, 0.52, 0.48, 0.51, 0.49, 0.50]
    better = [0.80, 0.82, 0.78, 0.81, 0.79, 0.80]
    costly = build_report("tone", exp(), rows("a", a) + rows("b", better, cost=0.013))
    assert costly.verdicts[0].verdict is Verdict.REJECT
    assert "cost per call +30%" in costly.verdicts[0].reasons[0]
    accurate = build_report("tone", exp(gates={"min_feedback_mean": 0.85}), rows("a", a) + rows("b", better))
    assert accurate.verdicts[0].verdict is Verdict.REJECT


def test_latency_metric_compares_successful_calls() -> None:
    fast = [ExperimentRow("b", True, 0.1 + i / 1000, 10, 0.01, None) for i in range(6)]
    slow = [ExperimentRow("a", True, 0.5 + i / 1000, 10, 0.01, None) for i in range(6)]
    report = build_report("tone", exp(gates={"metric": "latency"}), slow + fast)
    assert report.verdicts[0].verdict is Verdict.PROMOTE


def test_changes_for_the_audit_trail() -> None:
    before = {"tone": exp()}
    after = {"tone": exp(promoted="b", status="stopped"), "new": exp()}
    assert changes(before, after) == [
        ("new", "added"),
        ("tone", "status running -> stopped"),
        ("tone", "promoted - -> b"),
    ]
