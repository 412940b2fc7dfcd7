"""The resolve step and the memory layer around a scripted inner handler: prompt, route, params,
memory only on success."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator
from contextlib import aclosing

import pytest

from sidecar.config.schema import Policy
from sidecar.core.errors import StreamInterruptedError
from sidecar.core.layer import collect
from sidecar.core.types import Call, Chunk, FinishReason, GenerationParams, Message, Role, Usage
from sidecar.personas.registry import PersonaRegistry
from sidecar.personas.service import PersonaService
from sidecar.pipeline.persona import PersonaLayer
from sidecar.pipeline.resolve import ResolveLayer
from sidecar.routing.table import RouteTable
from sidecar.sessions.store import ConversationKey, MemoryConversationStore
from tests.conftest import FakeClock
from tests.support.calls import make_call
from tests.support.personas import POLICY, registry

K = ConversationKey("t", "u", "c")


class Inner:
    """Records the call it got; answers "ok" in two chunks, or fails after the first if told to."""

    def __init__(self, fail: Exception | None = None, hang: bool = False) -> None:
        self.calls: list[Call] = []
        self.fail, self.hang = fail, hang

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls.append(call)
        yield Chunk(text="o")
        if self.fail is not None:
            raise self.fail
        if self.hang:
            await asyncio.Event().wait()
        yield Chunk(text="k", finish_reason=FinishReason.STOP, usage=Usage(1, 1))


TABLE = RouteTable.from_policy(
    Policy.model_validate(
        {
            "default_route": "echo",
            "deployments": {
                "echo": {"provider": "echo", "model": "e"},
                "other": {"provider": "echo", "model": "o"},
            },
            "routes": {"echo": {"deployments": ["echo"]}, "other": {"deployments": ["other"]}},
        }
    )
)


def setup(clock: FakeClock, inner: Inner, **kw: object) -> tuple[ResolveLayer, MemoryConversationStore]:
    store = MemoryConversationStore(POLICY, clock)
    reg = kw["reg"] if "reg" in kw else registry()
    svc = PersonaService(reg, store, clock=clock, memory_default=False)  # type: ignore[arg-type]
    memory = PersonaLayer(inner, personas=svc)
    return ResolveLayer(memory, personas=svc, table=TABLE, tiers={}, keys=None, modes={}), store


def call(clock: FakeClock, *messages: Message, **kw: object) -> Call:
    base = make_call(clock)
    return dataclasses.replace(
        base, messages=messages or base.messages, conversation_id="c", tier="enterprise", **kw
    )


async def test_persona_prompt_first_then_callers_system_then_the_rest(clock: FakeClock) -> None:
    inner = Inner()
    layer, _ = setup(clock, inner)
    c = call(
        clock, Message(Role.SYSTEM, "be short"), Message(Role.USER, "hi"), persona_id="dashboard-architect"
    )
    text, _ = await collect(layer, c)
    assert text == "ok"
    sent = inner.calls[0]
    assert [(m.role, m.text) for m in sent.messages] == [
        (Role.SYSTEM, "You design dashboards."),
        (Role.SYSTEM, "be short"),
        (Role.USER, "hi"),
    ]
    assert sent.model == "echo"  # the persona's default route
    assert sent.params == GenerationParams(max_tokens=300, temperature=0.2)
    assert c.record.persona == "dashboard-architect"


async def test_request_model_and_params_win_over_the_persona(clock: FakeClock) -> None:
    inner = Inner()
    layer, _ = setup(clock, inner)
    own = GenerationParams(temperature=1.0, stop=("x",))
    await collect(layer, call(clock, persona_id="dashboard-architect", model="other", params=own))
    sent = inner.calls[0]
    assert sent.model == "other"
    assert sent.params == GenerationParams(max_tokens=300, temperature=1.0, stop=("x",))


async def test_no_personas_no_memory_passes_the_call_through(clock: FakeClock) -> None:
    inner = Inner()
    layer, _ = setup(clock, inner, reg=PersonaRegistry(()))
    c = call(clock)
    await collect(layer, c)
    sent = inner.calls[0]
    assert dataclasses.replace(sent, plan=None) == c and c.record.persona == ""  # only the plan added
    assert sent.plan is not None and sent.plan.route.alias == "echo" and sent.plan.remember is None


async def test_memory_loads_history_and_stores_the_exchange(clock: FakeClock) -> None:
    inner = Inner()
    layer, store = setup(clock, inner)
    await collect(layer, call(clock, Message(Role.SYSTEM, "sys"), Message(Role.USER, "first"), memory=True))
    c2 = call(clock, Message(Role.USER, "second"), memory=True)
    await collect(layer, c2)
    assert [(m.role, m.text) for m in inner.calls[1].messages] == [
        (Role.USER, "first"),
        (Role.ASSISTANT, "ok"),
        (Role.USER, "second"),
    ]
    assert c2.record.history_messages == 2
    history = (await store.snapshot(K, history=True)).history
    assert [m.text for m in history] == [
        "first",
        "ok",
        "second",
        "ok",
    ]  # the caller's system message is not kept


@pytest.mark.parametrize(
    "inner",
    [Inner(fail=StreamInterruptedError("dropped")), Inner(fail=RuntimeError("bug"))],
    ids=["interrupted", "crash"],
)
async def test_failed_calls_store_nothing(clock: FakeClock, inner: Inner) -> None:
    layer, store = setup(clock, inner)
    with pytest.raises(type(inner.fail)):  # type: ignore[arg-type]
        await collect(layer, call(clock, memory=True))
    assert (await store.snapshot(K, history=True)).history == ()


async def test_cancelled_calls_store_nothing(clock: FakeClock) -> None:
    inner = Inner(hang=True)
    layer, store = setup(clock, inner)

    async def consume() -> None:
        async with aclosing(layer(call(clock, memory=True))) as stream:
            async for _ in stream:
                pass

    task = asyncio.create_task(consume())
    for _ in range(20):  # until the stream waits inside the inner handler
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert (await store.snapshot(K, history=True)).history == ()


async def test_abandoned_stream_stores_nothing(clock: FakeClock) -> None:
    layer, store = setup(clock, Inner())
    async with aclosing(layer(call(clock, memory=True))) as stream:
        async for _ in stream:
            break  # the caller went away after the first chunk
    assert (await store.snapshot(K, history=True)).history == ()
