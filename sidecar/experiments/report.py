"""An experiment's report over a time range: per variant the calls, error rate, latency percentiles,
tokens, cost per call and mean feedback (with its confidence interval); per variant against the
control the tests of `gates.metric` and a verdict under the configured gates. No verdict is given
before every compared variant has `min_samples` values of the metric."""

from __future__ import annotations

import dataclasses
import enum
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.config.experiments import ExperimentConfig
from sidecar.experiments.stats import Comparison, Summary, compare, percentile, summarize
from sidecar.ledger.record import ExperimentRow

# Outcomes of the caller's own doing, or refused before any variant's model ran: not the variant's
# errors. A client whose users leave mid-answer, a tenant over its quota, or a burst the sidecar shed
# at capacity (OVERLOADED: admission comes after the assignment) failed every variant's
# max_error_rate gate alike. (A deadline stays an error: a slower model makes more of them.)
CALLERS_OWN = frozenset(
    {
        "CANCELLED", "INVALID_REQUEST", "MALFORMED_REQUEST", "REQUEST_TOO_COMPLEX", "IDEMPOTENCY_KEY_REUSED",
        "MISSING_CREDENTIALS", "INVALID_CREDENTIALS", "TENANT_NOT_ALLOWED", "METHOD_NOT_ALLOWED",
        "MODEL_NOT_ALLOWED", "PERSONA_NOT_ALLOWED", "RATE_LIMITED", "REQUEST_QUOTA_EXCEEDED",
        "TOKEN_QUOTA_EXCEEDED", "COST_QUOTA_EXCEEDED", "CONCURRENCY_LIMITED", "USER_KEY_REQUIRED",
        "USER_KEY_REJECTED", "USER_KEY_RATE_LIMITED", "SIDECAR_DRAINING", "OVERLOADED",
    }
)  # fmt: skip


class Verdict(enum.Enum):
    INSUFFICIENT_DATA = "insufficient data"
    PROMOTE = "promote"  # significantly better and within every gate
    REJECT = "reject"  # significantly worse, or outside a gate
    NO_DIFFERENCE = "no significant difference"


@dataclass(frozen=True, slots=True)
class VariantStats:
    variant: str
    calls: int
    errors: int
    tokens: int
    cost_usd: float
    error_rate: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    tokens_per_call: float
    cost_per_call: float
    feedback: Summary


@dataclass(frozen=True, slots=True)
class VariantVerdict:
    variant: str
    comparison: Comparison | None
    verdict: Verdict
    reasons: tuple[str, ...]
    samples: tuple[int, int] = (0, 0)  # values of the metric: the control's, the variant's


@dataclass(frozen=True, slots=True)
class Report:
    experiment: str
    control: str
    metric: str
    alpha: float
    variants: tuple[VariantStats, ...]
    verdicts: tuple[VariantVerdict, ...]


def build_report(name: str, exp: ExperimentConfig, rows: Sequence[ExperimentRow]) -> Report:
    by_variant = {v: [r for r in rows if r.variant == v] for v in exp.variants}
    stats = tuple(_variant_stats(v, rs) for v, rs in by_variant.items())
    control = next(s for s in stats if s.variant == exp.control)
    verdicts = tuple(
        _verdict(exp, control, s, _metric(exp, by_variant[exp.control]), _metric(exp, by_variant[s.variant]))
        for s in stats
        if s.variant != exp.control
    )
    return Report(name, exp.control, exp.gates.metric, exp.alpha, stats, verdicts)


def _metric(exp: ExperimentConfig, rows: Sequence[ExperimentRow]) -> list[float]:
    """The values the tests compare: feedback scores, or the latency of successful calls."""
    if exp.gates.metric == "latency":
        return [r.latency_seconds for r in rows if r.ok]
    return [r.feedback for r in rows if r.feedback is not None]


def _variant_stats(variant: str, rows: Sequence[ExperimentRow]) -> VariantStats:
    n = len(rows)
    scores = [r.feedback for r in rows if r.feedback is not None]
    judged = [r for r in rows if r.outcome not in CALLERS_OWN]  # the variant's own successes and errors
    # the variant's own calls only: a call refused before any model ran (shed, over quota) ends in a
    # millisecond, and a burst of them made a variant look faster than the one it was compared with
    latencies = [r.latency_seconds for r in judged]
    errors = sum(not r.ok for r in judged)
    return VariantStats(
        variant=variant,
        calls=n,
        errors=errors,
        tokens=sum(r.tokens for r in rows),
        cost_usd=sum(r.cost_usd for r in rows),
        error_rate=errors / len(judged) if judged else math.nan,
        latency_p50=percentile(latencies, 0.50),
        latency_p95=percentile(latencies, 0.95),
        latency_p99=percentile(latencies, 0.99),
        # per call of its own too: a shed call costs nothing, and a burst of them made a variant look
        # cheaper than the control it was gated against (max_cost_increase)
        tokens_per_call=statistics.fmean(r.tokens for r in judged) if judged else math.nan,
        cost_per_call=statistics.fmean(r.cost_usd for r in judged) if judged else math.nan,
        feedback=summarize(scores),
    )


