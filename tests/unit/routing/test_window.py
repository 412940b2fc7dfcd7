from __future__ import annotations

import enum

import pytest

from sidecar.routing.window import SlidingCounter
from tests.conftest import FakeClock


class Kind(enum.Enum):
    A = "a"
    B = "b"


def counter(clock: FakeClock, window: float = 10.0, buckets: int = 10) -> SlidingCounter[Kind]:
    return SlidingCounter(Kind, window_seconds=window, clock=clock, buckets=buckets)


def test_counts_per_kind(clock: FakeClock) -> None:
    c = counter(clock)
    assert c.totals() == {Kind.A: 0, Kind.B: 0}
    c.add(Kind.A)
    c.add(Kind.A, 3)
    clock.advance(2.5)
    c.add(Kind.B)
    assert c.totals() == {Kind.A: 4, Kind.B: 1}
    assert c.width == 1.0


def test_event_expires_at_its_bucket_boundary(clock: FakeClock) -> None:
    c = counter(clock)  # clock starts at 1000.0: on a bucket boundary
    c.add(Kind.A)
    clock.advance(9.999)
    assert c.totals()[Kind.A] == 1
    clock.advance(0.001)
    assert c.totals()[Kind.A] == 0


def test_granularity_mid_bucket_event_counts_at_least_window_minus_width(clock: FakeClock) -> None:
    c = counter(clock)
    clock.advance(0.5)
    c.add(Kind.A)
    clock.advance(9.0)  # 9.0 s >= window - width
    assert c.totals()[Kind.A] == 1
    clock.advance(0.5)  # 9.5 s: its bucket has left the window, never later than window_seconds
    assert c.totals()[Kind.A] == 0


def test_sliding_keeps_recent_buckets(clock: FakeClock) -> None:
    c = counter(clock)
    for _ in range(20):
        c.add(Kind.A)
        clock.advance(1.0)
    assert c.totals()[Kind.A] == 9  # added at 1011..1019; the one at 1010 is exactly 10 s old
    c.add(Kind.A)
    assert c.totals()[Kind.A] == 10


def test_stale_slots_reset_lazily_after_idle(clock: FakeClock) -> None:
    c = counter(clock)
    c.add(Kind.A, 5)
    clock.advance(1000.0)  # lands on the very same slot, many windows later
    c.add(Kind.B)
    assert c.totals() == {Kind.A: 0, Kind.B: 1}


def test_clear(clock: FakeClock) -> None:
    c = counter(clock)
    c.add(Kind.A, 2)
    c.clear()
    assert c.totals() == {Kind.A: 0, Kind.B: 0}
    c.add(Kind.B)
    assert c.totals() == {Kind.A: 0, Kind.B: 1}


@pytest.mark.parametrize(("window", "buckets"), [(0.0, 10), (-1.0, 10), (10.0, 0)])
def test_rejects_bad_arguments(clock: FakeClock, window: float, buckets: int) -> None:
    with pytest.raises(ValueError):
        counter(clock, window, buckets)
