"""One suite for both conversation stores: in memory and a real Redis (`conversation_store`)."""

from __future__ import annotations

import asyncio
import tracemalloc

import pytest

from sidecar.context.trim import unanswered
from sidecar.core.types import Message, Role, ToolCall
from sidecar.sessions.store import (
    ConversationKey,
    ConversationStore,
    ConversationSummary,
    MemoryConversationStore,
    StorePolicy,
    SwitchRecord,
)
from tests.conftest import FakeClock
from tests.support.personas import POLICY

K = ConversationKey("t1", "u1", "c1")


def msgs(*texts: str) -> tuple[Message, ...]:
    roles = (Role.USER, Role.ASSISTANT)
    return tuple(Message(roles[i % 2], t) for i, t in enumerate(texts))


def rec(conv: str, to: str, at: float, ok: bool = True) -> SwitchRecord:
    return SwitchRecord(conv, "", to, f"use {to}", ok, "" if ok else "SWITCH_SUPERSEDED", at, 1)


async def test_empty_conversation(conversation_store: ConversationStore) -> None:
    snap = await conversation_store.snapshot(K, history=True)
    assert (snap.persona_id, snap.version, snap.history) == ("", 0, ())


async def test_last_version_wins(conversation_store: ConversationStore) -> None:
    s = conversation_store
    v1, v2, v3 = [await s.next_version(K) for _ in range(3)]
    assert v1 < v2 < v3
    assert await s.activate(K, "b", v2) == (True, "")
    assert await s.activate(K, "a", v1) == (False, "b")  # arrived earlier, applied later: refused
    assert await s.activate(K, "c", v3) == (True, "b")
    assert await s.activate(K, "x", v3) == (False, "c")  # a version applies once
    snap = await s.snapshot(K, history=False)
    assert (snap.persona_id, snap.version) == ("c", v3)
    assert await s.next_version(K) > v3


async def test_history_is_appended_in_order_and_capped(conversation_store: ConversationStore) -> None:
    s = conversation_store
    await s.append(K, msgs("q1", "a1"))
    await s.append(K, msgs("q2", "a2", "q3", "a3"))
    assert [m.text for m in (await s.snapshot(K, history=True)).history] == [
        "q1",
        "a1",
        "q2",
        "a2",
        "q3",
        "a3",
    ]
    await s.append(
        K, (Message(Role.USER, 'q4 ünïcode, "quotes"\n', name="bob"), Message(Role.ASSISTANT, "a4"))
    )
    history = (await s.snapshot(K, history=True)).history
    assert len(history) == POLICY.max_history_messages
    assert [m.text for m in history][:2] == ["q2", "a2"]  # the oldest went first
    assert history[-2] == Message(Role.USER, 'q4 ünïcode, "quotes"\n', name="bob")
    assert (await s.snapshot(K, history=False)).history == ()  # only when asked for


async def test_tenants_users_and_conversations_are_isolated(conversation_store: ConversationStore) -> None:
    s = conversation_store
    others = [
        ConversationKey("t2", "u1", "c1"),
        ConversationKey("t1", "u2", "c1"),
        ConversationKey("t1", "u1", "c2"),
        ConversationKey("t1:u1", "", "c1"),  # separators inside ids cannot merge owners
        ConversationKey("t1", "u1|c1", ""),
    ]
    await s.activate(K, "mine", await s.next_version(K))
    await s.append(K, msgs("secret"))
    await s.record_switch("t1", "u1", rec("c1", "mine", 1.0))
    for other in others:
        snap = await s.snapshot(other, history=True)
        assert (snap.persona_id, snap.history) == ("", ()), other
        assert await s.switches(other.tenant, other.user, other.conversation, 10) == [], other


async def test_switch_history_newest_first_with_limit_and_filter(
    conversation_store: ConversationStore,
) -> None:
    s = conversation_store
    for i in range(5):
        await s.record_switch("t1", "u1", rec("c1" if i % 2 == 0 else "c2", f"p{i}", float(i), ok=i != 3))
    all_ = await s.switches("t1", "u1", "", 10)
    assert [r.to_persona for r in all_] == ["p4", "p3", "p2", "p1", "p0"]
    assert all_[1] == rec("c2", "p3", 3.0, ok=False)
    assert [r.to_persona for r in await s.switches("t1", "u1", "", 2)] == ["p4", "p3"]
    assert [r.to_persona for r in await s.switches("t1", "u1", "c2", 10)] == ["p3", "p1"]


