"""The statistics of an experiment report: summaries with confidence intervals, and the difference of
two variants by Welch's t-test and the Mann-Whitney U test (scipy, the `stats` extra, imported only
when a comparison is made), with Cohen's d as the effect size."""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class StatsUnavailableError(RuntimeError):
    """scipy is not installed: `pip install 'orchestrator-sidecar[stats]'`."""


@dataclass(frozen=True, slots=True)
class Summary:
    n: int
    mean: float
    ci_low: float  # the t-based confidence interval of the mean (nan below two samples)
    ci_high: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """B against A: the difference of means, both tests' p-values, Cohen's d (pooled SD)."""

    difference: float
    welch_t: float
    welch_p: float
    mann_whitney_u: float
    mann_whitney_p: float
    cohens_d: float


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (the ledger's usage query uses the same rule); nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def summarize(values: Sequence[float], confidence: float = 0.95) -> Summary:
    n = len(values)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan)
    mean = statistics.fmean(values)
    if n < 2:
        return Summary(n, mean, math.nan, math.nan)
    st = _scipy_stats()
    sem = statistics.stdev(values) / math.sqrt(n)
    half = float(st.t.ppf(0.5 + confidence / 2, n - 1)) * sem
    return Summary(n, mean, mean - half, mean + half)


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Two-sided tests of B against A; each side needs at least two values."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each variant needs at least two values to compare")
    st = _scipy_stats()
    with warnings.catch_warnings():  # constant samples: scipy warns and answers nan, which we report as unset
        warnings.simplefilter("ignore", RuntimeWarning)
        welch = st.ttest_ind(b, a, equal_var=False)
        mwu = st.mannwhitneyu(b, a, alternative="two-sided")
    return Comparison(
        difference=statistics.fmean(b) - statistics.fmean(a),
        welch_t=float(welch.statistic),
        welch_p=float(welch.pvalue),
        mann_whitney_u=float(mwu.statistic),
        mann_whitney_p=float(mwu.pvalue),
        cohens_d=cohens_d(a, b),
    )


def cohens_d(a: Sequence[float], b: Sequence[float]) -> float:
    """(mean B - mean A) / pooled standard deviation; 0 when both are constant and equal."""
    na, nb = len(a), len(b)
    pooled = ((na - 1) * statistics.variance(a) + (nb - 1) * statistics.variance(b)) / (na + nb - 2)
    diff = statistics.fmean(b) - statistics.fmean(a)
    if pooled == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(pooled)


def _scipy_stats() -> Any:
    """scipy.stats (untyped), the optional extra, imported only when a report needs it."""
    try:
        from scipy import stats  # type: ignore[import-untyped]
    except ImportError as exc:
        raise StatsUnavailableError(
            "install the stats extra: pip install 'orchestrator-sidecar[stats]'"
        ) from exc
    return stats
