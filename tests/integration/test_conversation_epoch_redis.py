"""A clear wins over the turns in flight (the conversation's epoch) on two sidecars sharing one Redis,
also when that Redis lost its data (restarted without persistence) in the middle of a turn."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from sidecar.core.types import Message, Role
from sidecar.sessions.redis import RedisConversationStore
from sidecar.sessions.store import ConversationKey, StorePolicy

pytestmark = pytest.mark.integration
POLICY = StorePolicy(ttl_seconds=3600, max_history_messages=50, max_switch_history=10)


async def test_a_clear_after_redis_lost_its_data_still_wins_over_the_turn_in_flight(redis_url: str) -> None:
    """Sidecar A reads the conversation (cleared once before) for a turn; Redis loses its data; the
    user clears the conversation through sidecar B; A's turn ends and appends its exchange. The clear
    came after A's snapshot, so the exchange must not come back into the cleared conversation."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a = RedisConversationStore.from_url(redis_url, POLICY, prefix=prefix)
    b = RedisConversationStore.from_url(redis_url, POLICY, prefix=prefix)
    client = aioredis.from_url(redis_url, decode_responses=True)
    key = ConversationKey("acme", "ann", "c1")
    try:
        await a.append(key, (Message(Role.USER, "my card number is 4111"),))
        assert await b.clear(key) is True  # the user cleared it once already
        assert await a.append(key, (Message(Role.USER, "hello again"),))
        snap = await a.snapshot(key, history=True)  # A's turn starts
        assert [m.text for m in snap.history] == ["hello again"]
        lost = [k async for k in client.scan_iter(f"{prefix}:*")]
        assert lost and await client.delete(*lost) == len(lost)  # Redis restarted: its data is gone
        await b.clear(key)  # the user clears through B while A's turn is in flight
        answer = Message(Role.ASSISTANT, "an answer to the cleared history")
        kept = await a.append(key, (answer,), epoch=snap.epoch)
        assert kept is False
        assert (await b.snapshot(key, history=True)).history == ()
    finally:
        for closing in (a, b):
            await closing.aclose()
        await client.aclose()


async def test_a_switch_ticketed_before_redis_lost_its_data_loses_to_a_later_one(redis_url: str) -> None:
    """Switch A took its ticket on sidecar A; Redis lost its data; Switch B arrived on sidecar B and
    applied. Tickets restarted at 1, below A's, so A was applied over B although B came last."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a = RedisConversationStore.from_url(redis_url, POLICY, prefix=prefix)
    b = RedisConversationStore.from_url(redis_url, POLICY, prefix=prefix)
    client = aioredis.from_url(redis_url, decode_responses=True)
    key = ConversationKey("acme", "ann", "c1")
    try:
        await a.next_version(key)
        early = await a.next_version(key)  # Switch A, waiting its turn
        lost = [k async for k in client.scan_iter(f"{prefix}:*")]
        assert lost and await client.delete(*lost) == len(lost)
        late = await b.next_version(key)  # Switch B, arriving after A
        assert late > early
        assert await b.activate(key, "b", late) == (True, "")
        assert await a.activate(key, "a", early) == (False, "b")
        assert (await b.snapshot(key, history=False)).persona_id == "b"
    finally:
        for closing in (a, b):
            await closing.aclose()
        await client.aclose()


async def test_a_clear_after_redis_lost_its_data_supersedes_a_switch_ticketed_before(redis_url: str) -> None:
    """Switch A took its ticket; Redis lost its data; the user cleared the conversation through B.
    The clear raised the version to the last ticket handed out, 0 after the loss, so A's persona was
    applied into the cleared conversation."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a = RedisConversationStore.from_url(redis_url, POLICY, prefix=prefix)
    b = RedisConversationStore.from_url(redis_url, POLICY, prefix=prefix)
    client = aioredis.from_url(redis_url, decode_responses=True)
    key = ConversationKey("acme", "ann", "c1")
    try:
        version = await a.next_version(key)
        lost = [k async for k in client.scan_iter(f"{prefix}:*")]
        assert lost and await client.delete(*lost) == len(lost)
        assert await b.clear(key) is False
        assert await a.activate(key, "a", version) == (False, "")
        assert (await b.snapshot(key, history=False)).persona_id == ""
    finally:
        for closing in (a, b):
            await closing.aclose()
        await client.aclose()


async def test_switch_tickets_are_exact_integers_across_sidecars(redis_url: str) -> None:
    """Tickets in microseconds are beyond what Lua's default number format keeps (14 digits): each
    ticket is one more than the one before, also taken concurrently on two sidecars."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    a = RedisConversationStore.from_url(redis_url, POLICY, prefix=prefix)
    b = RedisConversationStore.from_url(redis_url, POLICY, prefix=prefix)
    key = ConversationKey("acme", "ann", "c1")
    try:
        tickets = await asyncio.gather(*(s.next_version(key) for _ in range(20) for s in (a, b)))
        assert len(set(tickets)) == 40
        assert await a.activate(key, "p", max(tickets)) == (True, "")
        assert (await b.snapshot(key, history=False)).version == max(tickets)
        assert await b.next_version(key) > max(tickets)
    finally:
        for closing in (a, b):
            await closing.aclose()


async def test_a_clear_run_again_by_the_clients_retry_answers_as_it_did(redis_url: str) -> None:
    """The client retries a command whose connection broke (retries=1), also one that had run and
    whose reply was lost: the clear's script ran again, found nothing left and answered False, so
    ClearConversation said `cleared: false` for a conversation it had just cleared."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = RedisConversationStore.from_url(redis_url, POLICY, prefix=prefix)
    key = ConversationKey("acme", "ann", "c1")
    try:
        await store.append(key, (Message(Role.USER, "hello"),))
        sent: list[Any] = []
        script = store._clear

        async def lost_reply(**kwargs: Any) -> Any:
            sent.append(kwargs)
            await script(**kwargs)  # it ran; its reply was lost and the client sent it again
            return await script(**kwargs)

        store._clear = lost_reply  # type: ignore[assignment]
        assert await store.clear(key) is True
        assert len(sent) == 1
    finally:
        await store.aclose()