async def test_switch_history_is_capped(conversation_store: ConversationStore) -> None:
    s = conversation_store
    for i in range(POLICY.max_switch_history + 5):
        await s.record_switch("t1", "u1", rec("c1", f"p{i}", float(i)))
    kept = await s.switches("t1", "u1", "", 1000)
    assert len(kept) == POLICY.max_switch_history
    assert kept[0].to_persona == f"p{POLICY.max_switch_history + 4}"


async def test_clear_forgets_history_and_persona_not_the_version(
    conversation_store: ConversationStore,
) -> None:
    s = conversation_store
    assert await s.clear(K) is False
    v = await s.next_version(K)
    await s.activate(K, "p", v)
    await s.append(K, msgs("q", "a"))
    assert await s.clear(K) is True
    snap = await s.snapshot(K, history=True)
    assert (snap.persona_id, snap.history) == ("", ())
    assert await s.next_version(K) > v  # an older pending Switch still cannot win after a clear


async def test_a_clear_supersedes_the_switches_ticketed_before_it(
    conversation_store: ConversationStore,
) -> None:
    """A Switch takes its ticket, the user clears the conversation, the Switch is applied: it brought
    its persona back into the cleared conversation. The clear came later and wins, as a newer Switch
    would; a Switch ticketed after the clear applies (also with no persona ever applied before)."""
    s = conversation_store
    early = await s.next_version(K)
    assert await s.clear(K) is False
    assert await s.activate(K, "p", early) == (False, "")
    assert (await s.snapshot(K, history=False)).persona_id == ""
    late = await s.next_version(K)
    assert late > early and await s.activate(K, "q", late) == (True, "")
    pending = await s.next_version(K)
    assert await s.clear(K) is True
    assert await s.activate(K, "r", pending) == (False, "")
    assert (await s.snapshot(K, history=False)).persona_id == ""


async def test_a_clear_refuses_the_writes_of_turns_that_read_the_conversation_before_it(
    conversation_store: ConversationStore,
) -> None:
    """A turn reads its snapshot, the user clears the conversation, the turn's answer arrives: its
    append and its summary are refused (the cleared conversation stays cleared); a turn that read
    after the clear writes as usual, and an append without an epoch (an escalation's answer) too."""
    s = conversation_store
    await s.append(K, msgs("q", "a"))
    before = (await s.snapshot(K, history=True)).epoch
    assert await s.clear(K) is True
    assert await s.append(K, msgs("late q", "late a"), epoch=before) is False
    assert await s.save_summary(K, ConversationSummary("old", 2, "x"), epoch=before) is False
    snap = await s.snapshot(K, history=True)
    assert (snap.history, await s.summary(K)) == ((), None)
    assert snap.epoch > before
    assert await s.append(K, msgs("new q", "new a"), epoch=snap.epoch) is True
    assert await s.save_summary(K, ConversationSummary("new", 2, "y"), epoch=snap.epoch) is True
    assert await s.append(K, msgs("creator"), epoch=None) is True
    assert [m.text for m in (await s.snapshot(K, history=True)).history] == ["new q", "new a", "creator"]


async def test_a_clear_counts_for_a_conversation_with_nothing_stored_yet(
    conversation_store: ConversationStore,
) -> None:
    """The first turn of a conversation may be in flight when it is cleared: nothing to forget
    (False), but the turn's append is refused all the same."""
    s = conversation_store
    first = (await s.snapshot(K, history=True)).epoch
    assert await s.clear(K) is False
    assert await s.append(K, msgs("q", "a"), epoch=first) is False
    assert (await s.snapshot(K, history=True)).history == ()


async def test_concurrent_tickets_are_unique(conversation_store: ConversationStore) -> None:
    tickets = await asyncio.gather(*(conversation_store.next_version(K) for _ in range(50)))
    assert len(set(tickets)) == 50


