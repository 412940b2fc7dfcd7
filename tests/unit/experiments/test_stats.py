"""The statistics against known results (textbook examples, worked by hand)."""

from __future__ import annotations

import math

import pytest

from sidecar.experiments.stats import cohens_d, compare, percentile, summarize

# Welch's t-test, Wikipedia "Welch's t-test", example 1 (t = -2.46, df = 24.97, p = 0.021)
A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def test_welch_matches_the_textbook_example() -> None:
    c = compare(A2, A1)  # B = A1 against A = A2: t is (mean A1 - mean A2) / se
    assert c.welch_t == pytest.approx(-2.46, abs=0.01)
    assert c.welch_p == pytest.approx(0.021, abs=0.001)
    assert c.difference == pytest.approx(sum(A1) / 15 - sum(A2) / 15)


def test_mann_whitney_exact_on_separated_samples() -> None:
    # b entirely above a: U_b = 3 * 3 = 9; exactly 1 of C(6,3) = 20 orderings is as extreme each way
    c = compare([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert c.mann_whitney_u == 9
    assert c.mann_whitney_p == pytest.approx(2 / 20)


def test_confidence_interval_of_a_mean() -> None:
    s = summarize([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, sd sqrt(5/3), sem sd/2, t(0.975, 3) = 3.182446
    half = 3.182446 * math.sqrt(5 / 3) / 2
    assert (s.n, s.mean) == (4, 2.5)
    assert s.ci_low == pytest.approx(2.5 - half, rel=1e-5)
    assert s.ci_high == pytest.approx(2.5 + half, rel=1e-5)


def test_too_few_values() -> None:
    assert summarize([]).n == 0 and math.isnan(summarize([]).mean)
    one = summarize([3.0])
    assert one.mean == 3.0 and math.isnan(one.ci_low)
    with pytest.raises(ValueError):
        compare([1.0], [1.0, 2.0])


def test_cohens_d() -> None:
    assert cohens_d([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]) == pytest.approx(1.0)
    assert cohens_d([1.0, 1.0], [1.0, 1.0]) == 0.0


def test_nearest_rank_percentile() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.99) == 99.0
    assert math.isnan(percentile([], 0.5))
