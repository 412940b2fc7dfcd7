"""The echo provider: a deterministic in-process test double, labelled as such everywhere.

It answers with the last user message, cut at the first stop sequence and at max_tokens, in
chunks of `tokens_per_chunk` tokens after the configured delays, with real token counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import ClassVar

from sidecar.config.schema import DeploymentConfig, EchoOptions
from sidecar.core.clock import Deadline
from sidecar.core.errors import DeadlineExceededError
from sidecar.core.tokens import count_prompt_tokens, split_tokens
from sidecar.core.types import Chunk, FinishReason, Role, Usage
from sidecar.providers import faults
from sidecar.providers.base import Capabilities, ProviderRequest

DESCRIPTION = "echo: deterministic test double that repeats the last user message (not a model)"

Sleep = Callable[[float], Awaitable[None]]


def answer(req: ProviderRequest) -> tuple[list[str], FinishReason]:
    """The tokens the echo answers with, and why it stopped."""
    last_user = next((m.text for m in reversed(req.messages) if m.role is Role.USER), "")
    finish = FinishReason.STOP
    cut = min((i for s in req.params.stop if (i := last_user.find(s)) >= 0), default=-1)
    text = last_user[:cut] if cut >= 0 else last_user
    tokens = split_tokens(text)
    limit = req.params.max_tokens
    if limit is not None and len(tokens) > limit:
        tokens, finish = tokens[:limit], FinishReason.LENGTH
    return tokens, finish


class EchoProvider:
    name: ClassVar[str] = "echo"

    def __init__(self, deployment: DeploymentConfig, *, sleep: Sleep = asyncio.sleep) -> None:
        self._options = deployment.echo or EchoOptions()
        self._sleep = sleep
        self.capabilities = Capabilities(
            streaming=True, tools=False, json_schema=False,
            max_context_tokens=deployment.context_window,
        )  # fmt: skip

    def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        if not self._options.faults:
            return self._answer(req, deadline)
        req, plan = faults.extract(req)
        return faults.inject(plan, self._answer(req, deadline), wait=lambda s: self._wait(s, deadline))

    async def _answer(self, req: ProviderRequest, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        tokens, finish = answer(req)
        usage = Usage(
            prompt_tokens=count_prompt_tokens(m.text for m in req.messages),
            completion_tokens=len(tokens),
        )
        await self._wait(self._options.first_token_delay_seconds, deadline)
        if not req.stream:
            yield Chunk(text="".join(tokens), finish_reason=finish, usage=usage)
            return
        step = self._options.tokens_per_chunk
        for start in range(0, len(tokens), step):
            if start:
                await self._wait(self._options.chunk_delay_seconds, deadline)
            yield Chunk(text="".join(tokens[start : start + step]))
        yield Chunk(finish_reason=finish, usage=usage)

    async def _wait(self, seconds: float, deadline: Deadline) -> None:
        if seconds <= 0:
            return
        remaining = deadline.remaining()
        if remaining is not None and remaining < seconds:
            await self._sleep(remaining)
            raise DeadlineExceededError("the call's deadline passed while the echo was waiting")
        await self._sleep(seconds)

    async def probe(self, *, deadline: Deadline) -> None:
        """In-process: always up."""

    async def aclose(self) -> None:
        """Nothing to release."""