async def test_memory_ttl_with_the_injected_clock(clock: FakeClock) -> None:
    s = MemoryConversationStore(POLICY, clock)
    await s.append(K, msgs("q", "a"))
    await s.record_switch("t1", "u1", rec("c1", "p", 1.0))
    clock.advance(POLICY.ttl_seconds - 1)
    await s.append(K, msgs("q2"))  # a write refreshes the TTL
    clock.advance(POLICY.ttl_seconds - 1)
    assert len((await s.snapshot(K, history=True)).history) == 3
    assert await s.switches("t1", "u1", "", 10) == []  # not written for a whole TTL
    clock.advance(1)
    assert (await s.snapshot(K, history=True)).history == ()


async def test_a_turn_whose_conversation_expired_meanwhile_is_still_stored(clock: FakeClock) -> None:
    """The epoch refuses only what a clear made stale: a conversation that expired during the turn
    (its epoch forgotten with it) takes the turn's messages as a new one."""
    s = MemoryConversationStore(POLICY, clock)
    await s.clear(K)
    epoch = (await s.snapshot(K, history=True)).epoch
    clock.advance(POLICY.ttl_seconds)
    assert await s.append(K, msgs("q", "a"), epoch=epoch) is True
    assert len((await s.snapshot(K, history=True)).history) == 2


async def test_memory_store_is_bounded(clock: FakeClock) -> None:
    s = MemoryConversationStore(POLICY, clock)
    for i in range(POLICY.max_conversations + 10):
        await s.append(ConversationKey("t", "u", f"c{i}"), msgs("q"))
    assert (await s.snapshot(ConversationKey("t", "u", "c0"), history=True)).history == ()
    last = ConversationKey("t", "u", f"c{POLICY.max_conversations + 9}")
    assert len((await s.snapshot(last, history=True)).history) == 1


async def test_redis_keys_carry_the_ttl(redis_url: str) -> None:
    from redis.asyncio import Redis

    from sidecar.sessions.redis import RedisConversationStore

    store = RedisConversationStore.from_url(redis_url, POLICY, prefix="ttlcheck")
    client = Redis.from_url(redis_url)
    try:
        await store.activate(K, "p", await store.next_version(K))
        await store.append(K, msgs("q", "a"))
        await store.record_switch("t1", "u1", rec("c1", "p", 1.0))
        keys = sorted(k.decode() for k in await client.keys("ttlcheck:*"))
        assert keys == ["ttlcheck:{t1|u1}:c:c1", "ttlcheck:{t1|u1}:h:c1", "ttlcheck:{t1|u1}:sw"]
        for key in keys:
            ttl_ms = await client.pttl(key)
            assert 0 < ttl_ms <= POLICY.ttl_seconds * 1000, key
    finally:
        await client.delete(*await client.keys("ttlcheck:*"))
        await client.aclose()
        await store.aclose()


async def test_a_switch_applied_after_its_conversation_vanished_still_expires(redis_url: str) -> None:
    """The ticket's hash expired (or Redis restarted without persistence, or was flushed) before the
    Switch applied: the hash the activation writes anew carries the TTL too."""
    from redis.asyncio import Redis

    from sidecar.sessions.redis import RedisConversationStore

    store = RedisConversationStore.from_url(redis_url, POLICY, prefix="ttlgone")
    client = Redis.from_url(redis_url)
    try:
        version = await store.next_version(K)
        await client.delete(*await client.keys("ttlgone:*"))
        assert await store.activate(K, "p", version) == (True, "")
        ttl_ms = await client.pttl("ttlgone:{t1|u1}:c:c1")
        assert 0 < ttl_ms <= POLICY.ttl_seconds * 1000
    finally:
        await client.delete(*await client.keys("ttlgone:*"))
        await client.aclose()
        await store.aclose()


async def test_redis_unreachable_is_session_store_unavailable() -> None:
    from sidecar.core.errors import SessionStoreUnavailableError
    from sidecar.sessions.redis import RedisConversationStore
    from tests.conftest import free_port

    store = RedisConversationStore.from_url(f"redis://127.0.0.1:{free_port()}/0", POLICY)
    try:
        with pytest.raises(SessionStoreUnavailableError) as info:
            await store.snapshot(K, history=True)
        assert info.value.retry_after == 1.0
    finally:
        await store.aclose()


