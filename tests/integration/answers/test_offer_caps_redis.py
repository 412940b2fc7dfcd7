"""The open-offer counts in Redis (sorted sets scored by expiry) against the agent's policy changing
between offers: a reload, or two sidecars of a rolling config change on one Redis."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
import redis.asyncio as aioredis

from sidecar.answers.model import Escalation, State
from sidecar.answers.redis_store import RedisAnswerStore
from sidecar.answers.store import OfferCaps
from sidecar.stores.redis import RedisEndpoint, RedisOps

pytestmark = pytest.mark.integration
NOW = 1_763_700_000.0


def offer(user: str, expiry_seconds: float) -> Escalation:
    return Escalation(
        f"esc_{user}", "acme", "maya", user, "c1", "why?", "public", State.OFFERED, NOW, NOW + expiry_seconds
    )  # fmt: skip


async def test_a_shorter_offer_expiry_does_not_cut_the_count_of_the_longer_offers(redis_url: str) -> None:
    """ann's offer is open for a day; after a reload to 5-second offers bob's is made: the agent's
    count must still hold ann's offer for its day, not vanish with bob's (the cap would then admit
    offers beyond it while ann's is open)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = RedisAnswerStore(RedisOps(RedisEndpoint(redis_url, timeout=5.0)), prefix=prefix)
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        caps = OfferCaps(per_user=3, per_tenant=2)
        assert await store.offer(offer("ann", 86_400), caps) is True
        assert await store.offer(offer("bob", 5), caps) is True
        counts = [k async for k in client.scan_iter(f"{prefix}:ans:*:oo:maya")]
        assert len(counts) == 1
        assert await client.zcard(counts[0]) == 2
        assert await client.ttl(counts[0]) > 86_400  # lives as long as the longest open offer in it
        again = await store.offer(replace(offer("cat", 5), id="esc_cat_2"), caps)
        assert again is False  # the tenant's 2 are open
    finally:
        await store.aclose()
        await client.aclose()
