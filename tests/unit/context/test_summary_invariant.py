"""No context loss with summaries: every message of a call is in its prompt or covered by the
summary in that prompt, over random conversations (random lengths, tool calls with their results,
windows, keep_recent_messages and refresh_tokens)."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import AsyncGenerator

import pytest

from sidecar.config.context import ContextPolicy, SummaryConfig
from sidecar.config.schema import Policy
from sidecar.context.summary import Summarizer
from sidecar.context.tokenizer import Tokenizers
from sidecar.context.trim import split_pinned
from sidecar.core.layer import collect
from sidecar.core.outcome import Outcome
from sidecar.core.types import Call, Chunk, FinishReason, Message, Role, ToolCall, Usage
from sidecar.pipeline.context import ContextLayer
from sidecar.routing.table import RouteTable
from sidecar.sessions.store import MemoryConversationStore, StorePolicy
from tests.conftest import FakeClock
from tests.support.calls import make_call

FINAL = Chunk(text="ok", finish_reason=FinishReason.STOP, usage=Usage(1, 1))
COVERED = re.compile(r"^Summary of (\d+) earlier messages: ")


class Recorder:
    def __init__(self, reply: str = "") -> None:
        self.calls: list[Call] = []
        self.reply = reply

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls.append(call)
        yield dataclasses.replace(FINAL, text=self.reply or "ok")


def words(rng: random.Random, most: int) -> str:
    vocabulary = ("alpha", "beta", "gamma", "delta", "chart", "the")
    return " ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, most)))


def turn(rng: random.Random, n: int) -> list[Message]:
    """An answer to the previous question (sometimes after tool calls and their results), then a question."""
    out: list[Message] = []
    if rng.random() < 0.3:
        calls = tuple(ToolCall(f"call-{n}-{k}", "lookup", '{"q": "x"}') for k in range(rng.randint(1, 2)))
        out.append(Message(Role.ASSISTANT, "", tool_calls=calls))
        out += [Message(Role.TOOL, words(rng, 20), tool_call_id=c.id) for c in calls]
    out.append(Message(Role.ASSISTANT, f"answer {n}: " + words(rng, 40)))
    out.append(Message(Role.USER, f"question {n}: " + words(rng, 15)))
    return out


def check(call: Call, sent: tuple[Message, ...]) -> None:
    pinned, rest = split_pinned(call.messages)
    assert sent[: len(pinned)] == pinned
    after = sent[len(pinned) :]
    covered = 0
    if after and after[0].role is Role.SYSTEM:
        found = COVERED.match(after[0].text)
        assert found is not None
        covered, after = int(found.group(1)), after[1:]
    # the prompt is the summary's messages' complement: nothing is in neither
    assert covered + len(after) == len(rest), (covered, len(after), len(rest))
    assert after == rest[covered:]
    assert not after or after[0].role is not Role.TOOL  # no orphan tool result
    for i, m in enumerate(after):  # no call without its results
        ids = [c.id for c in m.tool_calls]
        assert [r.tool_call_id for r in after[i + 1 : i + 1 + len(ids)]] == ids


@pytest.mark.parametrize("seed", range(40))
async def test_every_message_is_in_the_prompt_or_covered_by_its_summary(seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    window = rng.randint(500, 2500)
    policy = Policy.model_validate(
        {
            "default_route": "main",
            "deployments": {
                "m": {"provider": "echo", "model": "m", "context_window": window, "default_max_tokens": 50},
                "s": {"provider": "echo", "model": "s", "context_window": 100_000},
            },
            "routes": {"main": {"deployments": ["m"]}, "cheap": {"deployments": ["s"]}},
        }
    )
    config = SummaryConfig(
        route="cheap",
        max_tokens=rng.choice((16, 64, 128)),
        keep_recent_messages=rng.randint(1, 6),
        refresh_tokens=rng.choice((1, 50, 200, 1024, 100_000)),
    )
    route, inner = Recorder("they talked about charts"), Recorder()
    store = MemoryConversationStore(StorePolicy(3600, 10_000, 10), clock)
    ctx = ContextLayer(
        inner,
        table=RouteTable.from_policy(policy),
        tokenizers=Tokenizers.build(policy.deployments, None),
        policy=ContextPolicy(),
        summarizer=Summarizer(route, config=config, store=store, clock=clock),
    )
    messages = [Message(Role.SYSTEM, "You are Mr Blue. " + words(rng, 30)), Message(Role.USER, "hello")]
    base = dataclasses.replace(make_call(clock), conversation_id="c1")
    for n in range(40):
        messages += turn(rng, n)
        call = dataclasses.replace(base, messages=tuple(messages), record=Outcome(0.0))
        await collect(ctx, call)
        check(call, inner.calls[-1].messages)
    assert route.calls or config.refresh_tokens == 100_000  # long enough to be summarized
