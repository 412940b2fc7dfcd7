"""The answer stores, one suite on the embedded store (SQLite file + in-memory vectors) and on a real
Redis: isolation of canonical answers, atomic acceptance with exact limits under concurrency (and, on
Redis, across two stores standing for two sidecars), compare-and-set transitions, path counts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sidecar.answers.errors import EmbeddingModelError
from sidecar.answers.model import CanonicalAnswer, Escalation, State
from sidecar.answers.redis_store import RedisAnswerStore
from sidecar.answers.sqlite_store import SqliteAnswerStore
from sidecar.answers.store import Accepted, AnswerStore, Limits, OfferCaps
from sidecar.stores.redis import RedisEndpoint, RedisOps

pytestmark = pytest.mark.integration
NOW = 1_763_700_000.0
LIMITS = Limits("2026-12-02", "2026-W49", per_day=7, per_week=10)


def vec(*values: float) -> np.ndarray[Any, Any]:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def canonical(
    answer_id: str, tenant: str = "acme", agent: str = "maya", layer: str = "public"
) -> CanonicalAnswer:
    return CanonicalAnswer(answer_id, tenant, agent, layer, f"q {answer_id}", f"a {answer_id}", NOW)


def offer(escalation_id: str, tenant: str = "acme", agent: str = "maya", at: float = NOW) -> Escalation:
    return Escalation(
        escalation_id, tenant, agent, "ann", "c1", "why?", "public", State.OFFERED, at, at + 3600,
        context=(("user", "hi"), ("assistant", "hello")),
    )  # fmt: skip


def queued(e: Escalation) -> Escalation:
    return replace(e, state=State.QUEUED, queued_at=NOW, expires_at=NOW + 86_400)


@pytest.fixture(params=["sqlite", "redis"])
async def make(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Callable[[], AnswerStore]]:
    """make() -> a store; on Redis every store made shares one prefix (sidecars sharing a Redis), on
    SQLite one store is made (one sidecar per file)."""
    made: list[AnswerStore] = []
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def build() -> AnswerStore:
        s: AnswerStore
        if request.param == "sqlite":
            if made:
                return made[0]
            s = SqliteAnswerStore(str(tmp_path / "answers.db"))
        else:
            url = request.getfixturevalue("redis_url")
            s = RedisAnswerStore(RedisOps(RedisEndpoint(url, timeout=5.0)), prefix=prefix)
        made.append(s)
        return s

    yield build
    for s in made:
        await s.aclose()


async def test_the_nearest_canonical_answer_of_the_agent_and_its_layers(
    make: Callable[[], AnswerStore],
) -> None:
    store = make()
    await store.add_canonical(canonical("c-x"), vec(1, 0, 0))
    await store.add_canonical(canonical("c-y", layer="friends"), vec(0, 1, 0))
    found = await store.nearest("acme", "maya", ("public",), vec(0.1, 1, 0))
    assert found is not None and found[0].id == "c-x"  # the friends answer is not visible to the public
    found = await store.nearest("acme", "maya", ("public", "friends"), vec(0.1, 1, 0))
    assert found is not None and found[0].id == "c-y"
    assert found[1] == pytest.approx(float(vec(0.1, 1, 0) @ vec(0, 1, 0)), abs=1e-5)


async def test_answers_embedded_by_a_model_of_another_size_are_left_out(
    make: Callable[[], AnswerStore],
) -> None:
    """The embedding model changed (a restart with another embedding route on a kept store): the
    seeds are embedded again, a creator's older answer keeps the old model's vector. A search
    compares only vectors of the question's size, and when the agent has none of that size it says
    so (EmbeddingModelError: the decision degrades to the model's answer). Mixed in one matrix, or
    all of another size, they failed every search of the agent with a ValueError (INTERNAL)."""
    store = make()
    await store.add_canonical(canonical("c-old"), vec(1, 0, 0, 0))
    await store.add_canonical(canonical("c-new"), vec(0, 1, 0))
    found = await store.nearest("acme", "maya", ("public",), vec(0, 1, 0))
    assert found is not None and found[0].id == "c-new"
    found = await store.nearest("acme", "maya", ("public",), vec(1, 0, 0, 0))
    assert found is not None and found[0].id == "c-old"
    with pytest.raises(EmbeddingModelError):  # none to compare with: not "nothing like it" (novel)
        await store.nearest("acme", "maya", ("public",), vec(1, 0))
    assert await store.nearest("acme", "maya", ("friends",), vec(1, 0)) is None  # none at all


async def test_never_across_agents_or_tenants(make: Callable[[], AnswerStore]) -> None:
    store = make()
    await store.add_canonical(canonical("c-acme"), vec(1, 0))
    assert await store.nearest("globex", "maya", ("public",), vec(1, 0)) is None
    assert await store.nearest("acme", "other", ("public",), vec(1, 0)) is None
    await store.reused("globex", "maya", "c-acme")  # another tenant's id: counts nothing
    await store.reused("acme", "maya", "c-acme")
    [only] = await store.canonical("acme", "maya")
    assert only.reuse_count == 1 and await store.canonical("globex", "maya") == []


async def test_adding_the_same_id_twice_keeps_one(make: Callable[[], AnswerStore]) -> None:
    store = make()
    await store.add_canonical(canonical("c-1"), vec(1, 0))
    await store.nearest("acme", "maya", ("public",), vec(1, 0))  # vectors loaded in memory
    await store.add_canonical(canonical("c-1"), vec(1, 0))
    assert [c.id for c in await store.canonical("acme", "maya")] == ["c-1"]


async def test_escalations_round_trip_and_are_tenant_scoped(make: Callable[[], AnswerStore]) -> None:
    store = make()
    e = offer("esc_aaaaaaaaaa")
    await store.put(e)
    assert await store.get("acme", e.id) == e
    assert await store.get("globex", e.id) is None
    assert await store.escalations("acme", "maya") == [e]
    assert await store.escalations("acme", "other") == []


async def test_replace_is_compare_and_set(make: Callable[[], AnswerStore]) -> None:
    store = make()
    e = offer("esc_bbbbbbbbbb")
    await store.put(e)
    declined = replace(e, state=State.DECLINED)
    assert not await store.replace(State.QUEUED, declined)  # it is OFFERED
    assert await store.get("acme", e.id) == e
    expired = e.expired(NOW + 4000)
    assert await store.replace(State.OFFERED, expired)
    assert not await store.replace(State.OFFERED, expired)
    assert (await store.get("acme", e.id)) == expired


async def test_accept_checks_the_state_and_counts_once(make: Callable[[], AnswerStore]) -> None:
    store = make()
    e = offer("esc_cccccccccc")
    await store.put(e)
    assert await store.accept(State.OFFERED, queued(e), LIMITS) is Accepted.OK
    assert await store.accept(State.OFFERED, queued(e), LIMITS) is Accepted.WRONG_STATE
    assert await store.accept(State.OFFERED, queued(offer("esc_nothere00")), LIMITS) is Accepted.NOT_FOUND
    assert await store.used("acme", "maya", LIMITS) == (1, 1)
    assert (await store.get("acme", e.id)) == queued(e)


async def test_limits_are_exact_under_concurrency(make: Callable[[], AnswerStore]) -> None:
    """40 offers accepted at once through two stores (two sidecars on Redis): exactly the day's 7."""
    stores = [make(), make()]
    offers = [offer(f"esc_{i:010d}") for i in range(40)]
    for e in offers:
        await stores[0].put(e)
    results = await asyncio.gather(
        *(stores[i % 2].accept(State.OFFERED, queued(e), LIMITS) for i, e in enumerate(offers))
    )
    assert results.count(Accepted.OK) == 7
    assert results.count(Accepted.DAY_LIMIT) == 33
    assert await stores[1].used("acme", "maya", LIMITS) == (7, 7)
    states = [e.state for e in await stores[0].escalations("acme", "maya")]
    assert states.count(State.QUEUED) == 7 and states.count(State.OFFERED) == 33


async def test_the_week_limit_spans_days(make: Callable[[], AnswerStore]) -> None:
    store = make()
    for i, day in enumerate(("2026-11-30", "2026-12-01")):
        limits = replace(LIMITS, day=day)
        for j in range(7):
            e = offer(f"esc_d{i}{j:08d}")
            await store.put(e)
            expect = Accepted.OK if i * 7 + j < 10 else Accepted.WEEK_LIMIT
            assert await store.accept(State.OFFERED, queued(e), limits) is expect
    assert await store.used("acme", "maya", replace(LIMITS, day="2026-12-01")) == (3, 10)


async def test_path_counts_and_users(make: Callable[[], AnswerStore]) -> None:
    store = make()
    for path, user in (("A", "ann"), ("A", "bob"), ("C", "ann"), ("F", "")):
        await store.count_path("acme", "maya", path, user)
    counts = await store.path_counts("acme", "maya")
    assert counts.paths == {"A": 2, "C": 1, "F": 1} and counts.users == 2
    assert (await store.path_counts("globex", "maya")).paths == {}


async def test_an_answer_added_while_the_agent_loads_is_found(make: Callable[[], AnswerStore]) -> None:
    store = make()
    await store.add_canonical(canonical("c-old"), vec(1, 0, 0))
    await asyncio.gather(
        store.nearest("acme", "maya", ("public",), vec(1, 0, 0)),
        store.add_canonical(canonical("c-new"), vec(0, 1, 0)),
        store.nearest("acme", "maya", ("public",), vec(1, 0, 0)),
    )
    found = await store.nearest("acme", "maya", ("public",), vec(0, 1, 0))
    assert found is not None and found[0].id == "c-new" and found[1] == pytest.approx(1.0, abs=1e-5)
    assert sorted(c.id for c in await store.canonical("acme", "maya")) == ["c-new", "c-old"]


def offer_of(user: str, n: int, tenant: str = "acme", at: float = NOW) -> Escalation:
    return replace(offer(f"esc_{tenant}_{user}_{n}", tenant=tenant, at=at), user=user)


async def test_open_offers_are_capped_per_user_and_per_tenant_atomically(
    make: Callable[[], AnswerStore],
) -> None:
    """Offers cost the user nothing, so the store holds at most `caps` open ones (OFFERED, not due)
    of an agent per user and per tenant: the count and the write are one step, exact under
    concurrency and across sidecars; an accepted offer or a lapsed one is no longer open."""
    store = make()
    caps = OfferCaps(per_user=2, per_tenant=3)
    assert [await store.offer(offer_of("ann", i), caps) for i in range(3)] == [True, True, False]
    assert await store.get("acme", "esc_acme_ann_2") is None  # refused: nothing stored
    assert await store.offer(offer_of("bob", 0), caps) is True
    assert await store.offer(offer_of("cat", 0), caps) is False  # the tenant's 3 are held
    assert await store.offer(offer_of("cat", 0, tenant="other"), caps) is True  # per tenant
    accepted = await store.accept(State.OFFERED, queued(offer_of("ann", 0)), LIMITS)
    assert accepted is Accepted.OK  # no longer an open offer: room for one more
    assert await store.offer(offer_of("ann", 3, at=NOW + 1), caps) is True
    lapsed = NOW + 3600  # every offer made at NOW is due (offer_expires_at = NOW + 3600)
    other = make()  # on Redis a second store on the same keys: another sidecar
    results = await asyncio.gather(
        *((store, other)[i % 2].offer(offer_of(f"u{i}", 0, at=lapsed), caps) for i in range(12))
    )
    assert sum(results) == 2  # ann's offer made at NOW + 1 is still open: 3 in all
    held = [e for e in await store.escalations("acme", "maya") if e.state is State.OFFERED]
    assert len(held) == 5  # ann 1, bob 0 (lapsed, stored until the sweep expires them), ann 3, two u*
