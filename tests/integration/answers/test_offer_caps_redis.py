"""The open-offer counts in Redis (sorted sets scored by expiry) against the agent's policy changing
between offers: a reload, or two sidecars of a rolling config change on one Redis."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis

from sidecar.answers.model import Escalation, State
from sidecar.answers.redis_store import RedisAnswerStore
from sidecar.answers.store import OfferCaps
from sidecar.stores.errors import StoreError
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


async def test_an_offer_that_timed_out_holds_no_place_in_the_caps() -> None:
    """Redis stalled (a fork, SIGSTOP) while an offer was being stored: the call timed out and the
    user was never given the offer (the decision went on without it), but the script ran when Redis
    woke up, so the offer held one of the user's `max_open_offers_per_user` places for its whole
    expiry: the user's next novel question was refused offer_limit."""
    from tests.support.redis import stall, start_redis

    with start_redis("--enable-debug-command", "yes") as port:
        url = f"redis://127.0.0.1:{port}/0"
        store = RedisAnswerStore(RedisOps(RedisEndpoint(url, timeout=0.3)), prefix="stall")
        try:
            caps = OfferCaps(per_user=1, per_tenant=10)
            assert await store.offer(offer("warm", 600), caps) is True  # a pooled connection
            script, sleepers = store._offer, []

            async def stalled(**kwargs: Any) -> Any:  # Redis stalls just as the offer's script is sent
                sleepers.append(await stall(url, 1.0))
                return await script(**kwargs)

            store._offer = stalled
            with pytest.raises(StoreError):
                await store.offer(offer("ann", 600), caps)  # times out; queued, it runs on wake-up
            store._offer = script
            await sleepers[0]
            await asyncio.wait_for(store._abandoned.idle(), 5)  # abandoned once Redis answers
            again = await store.offer(replace(offer("ann", 600), id="esc_ann_2"), caps)
            assert again is True
        finally:
            await store.aclose()


async def test_the_offer_script_run_again_answers_as_the_first_run(redis_url: str) -> None:
    """The client retries a command whose connection broke (retries=1), also one that had run and
    whose reply was lost: the second run counted the offer's own place and refused it (offer_limit
    to the user) while the offer stayed stored, holding the place."""
    store = RedisAnswerStore(
        RedisOps(RedisEndpoint(redis_url, timeout=5.0)), prefix=f"t{uuid.uuid4().hex[:10]}"
    )
    try:
        caps = OfferCaps(per_user=1, per_tenant=10)
        made = offer("ann", 600)
        assert await store.offer(made, caps) is True
        assert await store.offer(made, caps) is True  # the same script again: the same answer
        assert await store.offer(replace(offer("ann", 600), id="esc_ann_2"), caps) is False
    finally:
        await store.aclose()
