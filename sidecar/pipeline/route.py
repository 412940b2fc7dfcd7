"""Routing: try the route's deployments in order; fail over only before the first chunk.

A retryable failure (connection error, timeout, 5xx, 429, bad response, refused credentials)
moves to the next deployment while nothing has reached the caller. After the first chunk the
call is committed: a failure ends it with STREAM_INTERRUPTED and the partial usage.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from contextlib import aclosing

from sidecar.core.clock import Clock
from sidecar.core.errors import (
    DeadlineExceededError,
    ProviderAuthError,
    ProviderError,
    ProvidersUnavailableError,
    SidecarError,
    StreamInterruptedError,
)
from sidecar.core.layer import Handler
from sidecar.core.tokens import count_prompt_tokens, count_tokens
from sidecar.core.types import Attempt, Call, Chunk, Target, Usage
from sidecar.routing.table import RouteTable

OK = "OK"
CANCELLED = "CANCELLED"


class RouteLayer:
    def __init__(self, inner: Handler, *, table: RouteTable, clock: Clock) -> None:
        self._inner, self._table, self._clock = inner, table, clock

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        route = self._table.resolve(call.model)
        failures: list[ProviderError] = []
        for target in route.targets:
            if call.deadline.expired():
                raise DeadlineExceededError("the call's deadline passed before a deployment answered")
            delivered: list[str] = []
            outcome, started = CANCELLED, self._clock.monotonic()
            call.record.target = target
            try:
                async with aclosing(self._inner(dataclasses.replace(call, target=target))) as stream:
                    async for chunk in stream:
                        delivered.append(chunk.text)
                        yield chunk
                outcome = OK
                return
            except ProviderError as err:
                outcome = err.reason
                if delivered:
                    raise _interrupted(call, target, delivered, err) from err
                if not err.retryable:
                    raise
                failures.append(err)
            except SidecarError as err:
                outcome = err.reason
                raise
            finally:
                seconds = self._clock.monotonic() - started
                call.record.attempts.append(Attempt(target.deployment, target.provider, outcome, seconds))
        raise _exhausted(route.alias, failures)


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
