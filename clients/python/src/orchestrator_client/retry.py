"""Opt-in retries of unary calls, the clients' one policy (clients/README.md, "Retries"; the same in
Go, TypeScript and Java): UNAVAILABLE after the RetryInfo delay (never jittered) or else a jittered
backoff, RESOURCE_EXHAUSTED only with a RetryInfo, and only while the next attempt can still start
before the caller's deadline. Streams are never retried here (a stream that broke after its first
delta has already shown text)."""

from __future__ import annotations

import asyncio
import math
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import grpc

from .errors import SidecarError, StreamInterruptedError

T = TypeVar("T")
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry.

    `max_attempts` counts the first; without RetryInfo the backoff is `default_delay` doubling per
    attempt, capped at `max_backoff`, jittered to between half of it and all of it by `random` (a
    draw in [0, 1), injectable for tests); a RetryInfo delay over `max_delay` is not waited for."""

    max_attempts: int = 4
    default_delay: timedelta = timedelta(milliseconds=100)
    max_backoff: timedelta = timedelta(seconds=5)
    max_delay: timedelta = timedelta(seconds=30)
    random: Callable[[], float] = _random.random

    def delay(self, error: SidecarError, attempt: int, remaining: float | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when `error` must be raised."""
        if attempt >= self.max_attempts or error.code not in RETRYABLE:
            return None
        if isinstance(error, StreamInterruptedError):
            return None
        if error.retry_delay is not None:
            if error.retry_delay > self.max_delay:
                return None  # e.g. a daily quota: waiting hours inside one call helps no caller
            seconds = error.retry_delay.total_seconds()
        elif error.code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            return None  # a quota without a known reset does not pass by waiting a little
        else:
            seconds = self._backoff_us(attempt) / 1_000_000
        if remaining is not None and seconds >= remaining:
            return None  # the next attempt could not start before the deadline
        return seconds

    def _backoff_us(self, attempt: int) -> int:
        """floor(b * (0.5 + 0.5 r)) microseconds, b = min(max_backoff, default_delay * 2^(attempt-1)):
        the same double-precision operations as the other clients, equal to the microsecond."""
        limit = self.max_backoff // _US
        ceiling = self.default_delay // _US
        for _ in range(1, attempt):
            if ceiling >= limit:
                break
            ceiling *= 2
        ceiling = min(ceiling, limit)
        r = self.random()
        r = min(r, 1.0) if r >= 0 else 0.0  # NaN too
        return math.floor(ceiling * (0.5 + 0.5 * r))


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