async def test_the_rolling_summary_is_kept_per_conversation_and_cleared_with_it(
    conversation_store: ConversationStore,
) -> None:
    s = conversation_store
    assert await s.summary(K) is None
    first = ConversationSummary(text="they met ☕", messages=4, covered="abc")
    await s.save_summary(K, first)
    assert await s.summary(K) == first
    assert await s.summary(ConversationKey(K.tenant, K.user, "other")) is None
    second = ConversationSummary(text="they met twice", messages=6, covered="def")
    await s.save_summary(K, second)
    assert await s.summary(K) == second
    assert await s.clear(K) is True  # a summary alone is something to clear
    assert await s.summary(K) is None


async def test_the_cap_never_leaves_a_tool_result_without_its_call(
    conversation_store: ConversationStore,
) -> None:
    """The cap drops the oldest messages a unit at a time: cutting between an assistant's tool call
    and its results left an orphan result at the front, which the resolve step refuses
    (INVALID_ARGUMENT), so the conversation failed on every turn until it expired."""
    s = conversation_store
    asked = Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "f", "{}"), ToolCall("c2", "f", "{}")))
    results = (Message(Role.TOOL, "r1", tool_call_id="c1"), Message(Role.TOOL, "r2", tool_call_id="c2"))
    await s.append(K, (Message(Role.USER, "q1"), asked))
    await s.append(K, (*results, Message(Role.ASSISTANT, "a1")))
    await s.append(K, msgs("q2", "a2", "q3", "a3"))  # 9 messages, cap 6: the cap falls after r1
    history = (await s.snapshot(K, history=True)).history
    assert [m.text for m in history] == ["a1", "q2", "a2", "q3", "a3"]
    assert unanswered(history) == []


async def test_the_memory_store_holds_at_most_max_bytes_of_histories(clock: FakeClock) -> None:
    """The count bounds alone let histories grow without limit: 100,000 conversations of 100
    messages of up to 200,000 characters. A real sidecar went from 75 to 219 MB of RSS after 60
    calls of ten 199,000-character messages, each in a conversation of its own."""
    budget = 4 * 1024 * 1024
    policy = StorePolicy(60, 100, 10, max_conversations=100_000, max_bytes=budget)
    store = MemoryConversationStore(policy, clock)
    big = "lorem ipsum " * 16_000  # 192,000 characters
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(60):
            key = ConversationKey("t", "u", f"c{i}")
            await store.append(key, tuple(Message(Role.USER, f"{i}.{j} {big}") for j in range(4)))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert store.size <= budget
    assert held <= budget * 1.25  # the footprint is the memory Python holds, give or take the bookkeeping
    newest = (await store.snapshot(ConversationKey("t", "u", "c59"), history=True)).history
    assert len(newest) == 4  # the least recently written went, the newest conversation is whole
    assert (await store.snapshot(ConversationKey("t", "u", "c0"), history=True)).history == ()


async def test_a_conversation_larger_than_the_bound_keeps_its_newest_whole_units(clock: FakeClock) -> None:
    store = MemoryConversationStore(StorePolicy(60, 100, 10, max_bytes=1024 * 1024), clock)
    big = "x" * 350_000  # four of them are over the bound, three not
    asked = Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "f", "{}"),))
    await store.append(K, (Message(Role.USER, big), asked, Message(Role.TOOL, big, tool_call_id="c1")))
    await store.append(K, (Message(Role.USER, big), Message(Role.ASSISTANT, big)))
    history = (await store.snapshot(K, history=True)).history
    assert store.size <= 1024 * 1024
    assert [m.role for m in history] == [Role.USER, Role.ASSISTANT]  # the call went with its result
    await store.clear(K)
    assert store.size == 0


