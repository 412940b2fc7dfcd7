"""Fault directives for the echo provider: deterministic failures any client can trigger by text.

Only a deployment with `echo: {faults: true}` reads them. A directive is written in the last user
message, e.g. `[[fault:unavailable]]`, `[[fault:interrupt_after=2]]`, `[[fault:delay_ms=3000]]` or
`[[fault:rate_limited retry_after=3]]`; several may be combined, in one directive or in several.
The directives are removed from the message before the echo answers or counts it.

- `unavailable`: the attempt fails retryably before any chunk (PROVIDER_UNAVAILABLE).
- `rate_limited` (optionally `retry_after=S`): the attempt fails as rate limited, with Retry-After.
- `interrupt_after=N`: the attempt fails after N content chunks (text, tool call or thinking); a
  stream then is STREAM_INTERRUPTED.
- `delay_ms=N`: wait N milliseconds before the first chunk, through the provider's injected wait.

An unknown or malformed directive is not a fault: it is left in the text, so a typo shows in the answer.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

from sidecar.core.errors import ProviderRateLimitedError, ProviderUnavailableError
from sidecar.core.types import Chunk, Role
from sidecar.providers.base import ProviderRequest

DIRECTIVE = re.compile(r"\[\[fault:([^\[\]]*)\]\]")
_SETTING = re.compile(r"^(interrupt_after|delay_ms|retry_after)=(\d{1,7})$")
MAX_DELAY_MS = 60_000

Wait = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the echo must do wrong for one request; the default does nothing wrong."""

    unavailable: bool = False
    rate_limited: bool = False
    retry_after_seconds: float | None = None
    interrupt_after: int | None = None
    delay_seconds: float = 0.0


def parse(directive: str, plan: FaultPlan) -> FaultPlan | None:
    """`plan` with one directive's body applied (`rate_limited retry_after=3`); None when any word
    of it is not understood."""
    words = directive.split()
    for word in words:
        if word == "unavailable":
            plan = dataclasses.replace(plan, unavailable=True)
        elif word == "rate_limited":
            plan = dataclasses.replace(plan, rate_limited=True)
        elif setting := _SETTING.match(word):
            plan = _set(plan, setting.group(1), int(setting.group(2)))
        else:
            return None
    return plan if words else None


def _set(plan: FaultPlan, name: str, value: int) -> FaultPlan:
    if name == "delay_ms":
        return dataclasses.replace(plan, delay_seconds=min(value, MAX_DELAY_MS) / 1000)
    if name == "retry_after":
        return dataclasses.replace(plan, retry_after_seconds=float(value))
    return dataclasses.replace(plan, interrupt_after=value)


def extract(req: ProviderRequest) -> tuple[ProviderRequest, FaultPlan]:
    """The request without the directives of its last user message, and the plan they describe."""
    index = next((i for i in range(len(req.messages) - 1, -1, -1) if req.messages[i].role is Role.USER), None)
    if index is None:
        return req, FaultPlan()
    plan = FaultPlan()

    def take(match: re.Match[str]) -> str:
        nonlocal plan
        parsed = parse(match.group(1), plan)
        if parsed is None:
            return match.group(0)
        plan = parsed
        return ""

    message = req.messages[index]
    text = DIRECTIVE.sub(take, message.text).strip()
    messages = (*req.messages[:index], dataclasses.replace(message, text=text), *req.messages[index + 1 :])
    return dataclasses.replace(req, messages=messages), plan


async def inject(
    plan: FaultPlan, chunks: AsyncGenerator[Chunk, None], *, wait: Wait
) -> AsyncGenerator[Chunk, None]:
    """The echo's chunks with the plan's delay before them and its failure at its point."""
    async with aclosing(chunks) as inner:
        if plan.delay_seconds > 0:
            await wait(plan.delay_seconds)
        if plan.unavailable:
            raise ProviderUnavailableError("echo fault directive: unavailable")
        if plan.rate_limited:
            raise ProviderRateLimitedError(
                "echo fault directive: rate limited", retry_after=plan.retry_after_seconds
            )
        delivered = 0
        async for chunk in inner:
            if plan.interrupt_after is not None and delivered >= plan.interrupt_after:
                raise ProviderUnavailableError(f"echo fault directive: interrupted after {delivered} chunks")
            yield chunk
            delivered += 1 if chunk.text or chunk.tool_calls or chunk.thinking else 0
