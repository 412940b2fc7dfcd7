"""The retry helper: which errors, how long, and never past the caller's deadline."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from orchestrator_client import errors
from orchestrator_client.retry import RetryPolicy, call_async, call_sync


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def err(code: grpc.StatusCode, delay: float | None = None, reason: str = "") -> errors.SidecarError:
    cls = {"STREAM_INTERRUPTED": errors.StreamInterruptedError}.get(reason, errors.SidecarError)
    return cls(code, "x", reason=reason, retry_delay=None if delay is None else timedelta(seconds=delay))


def failing(*failures: errors.SidecarError) -> tuple[list[float | None], object]:
    seen: list[float | None] = []
    queue = list(failures)

    def attempt(timeout: float | None) -> str:
        seen.append(timeout)
        if queue:
            raise queue.pop(0)
        return "ok"

    return seen, attempt


def test_honours_retry_info_and_gives_each_attempt_the_time_left() -> None:
    t = FakeTime()
    seen, attempt = failing(err(grpc.StatusCode.UNAVAILABLE, 1.5), err(grpc.StatusCode.RESOURCE_EXHAUSTED, 2))
    assert call_sync(attempt, RetryPolicy(), 10, clock=t.clock, sleep=t.sleep) == "ok"  # type: ignore[arg-type]
    assert t.slept == [1.5, 2.0] and seen == [10, 8.5, 6.5]


def test_a_delay_past_the_deadline_raises_at_once() -> None:
    t = FakeTime()
    _, attempt = failing(err(grpc.StatusCode.UNAVAILABLE, 5))
    with pytest.raises(errors.SidecarError):
        call_sync(attempt, RetryPolicy(), 3, clock=t.clock, sleep=t.sleep)  # type: ignore[arg-type]
    assert t.slept == []


@pytest.mark.parametrize(
    "failure",
    [
        err(grpc.StatusCode.INVALID_ARGUMENT, 1),
        err(grpc.StatusCode.RESOURCE_EXHAUSTED),  # no RetryInfo: a quota does not pass by waiting a little
        err(grpc.StatusCode.UNAVAILABLE, 1, reason="STREAM_INTERRUPTED"),
        err(grpc.StatusCode.UNAVAILABLE, 60),  # beyond max_delay
    ],
)
def test_not_retried(failure: errors.SidecarError) -> None:
    t = FakeTime()
    seen, attempt = failing(failure)
    with pytest.raises(errors.SidecarError):
        call_sync(attempt, RetryPolicy(), None, clock=t.clock, sleep=t.sleep)  # type: ignore[arg-type]
    assert len(seen) == 1 and t.slept == []


async def test_attempts_are_bounded_and_backoff_doubles_without_retry_info() -> None:
    t = FakeTime()
    calls = 0

    async def attempt(timeout: float | None) -> str:
        nonlocal calls
        calls += 1
        raise err(grpc.StatusCode.UNAVAILABLE)

    with pytest.raises(errors.SidecarError):
        await call_async(attempt, RetryPolicy(max_attempts=3), None, clock=t.clock, sleep=t.asleep)
    assert calls == 3 and t.slept == [0.2, 0.4]