@pytest.mark.parametrize("kind", ["memory", "redis"])
async def test_one_conversation_keeps_at_most_max_history_bytes(
    kind: str, clock: FakeClock, request: pytest.FixtureRequest
) -> None:
    """100 messages of 199,000 characters were kept and read back on every call (about 50 ms of the
    event loop each, and 20 MB of Redis per conversation): the oldest whole units go first past
    max_history_bytes, and the newest message is kept whatever its size."""
    import dataclasses
    import uuid

    policy = dataclasses.replace(POLICY, max_history_messages=100, max_history_bytes=10_000)
    store: ConversationStore
    if kind == "memory":
        store = MemoryConversationStore(policy, clock)
    else:
        from sidecar.sessions.redis import RedisConversationStore

        url = request.getfixturevalue("redis_url")
        store = RedisConversationStore.from_url(url, policy, prefix=f"t{uuid.uuid4().hex[:12]}")
    try:
        for i in range(10):
            await store.append(K, msgs(f"q{i} " + "x" * 1500, f"a{i} " + "y" * 1500))
        history = (await store.snapshot(K, history=True)).history
        assert 4 <= len(history) <= 6 and history[-1].text.startswith("a9")  # the newest kept
        await store.append(K, msgs("q-huge " + "z" * 20_000))
        assert [m.text[:6] for m in (await store.snapshot(K, history=True)).history] == ["q-huge"]
    finally:
        await store.aclose()


