"""The retry helper: which errors, how long, and never past the caller's deadline."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from orchestrator_client import errors
from orchestrator_client.retry import RetryPolicy, call_async, call_sync

TABLE = Path(__file__).resolve().parents[3] / "tests" / "contract" / "retry.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(TABLE.read_text())["cases"]


def _typed(case: dict[str, Any]) -> errors.SidecarError:
    """The error of a case as the client decodes it from the wire (google.rpc.Status details)."""
    details = [error_details_pb2.ErrorInfo(reason=case.get("reason", ""))]
    if case.get("retry_info_ms") is not None:
        delay = duration_pb2.Duration()
        delay.FromMicroseconds(round(case["retry_info_ms"] * 1000))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))  # type: ignore[arg-type]
    if (raw := case.get("retry_info")) is not None:  # the Duration as sent, well-formed or not
        sent = duration_pb2.Duration(seconds=raw["seconds"], nanos=raw["nanos"])
        details.append(error_details_pb2.RetryInfo(retry_delay=sent))  # type: ignore[arg-type]
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)  # type: ignore[arg-type]
        packed.append(a)
    code = grpc.StatusCode[case["code"]]
    raw = status_pb2.Status(code=code.value[0], message="m", details=packed).SerializeToString()
    return errors.build(code, "m", raw)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_decision_table(case: dict[str, Any]) -> None:
    """The shared decision table (tests/contract/retry.yaml), through RetryPolicy.delay."""
    policy = RetryPolicy(max_attempts=case.get("max_attempts", 4), random=lambda: float(case["random"]))
    left = case.get("deadline_left_ms")
    wait = policy.delay(_typed(case), case["attempt"], None if left is None else left / 1000)
    expected = case["wait_ms"]
    if expected is None:
        assert wait is None
    else:
        assert wait is not None and round(wait * 1_000_000) == round(expected * 1000)


def test_the_defaults_are_the_shared_policy() -> None:
    p = RetryPolicy()
    assert (p.max_attempts, p.default_delay, p.max_backoff, p.max_delay) == (
        4,
        timedelta(milliseconds=100),
        timedelta(seconds=5),
        timedelta(seconds=30),
    )


def test_the_default_random_stays_within_half_and_all_of_the_backoff() -> None:
    unavailable = errors.UnavailableError(grpc.StatusCode.UNAVAILABLE, "m")
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4)):
        for _ in range(200):
            wait = RetryPolicy().delay(unavailable, attempt, None)
            assert wait is not None and ceiling / 2 <= wait <= ceiling


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


async def test_attempts_are_bounded_and_backoff_doubles_without_retry_info() -> None:
    t = FakeTime()
    calls = 0

    async def attempt(timeout: float | None) -> str:
        nonlocal calls
        calls += 1
        raise err(grpc.StatusCode.UNAVAILABLE)

    policy = RetryPolicy(random=lambda: 0.0)
    with pytest.raises(errors.SidecarError):
        await call_async(attempt, policy, None, clock=t.clock, sleep=t.asleep)
    assert calls == 4 and t.slept == [0.05, 0.1, 0.2]
