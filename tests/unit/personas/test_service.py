"""Switch ordering and supersession, the switch history, and each call's plan (persona + history)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from sidecar.core.errors import (
    InvalidRequestError,
    PersonaNotAllowedError,
    PersonaNotFoundError,
    SessionStoreUnavailableError,
    SwitchSupersededError,
)
from sidecar.core.types import Call, Message, Role
from sidecar.personas.service import PersonaService, SwitchCommand
from sidecar.sessions.store import (
    ConversationKey,
    ConversationStore,
    MemoryConversationStore,
    Snapshot,
    SwitchRecord,
)
from tests.conftest import FakeClock
from tests.support.calls import make_call
from tests.support.personas import POLICY, registry, service

K = ConversationKey("t", "u", "c")


class GatedStore(MemoryConversationStore):
    """Activations wait for `gate` while `hold` is set: a Switch stays in its turn on demand."""

    def __init__(self, inner: ConversationStore, clock: FakeClock) -> None:
        super().__init__(POLICY, clock)
        self.inner = inner
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()  # a Switch is holding its turn at the gate
        self.hold = True

    async def activate(self, key: ConversationKey, persona_id: str, version: int) -> tuple[bool, str]:
        if self.hold:
            self.waiting.set()
            await self.gate.wait()
        return await self.inner.activate(key, persona_id, version)

    def __getattribute__(self, name: str) -> object:
        if name in ("snapshot", "next_version", "append", "clear", "record_switch", "switches"):
            return getattr(object.__getattribute__(self, "inner"), name)
        return object.__getattribute__(self, name)


async def settle() -> None:
    """Let the tasks just started run until they wait (in-memory store: nothing waits on I/O)."""
    for _ in range(20):
        await asyncio.sleep(0)


def cmd(target: str, tier: str = "enterprise", key: ConversationKey = K) -> SwitchCommand:
    if target.startswith("use "):
        return SwitchCommand(key, tier, command=target)
    return SwitchCommand(key, tier, persona_id=target)


def call_for(clock: FakeClock, conversation: str = "c", **kw: object) -> Call:
    return dataclasses.replace(make_call(clock), conversation_id=conversation, tier="enterprise", **kw)


async def test_switch_then_plan(conversation_store: ConversationStore, clock: FakeClock) -> None:
    svc = service(conversation_store, clock)
    first = await svc.switch(cmd("use Mr Blue"))
    assert (first.persona.id, first.previous) == ("mr-blue", "")
    second = await svc.switch(cmd("agent-79"))
    assert (second.previous, second.version > first.version) == ("mr-blue", True)
    plan = await svc.plan(call_for(clock))
    assert plan.persona is not None and plan.persona.id == "agent-79"
    history = await svc.switches("t", "u", "", 10)
    assert [(r.from_persona, r.to_persona, r.command, r.success) for r in history] == [
        ("mr-blue", "agent-79", "", True),
        ("", "mr-blue", "use Mr Blue", True),
    ]
    assert history[0].at == clock.wall()


async def test_failed_switches_are_recorded(conversation_store: ConversationStore, clock: FakeClock) -> None:
    svc = service(conversation_store, clock)
    applied = await svc.switch(cmd("mr-blue"))
    with pytest.raises(PersonaNotAllowedError):
        await svc.switch(cmd("use Dashboard Architect", tier="free"))
    with pytest.raises(PersonaNotFoundError):
        await svc.switch(cmd("use nobody at all"))
    history = await svc.switches("t", "u", "c", 10)
    assert [(r.from_persona, r.to_persona, r.success, r.error, r.version) for r in history] == [
        ("mr-blue", "", False, "PERSONA_NOT_FOUND", 0),
        ("mr-blue", "", False, "PERSONA_NOT_ALLOWED", 0),
        ("", "mr-blue", True, "", applied.version),
    ]
    assert (await svc.plan(call_for(clock))).persona.id == "mr-blue"  # type: ignore[union-attr]


async def test_a_newer_switch_cancels_a_pending_one_and_generations_keep_their_place(
    clock: FakeClock,
) -> None:
    store = GatedStore(MemoryConversationStore(POLICY, clock), clock)
    svc = PersonaService(registry(), store, clock=clock, memory_default=False)
    s1 = asyncio.create_task(svc.switch(cmd("mr-blue")))  # holds its turn until the gate opens
    await store.waiting.wait()
    g1 = asyncio.create_task(svc.plan(call_for(clock)))  # after s1: must see mr-blue
    s2 = asyncio.create_task(svc.switch(cmd("agent-79")))  # pending behind g1 ...
    await settle()
    s3 = asyncio.create_task(svc.switch(cmd("use architect")))  # ... until this one supersedes it
    g2 = asyncio.create_task(svc.plan(call_for(clock)))  # after s3
    await settle()
    with pytest.raises(SwitchSupersededError) as info:
        await s2
    assert info.value.metadata["conversationId"] == "c"
    assert not (s1.done() or g1.done() or s3.done() or g2.done())
    store.gate.set()
    assert (await s1).persona.id == "mr-blue"
    assert (await g1).persona.id == "mr-blue"  # type: ignore[union-attr]
    assert (await s3).previous == "mr-blue"
    assert (await g2).persona.id == "dashboard-architect"  # type: ignore[union-attr]
    history = await svc.switches("t", "u", "c", 10)
    assert [(r.to_persona, r.success, r.error) for r in history] == [
        ("dashboard-architect", True, ""),
        ("mr-blue", True, ""),
        ("agent-79", False, "SWITCH_SUPERSEDED"),
    ]


async def test_switches_of_other_conversations_do_not_supersede(clock: FakeClock) -> None:
    store = GatedStore(MemoryConversationStore(POLICY, clock), clock)
    svc = PersonaService(registry(), store, clock=clock, memory_default=False)
    s1 = asyncio.create_task(svc.switch(cmd("mr-blue")))
    await store.waiting.wait()
    other = ConversationKey("t", "u", "other")
    s2 = asyncio.create_task(svc.switch(cmd("agent-79", key=other)))
    s3 = asyncio.create_task(svc.switch(cmd("use agent 80", key=K)))
    await settle()
    store.gate.set()
    assert [r.persona.id for r in await asyncio.gather(s1, s2, s3)] == ["mr-blue", "agent-79", "agent-80"]


async def test_last_switch_wins_across_sidecars_sharing_a_store(
    conversation_store: ConversationStore, clock: FakeClock
) -> None:
    gated = GatedStore(conversation_store, clock)
    slow = PersonaService(registry(), gated, clock=clock, memory_default=False)
    fast = service(conversation_store, clock)
    older = asyncio.create_task(slow.switch(cmd("mr-blue")))  # takes its ticket first, applies last
    await gated.waiting.wait()
    await fast.switch(cmd("agent-79"))
    gated.gate.set()
    with pytest.raises(SwitchSupersededError):
        await older
    assert (await fast.plan(call_for(clock))).persona.id == "agent-79"  # type: ignore[union-attr]
    assert (await slow.plan(call_for(clock))).persona.id == "agent-79"  # type: ignore[union-attr]


async def test_cancelled_switch_is_recorded(clock: FakeClock) -> None:
    store = GatedStore(MemoryConversationStore(POLICY, clock), clock)
    svc = PersonaService(registry(), store, clock=clock, memory_default=False)
    s1 = asyncio.create_task(svc.switch(cmd("mr-blue")))
    await store.waiting.wait()
    s1.cancel()
    await asyncio.gather(s1, return_exceptions=True)
    await svc.aclose()  # waits for the record written after the caller left
    history = await store.inner.switches("t", "u", "c", 10)
    assert [(r.to_persona, r.success, r.error) for r in history] == [("mr-blue", False, "CANCELLED")]


async def test_plan_explicit_default_and_tier(clock: FakeClock) -> None:
    store = MemoryConversationStore(POLICY, clock)
    svc = PersonaService(registry(default="mr-blue"), store, clock=clock, memory_default=False)
    assert (await svc.plan(call_for(clock))).persona.id == "mr-blue"  # type: ignore[union-attr]
    assert (await svc.plan(call_for(clock, persona_id="agent-79"))).persona.id == "agent-79"  # type: ignore[union-attr]
    await svc.switch(cmd("agent-80"))
    with pytest.raises(PersonaNotAllowedError):  # the user's tier changed since the Switch
        await svc.plan(dataclasses.replace(call_for(clock), tier="basic"))
    with pytest.raises(PersonaNotFoundError):
        await svc.plan(call_for(clock, persona_id="ghost"))
    no_ids = dataclasses.replace(call_for(clock), tenant_id="", user_id="")
    assert (await svc.plan(no_ids)).persona.id == "mr-blue"  # type: ignore[union-attr]  # no conversation state


async def test_plan_memory(clock: FakeClock) -> None:
    store = MemoryConversationStore(POLICY, clock)
    svc = PersonaService(registry(), store, clock=clock, memory_default=False)
    await store.append(K, (Message(Role.USER, "earlier"), Message(Role.ASSISTANT, "reply")))
    assert (await svc.plan(call_for(clock))).history == ()  # memory off by default here
    plan = await svc.plan(call_for(clock, memory=True))
    assert [m.text for m in plan.history] == ["earlier", "reply"] and plan.remember == K
    with pytest.raises(InvalidRequestError) as info:
        await svc.plan(call_for(clock, conversation="", memory=True))
    assert info.value.violations[0].field == "conversation_id"
    on = PersonaService(registry(), store, clock=clock, memory_default=True)
    assert len((await on.plan(call_for(clock))).history) == 2
    assert (await on.plan(call_for(clock, memory=False))).history == ()


async def test_a_call_with_its_own_persona_and_no_memory_carries_the_conversations_epoch(
    clock: FakeClock,
) -> None:
    """It reads neither persona nor history, yet its summary's save must be refused after a clear:
    its plan carries the epoch (it carried none, so the save went unchecked)."""
    store = MemoryConversationStore(POLICY, clock)
    svc = PersonaService(registry(), store, clock=clock, memory_default=False, summaries=True)
    await store.clear(K)
    await store.clear(K)
    plan = await svc.plan(call_for(clock, persona_id="agent-79", memory=False))
    assert (plan.persona.id, plan.history, plan.remember, plan.epoch) == ("agent-79", (), None, 2)  # type: ignore[union-attr]


async def test_without_summaries_such_a_call_does_not_touch_the_store(clock: FakeClock) -> None:
    """Nothing of the conversation is read or saved: the store (Redis) is not asked at all, so its
    outage costs such calls nothing, not even a log line each."""

    class Untouchable(MemoryConversationStore):
        async def snapshot(self, key: ConversationKey, *, history: bool) -> Snapshot:
            raise AssertionError("the store was read")

    svc = PersonaService(registry(), Untouchable(POLICY, clock), clock=clock, memory_default=False)
    plan = await svc.plan(call_for(clock, persona_id="agent-79", memory=False))
    assert plan.persona is not None and plan.persona.id == "agent-79" and plan.epoch is None


async def test_a_store_that_fails_leaves_such_a_call_unchecked_not_failed(clock: FakeClock) -> None:
    class Down(MemoryConversationStore):
        async def snapshot(self, key: ConversationKey, *, history: bool) -> Snapshot:
            raise SessionStoreUnavailableError("the conversation store is unreachable")

    svc = PersonaService(registry(), Down(POLICY, clock), clock=clock, memory_default=False, summaries=True)
    plan = await svc.plan(call_for(clock, persona_id="agent-79", memory=False))
    assert plan.persona is not None and plan.persona.id == "agent-79" and plan.epoch is None


async def test_not_involved_without_personas_or_memory(clock: FakeClock) -> None:
    from sidecar.personas.registry import PersonaRegistry

    svc = PersonaService(
        PersonaRegistry(()), MemoryConversationStore(POLICY, clock), clock=clock, memory_default=False
    )
    assert not svc.involved(call_for(clock))
    assert svc.involved(call_for(clock, memory=True))
    assert svc.involved(call_for(clock, persona_id="x"))


async def test_an_older_switch_whose_version_comes_back_late_gives_way(clock: FakeClock) -> None:
    """With several store connections, an older Switch's version can arrive after a newer one's: the
    newer (higher version) still wins, the older is superseded at once."""

    class Store(MemoryConversationStore):
        def __init__(self) -> None:
            super().__init__(POLICY, clock)
            self.gate, self.release = asyncio.Event(), asyncio.Event()
            self.versions = self.activations = 0

        async def next_version(self, key: ConversationKey) -> int:
            version = await super().next_version(key)
            self.versions += 1
            if self.versions == 2:
                await self.release.wait()  # the second Switch's version comes back last
            return version

        async def activate(self, key: ConversationKey, persona_id: str, version: int) -> tuple[bool, str]:
            self.activations += 1
            if self.activations == 1:
                await self.gate.wait()  # the first Switch holds the user's turn
            return await super().activate(key, persona_id, version)

    store = Store()
    svc = PersonaService(registry(), store, clock=clock, memory_default=False)
    first = asyncio.create_task(svc.switch(cmd("dashboard-architect")))
    await settle()
    older = asyncio.create_task(svc.switch(cmd("mr-blue")))
    await settle()
    newer = asyncio.create_task(svc.switch(cmd("agent-79")))  # waits for its turn behind `first`
    await settle()
    store.release.set()
    await settle()
    store.gate.set()
    with pytest.raises(SwitchSupersededError):
        await older
    assert (await newer).persona.id == "agent-79"
    await first
    assert (await svc.plan(call_for(clock))).persona.id == "agent-79"  # type: ignore[union-attr]


class NoRecordStore(MemoryConversationStore):
    """A store that fails to write switch records (Redis went away after the activation)."""

    async def record_switch(self, tenant: str, user: str, record: SwitchRecord) -> None:
        raise SessionStoreUnavailableError("the conversation store (Redis) failed (timeout); retry later")


async def test_an_applied_switch_whose_record_fails_still_succeeds(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The persona was switched: the Switch says so (it answered UNAVAILABLE, so the application
    showed the old persona while every later call used the new one); the lost record is logged."""
    store = NoRecordStore(POLICY, clock)
    svc = service(store, clock)
    result = await svc.switch(cmd("mr-blue"))
    assert (result.persona.id, result.previous) == ("mr-blue", "")
    assert (await store.snapshot(K, history=False)).persona_id == "mr-blue"
    assert any(r.message == "switch not recorded" for r in caplog.records)