def _verdict(
    exp: ExperimentConfig, control: VariantStats, s: VariantStats, a: list[float], b: list[float]
) -> VariantVerdict:
    return dataclasses.replace(_judged(exp, control, s, a, b), samples=(len(a), len(b)))


def _judged(
    exp: ExperimentConfig, control: VariantStats, s: VariantStats, a: list[float], b: list[float]
) -> VariantVerdict:
    if min(len(a), len(b)) < exp.min_samples:
        need = f"{exp.gates.metric} values: {len(a)} (control) and {len(b)}, need {exp.min_samples} each"
        return VariantVerdict(s.variant, None, Verdict.INSUFFICIENT_DATA, (need,))
    c = compare(a, b)
    gates = _gate_failures(exp, control, s)
    better = c.difference > 0 if exp.gates.metric == "feedback" else c.difference < 0
    significant = c.welch_p < exp.alpha
    if gates:
        return VariantVerdict(s.variant, c, Verdict.REJECT, gates)
    if significant and not better:
        return VariantVerdict(s.variant, c, Verdict.REJECT, (f"significantly worse (p={c.welch_p:.3g})",))
    if significant:
        return VariantVerdict(s.variant, c, Verdict.PROMOTE, (f"significantly better (p={c.welch_p:.3g})",))
    return VariantVerdict(s.variant, c, Verdict.NO_DIFFERENCE, (f"p={c.welch_p:.3g} >= alpha {exp.alpha}",))


def _gate_failures(exp: ExperimentConfig, control: VariantStats, s: VariantStats) -> tuple[str, ...]:
    g, out = exp.gates, []
    if s.error_rate > g.max_error_rate:
        out.append(f"error rate {s.error_rate:.3f} > {g.max_error_rate}")
    if control.cost_per_call > 0 and s.cost_per_call > control.cost_per_call * (1 + g.max_cost_increase):
        increase = s.cost_per_call / control.cost_per_call - 1
        out.append(f"cost per call +{increase:.0%} > +{g.max_cost_increase:.0%}")
    if g.min_feedback_mean is not None and not s.feedback.mean > g.min_feedback_mean:
        out.append(f"mean feedback {s.feedback.mean:.3f} <= {g.min_feedback_mean}")
    return tuple(out)


def render(report: Report) -> str:
    """The report as the CLI prints it."""
    head = (
        f"experiment {report.experiment} (control {report.control}; compared on {report.metric}, "
        f"alpha {report.alpha})"
    )
    cols = f"{'variant':<12}{'calls':>7}{'errors':>8}{'p50 s':>8}{'p95 s':>8}{'p99 s':>8}"
    cols += f"{'tokens':>8}{'$/call':>10}  feedback (95% CI)"
    lines = [head, cols]
    for v in report.variants:
        f = v.feedback
        ci = f"{f.mean:.3f} [{f.ci_low:.3f}, {f.ci_high:.3f}] n={f.n}" if f.n else "-"
        lines.append(
            f"{v.variant:<12}{v.calls:>7}{v.error_rate:>8.3f}{v.latency_p50:>8.3f}{v.latency_p95:>8.3f}"
            f"{v.latency_p99:>8.3f}{v.tokens_per_call:>8.1f}{v.cost_per_call:>10.6f}  {ci}"
        )
    for d in report.verdicts:
        lines.append(f"{d.variant} vs {report.control}: {d.verdict.value.upper()} ({'; '.join(d.reasons)})")
        if (c := d.comparison) is not None:
            lines.append(
                f"  difference {c.difference:+.4f}; Welch t={c.welch_t:.3f} p={c.welch_p:.4g}; "
                f"Mann-Whitney U={c.mann_whitney_u:.1f} p={c.mann_whitney_p:.4g}; Cohen's d={c.cohens_d:.3f}"
            )
    return "\n".join(lines)
