"""Opt-in retries of unary calls: only UNAVAILABLE and RESOURCE_EXHAUSTED, after the RetryInfo delay,
and only while the next attempt can still start before the caller's deadline. Streams are never
retried here (a stream that broke after its first delta has already shown text)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import grpc

from .errors import SidecarError, StreamInterruptedError

T = TypeVar("T")
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry. `max_delay` caps a RetryInfo delay worth waiting for."""

    max_attempts: int = 3
    default_delay: timedelta = timedelta(milliseconds=200)
    max_delay: timedelta = timedelta(seconds=30)

    def delay(self, error: SidecarError, attempt: int, remaining: float | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when `error` must be raised."""
        if attempt >= self.max_attempts or error.code not in RETRYABLE:
            return None
        if isinstance(error, StreamInterruptedError):
            return None
        delay = error.retry_delay
        if delay is None:
            if error.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                return None  # a quota without a known reset does not pass by waiting a little
            delay = self.default_delay * (2 ** (attempt - 1))
        seconds = delay.total_seconds()
        if seconds > self.max_delay.total_seconds():
            return None
        if remaining is not None and seconds >= remaining:
            return None  # the next attempt could not start before the deadline
        return seconds


async def call_async(
    attempt: Callable[[float | None], Awaitable[T]],
    policy: RetryPolicy,
    timeout: float | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `attempt(remaining_timeout)` until it succeeds or `policy` gives up."""
    deadline = None if timeout is None else clock() + timeout
    number = 1
    while True:
        try:
            return await attempt(_remaining(deadline, clock))
        except SidecarError as err:
            wait = policy.delay(err, number, _remaining(deadline, clock))
            if wait is None:
                raise
        await sleep(wait)
        number += 1


def call_sync(
    attempt: Callable[[float | None], T],
    policy: RetryPolicy,
    timeout: float | None,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """The blocking twin of `call_async`."""
    deadline = None if timeout is None else clock() + timeout
    number = 1
    while True:
        try:
            return attempt(_remaining(deadline, clock))
        except SidecarError as err:
            wait = policy.delay(err, number, _remaining(deadline, clock))
            if wait is None:
                raise
        sleep(wait)
        number += 1


def _remaining(deadline: float | None, clock: Callable[[], float]) -> float | None:
    return None if deadline is None else max(0.0, deadline - clock())
