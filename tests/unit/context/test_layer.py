"""ContextLayer around a scripted inner handler, and the Summarizer around a scripted route."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from sidecar.config.context import ContextPolicy, SummaryConfig
from sidecar.config.schema import Policy
from sidecar.context.summary import Summarizer
from sidecar.context.tokenizer import ESTIMATE_COUNTER, Tokenizers
from sidecar.core.clock import Deadline
from sidecar.core.errors import ContextTooLongError, ProvidersUnavailableError
from sidecar.core.layer import collect
from sidecar.core.outcome import Outcome
from sidecar.core.types import Call, Chunk, FinishReason, GenerationParams, Message, Role, ToolSpec, Usage
from sidecar.pipeline.context import ContextLayer
from sidecar.routing.table import RouteTable
from sidecar.sessions.store import ConversationKey, ConversationStore, MemoryConversationStore, StorePolicy
from tests.conftest import FakeClock
from tests.support.calls import make_call
from tests.support.context import ENCODINGS_DIR

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


def summarizer(route: Route, store: ConversationStore, clock: FakeClock, **config: Any) -> Summarizer:
    config = {"route": "cheap", "keep_recent_messages": 4, "refresh_tokens": 1, **config}
    return Summarizer(route, config=SummaryConfig.model_validate(config), store=store, clock=clock)


def store(clock: FakeClock) -> MemoryConversationStore:
    return MemoryConversationStore(StorePolicy(3600, 1000, 10), clock)


def in_conversation(call: Call, conversation: str = "c1") -> Call:
    return dataclasses.replace(call, conversation_id=conversation)


def grown(call: Call, *texts: str) -> Call:
    """The next turn of the conversation: the same messages and some more."""
    roles = (Role.USER, Role.ASSISTANT)
    more = tuple(Message(roles[i % 2], t) for i, t in enumerate(texts))
    return dataclasses.replace(call, messages=(*call.messages, *more), record=Outcome(0.0))


async def test_a_rolling_summary_sends_each_message_to_the_summarizer_once(clock: FakeClock) -> None:
    route, inner, sessions = Route(), Inner(), store(clock)
    ctx = layer(inner, summarizer(route, sessions, clock))
    first = in_conversation(conversation(clock, 12, words=1))
    await collect(ctx, first)
    # no summary covers anything yet, and everything fits: nothing leaves the prompt
    assert [m.text for m in inner.calls[0].messages[1:]] == [f"turn {i} word " for i in range(12)]
    assert not first.record.context_summarized  # no summary yet: it is written after the answer
    [call] = route.calls
    assert call.model == "cheap" and call.params.temperature == 0.0 and call.request_id == "req-1.summary"
    assert call.tenant_id == "t" and call.user_id == "u" and call.conversation_id == "c1"
    assert "user: turn 0 word" in call.messages[1].text and "turn 7 word" in call.messages[1].text
    assert "turn 8 word" not in call.messages[1].text  # the newest 4 stay verbatim
    saved = await sessions.summary(ConversationKey("t", "u", "c1"))
    assert saved is not None and saved.text == "they talked" and saved.messages == 8

    second = grown(first, "turn 12 word ", "turn 13 word ")
    route.reply = "they talked more"
    await collect(ctx, second)
    sent = inner.calls[1].messages
    assert sent[0].text == "You are Mr Blue."
    assert sent[1].role is Role.SYSTEM and sent[1].text.endswith("messages: they talked")
    assert "8 earlier messages" in sent[1].text
    assert [m.text for m in sent[2:]] == [f"turn {i} word " for i in range(8, 14)]  # all not covered
    assert second.record.context_summarized and second.record.context_messages_removed == 8
    refresh = route.calls[1].messages[1].text
    assert refresh.startswith("Summary so far: they talked\n")
    assert "turn 8 word" in refresh and "turn 9 word" in refresh
    assert "turn 7 word" not in refresh and "turn 10 word" not in refresh  # only the newly folded
    saved = await sessions.summary(ConversationKey("t", "u", "c1"))
    assert saved is not None and saved.text == "they talked more" and saved.messages == 10


async def test_the_summary_is_refreshed_only_when_enough_was_dropped(clock: FakeClock) -> None:
    route, inner, sessions = Route(), Inner(), store(clock)
    ctx = layer(inner, summarizer(route, sessions, clock, refresh_tokens=40))
    call = in_conversation(dataclasses.replace(conversation(clock, 12, words=1), model="cheap"))  # 5,000
    await collect(ctx, call)
    assert len(route.calls) == 1  # 8 dropped messages: enough
    for turn in range(12, 18, 2):
        call = grown(call, f"turn {turn} word ", f"turn {turn + 1} word ")
        await collect(ctx, call)
        assert call.record.context_summarized
    # 2, 4 then 6 messages dropped since the summary (about 7 estimated tokens each): the third is enough
    assert len(route.calls) == 2
    assert "turn 8 word" in route.calls[1].messages[1].text


async def test_summaries_are_per_conversation(clock: FakeClock) -> None:
    route, sessions = Route(), store(clock)
    ctx = layer(Inner(), summarizer(route, sessions, clock))
    call = in_conversation(conversation(clock, 12, words=1))
    for variant in (call, dataclasses.replace(call, user_id="someone-else"), in_conversation(call, "c2")):
        await collect(ctx, dataclasses.replace(variant, record=Outcome(0.0)))
    assert len(route.calls) == 3
    assert await sessions.summary(ConversationKey("t", "someone-else", "c1")) is not None


async def test_no_summary_without_a_conversation_id(clock: FakeClock) -> None:
    route, inner = Route(), Inner()
    await collect(
        layer(inner, summarizer(route, store(clock), clock), max_recent_messages=6),
        conversation(clock, 12, words=1),
    )
    assert not route.calls and len(inner.calls[0].messages) == 7  # max_recent_messages applies


async def test_a_failed_call_makes_no_summary(clock: FakeClock) -> None:
    class Failing(Inner):
        async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
            self.calls.append(call)
            raise ProvidersUnavailableError("down")
            yield FINAL

    route = Route()
    with pytest.raises(ProvidersUnavailableError):
        await collect(
            layer(Failing(), summarizer(route, store(clock), clock)), in_conversation(conversation(clock, 12))
        )
    assert not route.calls


async def test_a_failed_summary_leaves_the_messages_in_the_prompt(clock: FakeClock) -> None:
    inner, sessions = Inner(), store(clock)
    route = Route(error=ProvidersUnavailableError("down"))
    call = in_conversation(conversation(clock, 12, words=1))
    ctx = layer(inner, summarizer(route, sessions, clock))
    await collect(ctx, call)
    assert len(route.calls) == 1 and await sessions.summary(ConversationKey("t", "u", "c1")) is None
    await collect(ctx, grown(call, "more", "answers"))
    assert len(inner.calls[1].messages) == 15 and len(route.calls) == 2  # all of them, and it tries again


async def test_a_summary_longer_than_max_tokens_is_not_kept(clock: FakeClock) -> None:
    inner, sessions = Inner(), store(clock)
    route = Route(reply="blah " * 21)  # longer than the max_tokens it was asked for
    ctx = layer(inner, summarizer(route, sessions, clock, max_tokens=20))
    call = in_conversation(conversation(clock, 12, words=1))
    await collect(ctx, call)
    assert await sessions.summary(ConversationKey("t", "u", "c1")) is None
    call = grown(call, "more", "answers")
    await collect(ctx, call)
    assert not call.record.context_summarized
    assert all("blah" not in m.text for m in inner.calls[1].messages)
    assert len(inner.calls[1].messages) == 15  # not covered, so still sent


class Hanging(Route):
    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls.append(call)
        await asyncio.Event().wait()
        yield FINAL


async def test_a_slow_summary_is_given_up() -> None:
    """The summary's own timeout fires on the clock's virtual time."""
    clock = FakeClock(auto_advance=True)
    inner, route, sessions = Inner(), Hanging(), store(clock)
    call = in_conversation(conversation(clock, 12, words=1))
    await collect(layer(inner, summarizer(route, sessions, clock, timeout_seconds=0.01)), call)
    assert len(route.calls) == 1 and await sessions.summary(ConversationKey("t", "u", "c1")) is None
    assert len(inner.calls[0].messages) == 13


async def test_a_repeated_message_is_not_taken_for_the_one_the_summary_covers(clock: FakeClock) -> None:
    route, inner, sessions = Route(), Inner(), store(clock)
    ctx = layer(inner, summarizer(route, sessions, clock, keep_recent_messages=2))
    call = in_conversation(conversation(clock, 5, words=1))  # turns 0..4; 0, 1, 2 are dropped
    await collect(ctx, call)
    again = grown(call, "turn 2 word ")  # the newest message repeats the newest one summarized
    await collect(ctx, again)
    sent = inner.calls[1].messages
    assert sent[-1].text == "turn 2 word " and sent[-2].text == "turn 4 word "
    assert again.record.context_summarized


def openai_billed(encoding: Any, messages: tuple[Message, ...]) -> int:
    """OpenAI's accounting written out independently: 3 a message plus every field's text, 1 more
    for a name, 3 to prime the reply."""
    total = 3
    for m in messages:
        fields = [m.role.value, m.text, *([m.name] if m.name else [])]
        total += 3 + sum(len(encoding.encode(f)) for f in fields) + (1 if m.name else 0)
    return total


@pytest.mark.parametrize("window", [300, 301, 302, 333, 360, 517])
async def test_trimmed_prompts_fit_the_window_by_the_providers_count_to_the_token(
    clock: FakeClock, encodings: dict[str, Any], window: int
) -> None:
    """Never off by one: prompt + max_tokens <= window, and the next older message would not fit."""
    policy = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {"gpt": {"provider": "openai", "model": "gpt-4", "context_window": window}},
            "routes": {"main": {"deployments": ["gpt"]}},
        }
    )
    inner = Inner()
    ctx = ContextLayer(
        inner,
        table=RouteTable.from_policy(policy),
        tokenizers=Tokenizers.build(policy.deployments, ENCODINGS_DIR),
        policy=ContextPolicy(max_recent_messages=1000),
    )
    call = conversation(clock, 40, words=3, max_tokens=100)
    named = tuple(
        dataclasses.replace(m, name="ann") if i % 3 == 1 else m for i, m in enumerate(call.messages)
    )
    call = dataclasses.replace(call, messages=named)
    await collect(ctx, call)
    sent = inner.calls[0].messages
    billed = openai_billed(encodings["cl100k_base"], sent)
    assert billed + 100 <= window
    older = call.messages[len(call.messages) - len(sent)]  # the newest message that was dropped
    assert openai_billed(encodings["cl100k_base"], (sent[0], older, *sent[1:])) + 100 > window


async def test_a_summary_of_one_message_replaces_it(clock: FakeClock) -> None:
    """The prompt has as many messages with the summary as without: it is still sent and reported."""
    route, inner, sessions = Route(), Inner(), store(clock)
    ctx = layer(inner, summarizer(route, sessions, clock, keep_recent_messages=2))
    call = in_conversation(conversation(clock, 3, words=1))  # system + 3: the first is dropped
    await collect(ctx, call)
    again = grown(call)
    await collect(ctx, again)
    sent = inner.calls[1].messages
    assert [m.text for m in sent[2:]] == ["turn 1 word ", "turn 2 word "]
    assert sent[1].text == "Summary of 1 earlier messages: they talked"
    assert again.record.context_summarized and again.record.context_messages_removed == 1


async def test_a_summary_takes_at_most_half_of_the_callers_remaining_time() -> None:
    """The answer is already made: the summary must never make the caller miss its deadline."""
    clock = FakeClock(auto_advance=True)
    inner, route, sessions = Inner(), Hanging(), store(clock)
    call = in_conversation(conversation(clock, 12, words=1))
    call = dataclasses.replace(call, deadline=Deadline.after(1.0, clock))
    started = clock.monotonic()
    await collect(layer(inner, summarizer(route, sessions, clock, timeout_seconds=5)), call)
    assert len(route.calls) == 1 and clock.monotonic() - started == pytest.approx(0.5)
    assert call.deadline.remaining() == pytest.approx(0.5)


async def test_tool_definitions_leave_less_room_for_messages(clock: FakeClock) -> None:
    inner = Inner()
    plain = conversation(clock, 30, words=2)
    await collect(layer(inner, max_recent_messages=1000), plain)
    tool = ToolSpec("lookup", "Looks a word up. " * 10, '{"type": "object", "properties": {}}')
    tooled = dataclasses.replace(plain, params=GenerationParams(tools=(tool,)), record=Outcome(0.0))
    await collect(layer(inner, max_recent_messages=1000), tooled)
    assert len(inner.calls[1].messages) < len(inner.calls[0].messages)


class Ordered(Inner):
    """Records the order of the caller's call and the summary calls in one list."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.log.append("call")
        async for chunk in super().__call__(call):
            yield chunk


