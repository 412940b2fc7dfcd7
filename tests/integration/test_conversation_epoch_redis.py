"""A clear wins over the turns in flight (the conversation's epoch) on two sidecars sharing one Redis,
also when that Redis lost its data (restarted without persistence) in the middle of a turn."""

from __future__ import annotations

import uuid

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