async def test_switch_histories_count_in_the_memory_stores_byte_bound(clock: FakeClock) -> None:
    """Switch records were bounded by count only: max_switch_history (100) a user for max_conversations
    (100,000) users, each record holding a 256-character command and a 128-character conversation id,
    about 5 GB. A caller choosing user ids and sending Switches that fail (PERSONA_NOT_FOUND is
    recorded too) grew a sidecar past max_memory_bytes, which bounded histories only. They count in
    the same bound, least recently written first, conversations and switch histories alike."""
    budget = 512 * 1024
    policy = StorePolicy(60, 100, 100, max_conversations=100_000, max_bytes=budget)
    store = MemoryConversationStore(policy, clock)
    await store.append(K, msgs("an early question", "its answer"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for u in range(300):
            for i in range(20):
                record = SwitchRecord(
                    "c" * 120 + str(i), "", "", "x" * 250 + str(i), False, "PERSONA_NOT_FOUND", 1.0
                )
                await store.record_switch("t", f"user-{u}", record)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert store.size <= budget
    assert held <= budget * 1.25
    assert len(await store.switches("t", "user-299", "", 100)) == 20  # the newest user's are all there
    assert await store.switches("t", "user-0", "", 100) == []  # the least recently written went first
    assert (await store.snapshot(K, history=True)).history == ()  # older than every switch record
    await store.append(K, msgs("q", "a"))  # a history written now makes room by the oldest records
    assert store.size <= budget and len((await store.snapshot(K, history=True)).history) == 2


async def test_rolling_summaries_count_in_the_memory_stores_byte_bound(clock: FakeClock) -> None:
    """A conversation's rolling summary (up to summary.max_tokens, 8,192 tokens) was not counted:
    100,000 conversations of a summary each held gigabytes past max_memory_bytes."""
    budget = 1024 * 1024
    store = MemoryConversationStore(
        StorePolicy(60, 100, 10, max_conversations=100_000, max_bytes=budget), clock
    )
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            summary = ConversationSummary(f"{i} " + "s" * 8000, 10, "digest")
            await store.save_summary(ConversationKey("t", "u", f"c{i}"), summary)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert store.size <= budget
    assert held <= budget * 1.25
    assert await store.summary(ConversationKey("t", "u", "c999")) is not None  # the newest are kept
    await store.clear(ConversationKey("t", "u", "c999"))
    assert await store.summary(ConversationKey("t", "u", "c999")) is None


async def test_a_switch_ticketed_before_its_conversation_was_forgotten_loses_to_a_later_one(
    clock: FakeClock,
) -> None:
    """The memory store's data loss: the conversation expired (or was evicted) between Switch A's
    ticket and its activation; Switch B arrived after and applied. Per-conversation tickets restarted
    at 1, below A's, so A was applied over B although B came last."""
    s = MemoryConversationStore(POLICY, clock)
    await s.next_version(K)
    early = await s.next_version(K)  # Switch A, waiting its turn
    clock.advance(POLICY.ttl_seconds)  # the conversation is forgotten
    late = await s.next_version(K)  # Switch B, arriving after A
    assert late > early
    assert await s.activate(K, "b", late) == (True, "")
    assert await s.activate(K, "a", early) == (False, "b")
    assert (await s.snapshot(K, history=False)).persona_id == "b"


async def test_a_clear_after_the_conversation_was_forgotten_still_wins_over_what_was_in_flight(
    clock: FakeClock,
) -> None:
    """A turn read the conversation (cleared once before) and a Switch took its ticket; the
    conversation expired; the user cleared it. The count of clears and the tickets restarted with
    the conversation, so the turn's exchange was appended and the Switch applied after the clear."""
    s = MemoryConversationStore(POLICY, clock)
    await s.append(K, msgs("q0", "a0"))
    await s.clear(K)
    await s.append(K, msgs("q1", "a1"))
    epoch = (await s.snapshot(K, history=True)).epoch  # a turn starts
    version = await s.next_version(K)  # a Switch takes its ticket
    clock.advance(POLICY.ttl_seconds)
    assert await s.clear(K) is False
    assert await s.append(K, msgs("q2", "a2"), epoch=epoch) is False
    assert await s.activate(K, "p", version) == (False, "")
    snap = await s.snapshot(K, history=True)
    assert (snap.persona_id, snap.history) == ("", ())


SMALL = StorePolicy(ttl_seconds=60.0, max_history_messages=6, max_switch_history=50, max_conversations=20)


async def real_conversations(s: MemoryConversationStore, n: int) -> list[ConversationKey]:
    keys = [ConversationKey("t1", f"user{i}", "real") for i in range(n)]
    for k in keys:
        await s.append(k, msgs("q", "a"))
    return keys


async def test_clears_and_tickets_of_made_up_conversations_do_not_evict_real_ones(clock: FakeClock) -> None:
    """A caller naming random conversation ids in ClearConversation (or Switches that are never
    applied) filled max_conversations with empty entries and pushed out other users' conversations."""
    s = MemoryConversationStore(SMALL, clock)
    real = await real_conversations(s, SMALL.max_conversations)
    for i in range(SMALL.max_conversations * 5):
        made_up = ConversationKey("t1", "mallory", f"random{i}")
        assert await s.clear(made_up) is False
        await s.next_version(made_up)
    for k in real:
        assert len((await s.snapshot(k, history=True)).history) == 2, k
    assert s.cleared <= max(1, SMALL.max_conversations // 10)  # the clears' marks are bounded apart


async def test_a_clear_still_wins_over_a_first_turn_when_its_mark_was_pushed_out(clock: FakeClock) -> None:
    """The marks of clears of conversations with nothing stored are bounded: once a flood of clears
    pushed this one's out, the turn and the Switch that were in flight before it are still refused
    (the store's floor rose to the mark it dropped); a turn that starts after the flood is stored."""
    s = MemoryConversationStore(SMALL, clock)
    epoch = (await s.snapshot(K, history=True)).epoch  # the conversation's first turn starts
    version = await s.next_version(K)  # and a Switch takes its ticket
    assert await s.clear(K) is False
    for i in range(SMALL.max_conversations * 5):
        await s.clear(ConversationKey("t1", "mallory", f"random{i}"))
    assert await s.append(K, msgs("q", "a"), epoch=epoch) is False
    assert await s.save_summary(K, ConversationSummary("s", 2, "x"), epoch=epoch) is False
    assert await s.activate(K, "p", version) == (False, "")
    snap = await s.snapshot(K, history=True)
    assert (snap.persona_id, snap.history) == ("", ())
    assert await s.append(K, msgs("q2", "a2"), epoch=snap.epoch) is True
    assert await s.activate(K, "p", await s.next_version(K)) == (True, "")


async def test_a_cleared_conversation_keeps_no_entry_of_its_own(clock: FakeClock) -> None:
    """Clearing a real conversation frees its place: what is left is a bounded mark, and the clear
    still wins over its turn in flight."""
    s = MemoryConversationStore(SMALL, clock)
    real = await real_conversations(s, SMALL.max_conversations)
    epoch = (await s.snapshot(real[0], history=True)).epoch
    assert await s.clear(real[0]) is True
    newcomer = ConversationKey("t1", "newcomer", "c")
    await s.append(newcomer, msgs("q", "a"))
    for k in real[1:]:  # the newcomer took the cleared conversation's place, not another's
        assert len((await s.snapshot(k, history=True)).history) == 2, k
    assert await s.append(real[0], msgs("late q", "late a"), epoch=epoch) is False
