"""ContextLayer around a scripted inner handler, and the Summarizer around a scripted route."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from sidecar.cache.store import AiocacheStore
from sidecar.config.context import ContextPolicy, SummaryConfig
from sidecar.config.schema import Policy
from sidecar.context.summary import Summarizer
from sidecar.context.tokenizer import ESTIMATE_COUNTER, Tokenizers
from sidecar.core.errors import ContextTooLongError, ProvidersUnavailableError
from sidecar.core.layer import collect
from sidecar.core.types import Call, Chunk, FinishReason, GenerationParams, Message, Role, Usage
from sidecar.pipeline.context import ContextLayer
from sidecar.routing.table import RouteTable
from tests.conftest import FakeClock
from tests.support.calls import make_call

FINAL = Chunk(text="ok", finish_reason=FinishReason.STOP, usage=Usage(1, 1))
POLICY = Policy.model_validate(
    {
        "default_route": "main",
        "deployments": {
            "small": {"provider": "echo", "model": "s", "context_window": 300, "default_max_tokens": 50},
            "large": {"provider": "echo", "model": "l", "context_window": 5000},
        },
        "routes": {"main": {"deployments": ["large", "small"]}, "cheap": {"deployments": ["large"]}},
    }
)


class Inner:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls.append(call)
        yield FINAL


class Route:
    """A scripted summary route: answers with `reply` (or raises `error`), counting its calls."""

    def __init__(self, reply: str = "they talked", error: Exception | None = None) -> None:
        self.reply, self.error, self.calls = reply, error, []  # type: ignore[var-annotated]

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls.append(call)
        if self.error is not None:
            raise self.error
        yield Chunk(text=self.reply, finish_reason=FinishReason.STOP, usage=Usage(1, 1))


def conversation(clock: FakeClock, turns: int, *, words: int = 5, **params: Any) -> Call:
    messages = [Message(Role.SYSTEM, "You are Mr Blue.")]
    for i in range(turns):
        role = Role.USER if i % 2 == 0 else Role.ASSISTANT
        messages.append(Message(role, f"turn {i} " + "word " * words))
    base = make_call(clock)
    return dataclasses.replace(base, messages=tuple(messages), params=GenerationParams(**params))


def layer(inner: Inner, summarizer: Summarizer | None = None, **policy: Any) -> ContextLayer:
    return ContextLayer(
        inner,
        table=RouteTable.from_policy(POLICY),
        tokenizers=Tokenizers.build(POLICY.deployments, None),
        policy=ContextPolicy.model_validate(policy),
        summarizer=summarizer,
    )


async def test_a_short_call_passes_untouched(clock: FakeClock) -> None:
    inner = Inner()
    call = conversation(clock, 3)
    await collect(layer(inner), call)
    assert inner.calls[0] is call
    assert call.record.context_tokens_removed == 0


async def test_trims_to_n_recent_and_reports_what_was_removed(clock: FakeClock) -> None:
    inner = Inner()
    call = conversation(clock, 15, words=1)
    await collect(layer(inner, max_recent_messages=4), call)
    sent = inner.calls[0].messages
    assert [m.text for m in sent] == ["You are Mr Blue."] + [f"turn {i} word " for i in range(11, 15)]
    record = call.record
    assert record.context_messages_removed == 11 and not record.context_summarized
    assert record.context_tokens_removed == ESTIMATE_COUNTER.count_prompt(
        call.messages
    ) - ESTIMATE_COUNTER.count_prompt(sent)


async def test_fits_the_smallest_window_minus_max_tokens(clock: FakeClock) -> None:
    inner = Inner()
    call = conversation(clock, 10, words=20)  # about 27 tokens a message
    await collect(layer(inner, max_recent_messages=100), call)
    sent = inner.calls[0].messages
    assert ESTIMATE_COUNTER.count_prompt(sent) <= 300 - 50
    inner2 = Inner()
    await collect(layer(inner2, max_recent_messages=100), conversation(clock, 10, words=20, max_tokens=200))
    assert len(inner2.calls[0].messages) < len(sent)  # a bigger max_tokens leaves less room


async def test_disabled_passes_everything(clock: FakeClock) -> None:
    inner = Inner()
    call = conversation(clock, 30)
    await collect(layer(inner, enabled=False), call)
    assert inner.calls[0] is call


async def test_too_long_for_every_deployment(clock: FakeClock) -> None:
    call = dataclasses.replace(make_call(clock), messages=(Message(Role.USER, "word " * 6000),))
    with pytest.raises(ContextTooLongError):
        await collect(layer(Inner()), call)


def summarizer(route: Route, store: AiocacheStore | None, clock: FakeClock, **config: Any) -> Summarizer:
    return Summarizer(
        route, config=SummaryConfig.model_validate({"route": "cheap", **config}), store=store, clock=clock
    )


async def test_dropped_messages_are_replaced_by_a_cached_summary(
    clock: FakeClock, memory_store: AiocacheStore
) -> None:
    route, inner = Route(), Inner()
    ctx = layer(inner, summarizer(route, memory_store, clock), max_recent_messages=4)
    for _ in range(2):
        await collect(ctx, conversation(clock, 12, words=1))
    assert len(route.calls) == 1  # the second identical turn used the cached summary
    summary_call = route.calls[0]
    assert summary_call.model == "cheap" and summary_call.params.temperature == 0.0
    assert summary_call.tenant_id == "t" and summary_call.user_id == "u"
    assert "user: turn 0 word" in summary_call.messages[1].text
    sent = inner.calls[1].messages
    assert sent[0].text == "You are Mr Blue."
    assert sent[1].role is Role.SYSTEM and sent[1].text.endswith("left out here: they talked")
    assert [m.text for m in sent[2:]] == [f"turn {i} word " for i in range(8, 12)]


async def test_summaries_are_per_user(clock: FakeClock, memory_store: AiocacheStore) -> None:
    route = Route()
    ctx = layer(Inner(), summarizer(route, memory_store, clock), max_recent_messages=4)
    call = conversation(clock, 12, words=1)
    await collect(ctx, call)
    await collect(ctx, dataclasses.replace(call, user_id="someone-else"))
    await collect(ctx, dataclasses.replace(call, tenant_id="other-tenant"))
    assert len(route.calls) == 3


async def test_a_failed_summary_still_trims(clock: FakeClock) -> None:
    inner = Inner()
    route = Route(error=ProvidersUnavailableError("down"))
    call = conversation(clock, 12, words=1)
    await collect(layer(inner, summarizer(route, None, clock), max_recent_messages=4), call)
    assert len(inner.calls[0].messages) == 5 and not call.record.context_summarized


async def test_a_summary_that_does_not_fit_is_left_out(clock: FakeClock) -> None:
    inner = Inner()
    route = Route(reply="blah " * 400)  # far longer than the max_tokens it was asked for
    call = conversation(clock, 12, words=1)
    await collect(layer(inner, summarizer(route, None, clock, max_tokens=20), max_recent_messages=4), call)
    assert not call.record.context_summarized
    assert all("blah" not in m.text for m in inner.calls[0].messages)


class Hanging(Route):
    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls.append(call)
        await asyncio.Event().wait()
        yield FINAL


async def test_a_slow_summary_is_given_up() -> None:
    """The summary's own timeout fires on the clock's virtual time."""
    clock = FakeClock(auto_advance=True)
    inner, route = Inner(), Hanging()
    call = conversation(clock, 12, words=1)
    await collect(
        layer(inner, summarizer(route, None, clock, timeout_seconds=0.01), max_recent_messages=4), call
    )
    assert len(route.calls) == 1 and not call.record.context_summarized
    assert len(inner.calls[0].messages) == 5
