"""Routing: the call's deployments in strategy order, retried and then fallen back, before the first chunk.

Per deployment: the breaker must admit the attempt; a retryable failure (connection error,
timeout, no first chunk in time, 5xx, malformed answer) is retried after a fully jittered backoff
while the deployment's retry budget and the caller's deadline allow, then the next deployment is
tried. A 429 opens the breaker for its Retry-After, so the route moves on at once. After the first
chunk the call is committed: a failure ends it with STREAM_INTERRUPTED and the partial usage.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from sidecar.config.routing import RouteConfig
from sidecar.core.clock import Clock
from sidecar.core.errors import (
    CircuitOpenError,
    DeadlineExceededError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProvidersUnavailableError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    SidecarError,
    StreamInterruptedError,
)
from sidecar.core.layer import Handler
from sidecar.core.tokens import count_prompt_tokens, count_tokens
from sidecar.core.types import Attempt, Call, Chunk, Target, Usage
from sidecar.routing.breaker import CircuitBreaker
from sidecar.routing.plan import Routing, plan
from sidecar.routing.retry import RetryPolicy

OK = "OK"
CANCELLED = "CANCELLED"
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Tries:
    """What happened so far across a call's deployments."""

    failures: list[ProviderError] = field(default_factory=list)
    served: bool = False


class RouteLayer:
    def __init__(
        self, inner: Handler, *, routing: Routing, clock: Clock, sleep: Sleep = asyncio.sleep
    ) -> None:
        self._inner, self._routing, self._clock, self._sleep = inner, routing, clock, sleep

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        route = self._routing.table.resolve(call.model)
        tries = _Tries()
        for target in plan(self._routing, route, call):
            async with aclosing(self._deployment(call, route.config, target, tries)) as chunks:
                async for chunk in chunks:
                    yield chunk
            if tries.served:
                return
        raise _exhausted(route.alias, tries.failures)

    async def _deployment(
        self, call: Call, config: RouteConfig, target: Target, tries: _Tries
    ) -> AsyncGenerator[Chunk, None]:
        """Attempts on one deployment: first try, then retries while policy, budget and deadline allow."""
        breaker = self._routing.breakers.get(target.deployment)
        budget = self._routing.budgets.get(target.deployment)
        retry = RetryPolicy(**config.retry.model_dump())
        budget.record_request()
        for n in range(1, retry.max_attempts + 1):
            if n > 1:
                delay = retry.backoff(n - 1, self._routing.rng)
                if not self._may_retry(tries.failures[-1], call, delay) or not budget.try_spend():
                    return
                await self._sleep(delay)
            if not breaker.allow():
                tries.failures.append(_circuit_open(target, breaker))
                return
            try:
                async with aclosing(self._attempt(call, config, target, breaker)) as chunks:
                    async for chunk in chunks:
                        yield chunk
            except ProviderError as err:
                tries.failures.append(err)
                if not err.retryable:
                    raise
                continue
            tries.served = True
            return

    def _may_retry(self, err: ProviderError, call: Call, delay: float) -> bool:
        if isinstance(err, ProviderRateLimitedError | ProviderAuthError | CircuitOpenError):
            return False  # this deployment will not do better soon: fall back instead
        remaining = call.deadline.remaining()
        return remaining is None or remaining > delay

    async def _attempt(
        self, call: Call, config: RouteConfig, target: Target, breaker: CircuitBreaker
    ) -> AsyncGenerator[Chunk, None]:
        """One attempt: bounded wait for the first chunk, then the committed rest of the stream."""
        if call.deadline.expired():
            breaker.release()
            raise DeadlineExceededError("the call's deadline passed before a deployment answered")
        stats = self._routing.stats.get(target.deployment)
        delivered: list[str] = []
        outcome, started = CANCELLED, self._clock.monotonic()
        call.record.target = target
        stats.started()
        try:
            stream = self._inner(dataclasses.replace(call, target=target))
            async with aclosing(stream):
                first = await self._first_chunk(stream, call, config)
                stats.first_token(self._clock.monotonic() - started)
                delivered.append(first.text)
                yield first
                async for chunk in stream:
                    delivered.append(chunk.text)
                    yield chunk
            outcome = OK
            breaker.record_success()
        except StopAsyncIteration:
            empty = ProviderUnavailableError("the upstream stream ended without a chunk")
            outcome = empty.reason
            breaker.record_failure()
            raise empty from None
        except ProviderError as err:
            outcome = err.reason
            _settle_breaker(breaker, err)
            if delivered:
                raise _interrupted(call, target, delivered, err) from err
            raise
        except SidecarError as err:
            outcome = err.reason
            breaker.release()
            raise
        finally:
            if outcome == CANCELLED:
                breaker.release()
            seconds = self._clock.monotonic() - started
            stats.finished(seconds, error=None if outcome == OK else outcome, at=self._clock.wall())
            call.record.attempts.append(Attempt(target.deployment, target.provider, outcome, seconds))

    async def _first_chunk(
        self, stream: AsyncGenerator[Chunk, None], call: Call, config: RouteConfig
    ) -> Chunk:
        limit = config.first_token_timeout_seconds
        if limit is None:
            return await anext(stream)
        try:
            async with asyncio.timeout(limit):
                return await anext(stream)
        except TimeoutError:
            if call.deadline.expired():
                raise DeadlineExceededError(
                    "the call's deadline passed waiting for the first chunk"
                ) from None
            raise ProviderTimeoutError(f"no first chunk within {limit:g} s") from None


def _settle_breaker(breaker: CircuitBreaker, err: ProviderError) -> None:
    """Upstream trouble counts against the deployment; a request the upstream rejected does not."""
    if not err.retryable:
        breaker.release()
    else:
        retry_after = err.retry_after if isinstance(err, ProviderRateLimitedError) else None
        breaker.record_failure(retry_after=retry_after)


def _circuit_open(target: Target, breaker: CircuitBreaker) -> CircuitOpenError:
    return CircuitOpenError(
        f"deployment {target.deployment} is cooling down after failures", retry_after=breaker.open_for()
    )


def _interrupted(
    call: Call, target: Target, delivered: list[str], err: ProviderError
) -> StreamInterruptedError:
    """The partial usage of a broken stream: prompt and delivered text, counted by the sidecar."""
    usage = Usage(
        prompt_tokens=count_prompt_tokens(m.text for m in call.messages),
        completion_tokens=sum(count_tokens(t) for t in delivered),
    )
    call.record.usage = usage
    return StreamInterruptedError(
        f"deployment {target.deployment} failed after the stream started: {err.message}",
        metadata={
            "deployment": target.deployment,
            "cause": err.reason,
            "promptTokens": str(usage.prompt_tokens),
            "completionTokens": str(usage.completion_tokens),
            "usageEstimated": "true",
        },
    )


def _exhausted(alias: str, failures: list[ProviderError]) -> SidecarError:
    if failures and all(isinstance(f, ProviderAuthError) for f in failures):
        return failures[-1]
    waits = [f.retry_after for f in failures if f.retry_after is not None]
    summary = "; ".join(f"{f.reason}: {f.message}" for f in failures)
    return ProvidersUnavailableError(
        f"every deployment of route {alias!r} failed ({summary})",
        metadata={"model": alias, "attempts": str(len(failures))},
        retry_after=min(waits) if waits else None,
    )
