"""The echo provider: a deterministic in-process test double, labelled as such everywhere.

It answers with the last user message, cut at the first stop sequence and at max_tokens, in
chunks of `tokens_per_chunk` tokens after the configured delays, with real token counts.

With tools, when the conversation ends with a user message and tool_choice is not none, it calls
tools instead: the named tool, else every tool (only the first when parallel_tool_calls is false).
Each call's id is `call_<n>_<name>`; its arguments give every property of the tool's schema a value
(strings: the last user message; integers and numbers: its word count; booleans: true; else
null). Streamed, a call comes as its id and name, then its arguments in pieces of 8 characters.
When the conversation ends with tool results, it answers "tool results: " and the results joined
by "; ". With a JSON response format it answers with JSON (an object echoing the text under the
key "echo", or under the schema's first string property).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import ClassVar

from sidecar.config.schema import DeploymentConfig, EchoOptions
from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import DeadlineExceededError
from sidecar.core.outcome import UpstreamWaits
from sidecar.core.tokens import count_prompt_tokens, split_tokens
from sidecar.core.types import Chunk, FinishReason, Role, ToolCall, ToolCallDelta, ToolChoice, Usage
from sidecar.providers import faults
from sidecar.providers.base import Capabilities, ProviderRequest
from sidecar.providers.images import image_tokens

SUPPORTS = frozenset({"tools", "json_schema", "images", "reasoning"})
DESCRIPTION = "echo: deterministic test double that repeats the last user message (not a model)"


ARGUMENT_PIECE = 8  # characters of arguments per streamed piece


def tool_calls(req: ProviderRequest) -> tuple[ToolCall, ...]:
    """The calls the echo asks for (none unless tools are offered and the user spoke last)."""
    p = req.params
    choice = p.tool_choice or ToolChoice()
    if not p.tools or choice.mode == "none" or not req.messages or req.messages[-1].role is not Role.USER:
        return ()
    tools = [t for t in p.tools if t.name == choice.name] if choice.name else list(p.tools)
    if p.parallel_tool_calls is False:
        tools = tools[:1]
    text = req.messages[-1].text
    return tuple(
        ToolCall(f"call_{n}_{t.name}", t.name, json.dumps(_arguments(t.parameters_json, text)))
        for n, t in enumerate(tools)
    )


def _arguments(schema_json: str, text: str) -> dict[str, object]:
    properties = json.loads(schema_json).get("properties", {}) if schema_json else {}
    values: dict[object, object] = {
        "string": text,
        "integer": len(text.split()),
        "number": len(text.split()),
        "boolean": True,
    }
    return {
        name: values.get(spec.get("type") if isinstance(spec, dict) else None)
        for name, spec in properties.items()
    }


def _reply_text(req: ProviderRequest) -> str:
    """What the echo says: the tool results it got, or the last user message (as JSON if asked)."""
    results: list[str] = []
    for m in reversed(req.messages):
        if m.role is not Role.TOOL:
            break
        results.insert(0, m.text)
    last_user = next((m.text for m in reversed(req.messages) if m.role is Role.USER), "")
    text = "tool results: " + "; ".join(results) if results else last_user
    fmt = req.params.response_format
    if fmt is None or fmt.kind == "text":
        return text
    props = json.loads(fmt.schema_json).get("properties", {}) if fmt.schema_json else {}
    key = next((k for k, v in props.items() if isinstance(v, dict) and v.get("type") == "string"), "echo")
    return json.dumps({key: text})


def _prompt_tokens(req: ProviderRequest) -> int:
    """Text tokens, plus each image by OpenAI's rule."""
    images = sum(image_tokens("echo", i) for m in req.messages for i in m.images)
    return count_prompt_tokens(m.text for m in req.messages) + images


def answer(req: ProviderRequest) -> tuple[list[str], FinishReason]:
    """The tokens the echo answers with, and why it stopped."""
    last_user = _reply_text(req)
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

    def __init__(self, deployment: DeploymentConfig, *, clock: Clock) -> None:
        self._options = deployment.echo or EchoOptions()
        self._clock = clock
        self.capabilities = Capabilities.of(deployment, SUPPORTS)

    def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        if not self._options.faults:
            return self._answer(req, deadline)
        req, plan = faults.extract(req)
        return faults.inject(
            plan, self._answer(req, deadline), wait=lambda s: self._wait(s, deadline, req.waits)
        )

    def _answer(self, req: ProviderRequest, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        calls = tool_calls(req)
        return self._calls(req, calls, deadline) if calls else self._text(req, deadline)

    async def _text(self, req: ProviderRequest, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        tokens, finish = answer(req)
        usage = Usage(prompt_tokens=_prompt_tokens(req), completion_tokens=len(tokens))
        await self._wait(self._options.first_token_delay_seconds, deadline, req.waits)
        if not req.stream:
            yield Chunk(text="".join(tokens), finish_reason=finish, usage=usage)
            return
        step = self._options.tokens_per_chunk
        for start in range(0, len(tokens), step):
            if start:
                await self._wait(self._options.chunk_delay_seconds, deadline, req.waits)
            yield Chunk(text="".join(tokens[start : start + step]))
        yield Chunk(finish_reason=finish, usage=usage)

    async def _calls(
        self, req: ProviderRequest, calls: tuple[ToolCall, ...], deadline: Deadline
    ) -> AsyncGenerator[Chunk, None]:
        usage = Usage(
            prompt_tokens=_prompt_tokens(req),
            completion_tokens=sum(len(split_tokens(c.arguments)) + 1 for c in calls),
        )
        await self._wait(self._options.first_token_delay_seconds, deadline, req.waits)
        whole = tuple(ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(calls))
        if not req.stream:
            yield Chunk(tool_calls=whole, finish_reason=FinishReason.TOOL_CALLS, usage=usage)
            return
        for i, c in enumerate(calls):
            yield Chunk(tool_calls=(ToolCallDelta(i, c.id, c.name),))
            for start in range(0, len(c.arguments), ARGUMENT_PIECE):
                piece = c.arguments[start : start + ARGUMENT_PIECE]
                yield Chunk(tool_calls=(ToolCallDelta(i, arguments=piece),))
        yield Chunk(finish_reason=FinishReason.TOOL_CALLS, usage=usage)

    async def _wait(self, seconds: float, deadline: Deadline, waits: UpstreamWaits | None) -> None:
        """The configured delay: the echo's stand-in for waiting on an upstream, reported as such."""
        if seconds <= 0:
            return
        remaining = deadline.remaining()
        if waits is not None:
            waits.upstream_wait_started(self._clock.monotonic())
        try:
            if remaining is not None and remaining < seconds:
                await self._clock.sleep(remaining)
                raise DeadlineExceededError("the call's deadline passed while the echo was waiting")
            await self._clock.sleep(seconds)
        finally:
            if waits is not None:
                waits.upstream_wait_ended(self._clock.monotonic())

    async def probe(self, *, deadline: Deadline) -> None:
        """In-process: always up."""

    async def aclose(self) -> None:
        """Nothing to release."""