async def test_a_window_too_small_for_the_uncovered_messages_refreshes_before_the_call(
    clock: FakeClock,
) -> None:
    log: list[str] = []

    class Logged(Route):
        async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
            log.append("summary")
            async for chunk in super().__call__(call):
                yield chunk

    route, inner, sessions = Logged(), Ordered(log), store(clock)
    ctx = layer(inner, summarizer(route, sessions, clock, keep_recent_messages=2, refresh_tokens=100_000))
    call = in_conversation(conversation(clock, 40, words=3))  # the small deployment's 250 cannot hold it
    await collect(ctx, call)
    assert log == ["summary", "call"]
    sent = inner.calls[0].messages
    assert sent[1].text.startswith("Summary of ") and call.record.context_summarized
    covered = int(sent[1].text.split()[2])
    assert [m.text for m in sent[2:]] == [m.text for m in call.messages[1 + covered :]]  # nothing lost


async def test_a_failed_refresh_before_the_call_is_the_only_loss_and_is_logged(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    inner, sessions = Inner(), store(clock)
    route = Route(error=ProvidersUnavailableError("down"))
    ctx = layer(inner, summarizer(route, sessions, clock, keep_recent_messages=2, refresh_tokens=100_000))
    call = in_conversation(conversation(clock, 40, words=3))
    with caplog.at_level("WARNING", logger="sidecar.context"):
        await collect(ctx, call)
    assert "context dropped unsummarized" in caplog.text
    assert len(inner.calls[0].messages) < len(call.messages) and not call.record.context_summarized


async def test_anthropic_thinking_budget_is_room_the_prompt_leaves(clock: FakeClock) -> None:
    """Anthropic's extended thinking sends max_tokens raised by the thinking budget (it is part of
    max_tokens there): trimming left room for the call's 1,024 only, so a long conversation went out
    as prompt + 25,600 past the window, which Anthropic refuses."""
    from sidecar.core.types import Reasoning

    policy = Policy.model_validate(
        {
            "default_route": "claude",
            "deployments": {
                "claude": {
                    "provider": "anthropic",
                    "model": "claude-x",
                    "context_window": 30_000,
                    "api_key": {"env": "K"},
                },
            },
            "routes": {"claude": {"deployments": ["claude"]}},
        }
    )
    tokenizers = Tokenizers.build(policy.deployments, None)
    table = RouteTable.from_policy(policy)
    inner = Inner()
    context = ContextLayer(
        inner,
        table=table,
        tokenizers=tokenizers,
        policy=ContextPolicy.model_validate({"max_recent_messages": 1000}),
    )
    thinking = conversation(clock, 200, words=60, max_tokens=1024, reasoning=Reasoning(effort="high"))
    await collect(context, thinking)  # the default route: claude
    sent = inner.calls[0].messages
    prompt = tokenizers.prompt("claude", sent)
    assert prompt + 1024 + 24_576 <= 30_000
    assert prompt > 30_000 - 25_600 - 1_000  # trimmed to the room left, not far below it
