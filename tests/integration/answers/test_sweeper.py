"""The expiry sweeper on both answer stores (the SQLite file and a real Redis), on the FakeClock: due
escalations of every tenant are expired at the sweep and counted once, the backlog is read at the
sweep, a batch is bounded, an accepted offer is not expired at its offer's deadline; a creator's
answer racing the sweep either wins or loses, never both; two sweepers on one Redis expire each
escalation exactly once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar.answers.model import Escalation, State
from sidecar.answers.service import AnswerObserver, AnswerService
from sidecar.answers.sqlite_store import SqliteAnswerStore
from sidecar.answers.store import Accepted, AnswerStore, Limits
from sidecar.answers.sweeper import ExpirySweeper
from sidecar.config.answers import AgentPolicy, AnswersPolicy
from sidecar.core.clock import FakeClock
from sidecar.stores.errors import StoreUnavailableError
from tests.integration.answers.test_store import LIMITS, NOW, make, offer, queued  # noqa: F401
from tests.integration.helpers import rich

pytestmark = pytest.mark.integration
INTERVAL = 30.0
NO_LIMITS = Limits("2026-12-02", "2026-W49", per_day=None, per_week=None)


@dataclass
class Seen:
    """What a sidecar's observer was told: transitions and the last backlog per agent."""

    moved: list[Escalation] = field(default_factory=list)
    backlog: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    swept: asyncio.Event = field(default_factory=asyncio.Event)

    def observer(self) -> AnswerObserver:
        def on_backlog(agent: str, n: int) -> None:
            self.backlog[agent] = n
            self.swept.set()

        def on_error(op: str) -> None:
            self.errors.append(op)
            self.swept.set()

        return AnswerObserver(
            on_transition=lambda _agent, e: self.moved.append(e), on_backlog=on_backlog, on_error=on_error
        )

    def expired(self) -> list[str]:
        return sorted(e.id for e in self.moved if e.state is State.EXPIRED)


async def _no_embedding(*_: Any) -> Any:
    raise AssertionError("the sweep never embeds")


def sweeper(store: AnswerStore, clock: FakeClock, seen: Seen, batch: int = 100) -> ExpirySweeper:
    policy = AnswersPolicy(agents={"maya": AgentPolicy(), "leo": AgentPolicy()})
    service = AnswerService(
        policy, store, embed=_no_embedding, embedding_route="local", model="local", clock=clock, names={},
        observer=seen.observer(),
    )  # fmt: skip
    return ExpirySweeper(service, interval=INTERVAL, batch=batch)


def at(clock: FakeClock, wall: float) -> None:
    """Advance the clock to wall time `wall`."""
    clock.advance(wall - clock.wall())


async def sweep_at(clock: FakeClock, seen: Seen, wall: float) -> None:
    """Move the clock to wall time `wall` (firing the sweeper's timer once) and wait, on real I/O and
    bounded, until that sweep has finished."""
    for _ in range(10_000):  # the sweeper is between two sweeps until it sleeps on the clock again
        if clock.pending():
            break
        await asyncio.sleep(0.001)
    assert clock.pending() == 1, "the sweeper is not waiting on the clock"
    seen.swept.clear()
    at(clock, wall)
    await asyncio.wait_for(seen.swept.wait(), timeout=10)


async def test_the_sweep_expires_what_is_due_across_tenants_without_a_read(
    make: Callable[[], AnswerStore],  # noqa: F811
) -> None:
    store, clock, seen = make(), FakeClock(), Seen()
    await store.put(offer("esc_due_acme_1"))  # offer deadline NOW + 3600
    await store.put(offer("esc_due_globex", tenant="globex", agent="leo"))
    await store.put(offer("esc_later_acme", at=NOW + 5000))
    waiting = offer("esc_queued_acme")
    await store.put(waiting)
    assert await store.accept(State.OFFERED, queued(waiting), LIMITS) is Accepted.OK  # due NOW + 86400
    s = sweeper(store, clock, seen)
    s.start()
    try:
        await sweep_at(clock, seen, NOW + 3600)
        assert seen.expired() == ["esc_due_acme_1", "esc_due_globex"]
        assert [e.queued_at for e in seen.moved] == [0.0, 0.0]  # offers: counted as expired_offer
        assert seen.backlog == {"leo": 0, "maya": 1}
        assert await store.get("globex", "esc_due_globex") is None  # never accepted: deleted as it expires
        await sweep_at(clock, seen, NOW + 3600 + INTERVAL)  # nothing more is due: nothing counted twice
        assert len(seen.moved) == 2
        await sweep_at(
            clock, seen, NOW + 86_400
        )  # the accepted offer was not expired at the offer's deadline
        assert seen.expired() == ["esc_due_acme_1", "esc_due_globex", "esc_later_acme", "esc_queued_acme"]
        assert seen.backlog == {"leo": 0, "maya": 0}
        assert (await store.get("acme", "esc_queued_acme")).state is State.EXPIRED  # type: ignore[union-attr]
    finally:
        await s.stop()


class FailingOnce:
    """The store, except that its first `due` fails as a store that is down does."""

    def __init__(self, store: AnswerStore) -> None:
        self.store, self.failed = store, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def due(self, now: float, limit: int) -> list[Escalation]:
        if not self.failed:
            self.failed = True
            raise StoreUnavailableError("Redis: connection refused")
        return await self.store.due(now, limit)


async def test_a_failing_sweep_is_counted_and_the_next_one_expires(
    make: Callable[[], AnswerStore],  # noqa: F811
) -> None:
    store, clock, seen = make(), FakeClock(), Seen()
    await store.put(offer("esc_failing_01"))
    s = sweeper(FailingOnce(store), clock, seen)  # type: ignore[arg-type]
    s.start()
    try:
        await sweep_at(clock, seen, NOW + 3600)
        assert seen.errors == ["sweep"] and seen.moved == []
        await sweep_at(clock, seen, NOW + 3600 + INTERVAL)
        assert seen.expired() == ["esc_failing_01"] and s.rounds == 2
    finally:
        await s.stop()


async def test_a_sweep_is_bounded_by_its_batch(make: Callable[[], AnswerStore]) -> None:  # noqa: F811
    store, clock, seen = make(), FakeClock(), Seen()
    for i in range(5):
        await store.put(offer(f"esc_batch_{i:05d}", at=NOW + i))
    s = sweeper(store, clock, seen, batch=2)
    at(clock, NOW + 4000)
    assert [await s.sweep() for _ in range(4)] == [2, 2, 1, 0]
    assert seen.expired() == [f"esc_batch_{i:05d}" for i in range(5)]


async def test_an_answer_racing_the_sweep_wins_or_loses_never_both(
    make: Callable[[], AnswerStore],  # noqa: F811
) -> None:
    store, clock, seen = make(), FakeClock(), Seen()
    ids = [f"esc_race_{i:05d}" for i in range(20)]
    for i in ids:
        await store.put(offer(i))
        assert await store.accept(State.OFFERED, queued(offer(i)), NO_LIMITS) is Accepted.OK
    s = sweeper(store, clock, seen)
    at(clock, NOW + 86_400)
    answers = [
        store.replace(State.QUEUED, replace(queued(offer(i)), state=State.ANSWERED, closed_at=NOW + 86_400))
        for i in ids
    ]
    results = await asyncio.gather(s.sweep(), *answers)
    swept, answered = results[0], [i for i, won in zip(ids, results[1:], strict=True) if won]
    assert swept + len(answered) == len(ids) and set(seen.expired()).isdisjoint(answered)
    for i in ids:
        final = await store.get("acme", i)
        assert final is not None
        assert final.state is (State.ANSWERED if i in answered else State.EXPIRED)
    assert seen.backlog["maya"] == 0


async def test_two_sweepers_on_one_redis_expire_each_escalation_once(redis_url: str) -> None:
    import uuid

    from sidecar.answers.redis_store import RedisAnswerStore
    from sidecar.stores.redis import RedisEndpoint, RedisOps

    prefix = f"t{uuid.uuid4().hex[:10]}"
    stores = [RedisAnswerStore(RedisOps(RedisEndpoint(redis_url, timeout=5.0)), prefix=prefix) for _ in "ab"]
    clock, seen = FakeClock(), [Seen(), Seen()]
    try:
        ids = [f"esc_twice_{i:05d}" for i in range(60)]
        for n, i in enumerate(ids):
            await stores[n % 2].put(offer(i, tenant=f"tenant-{n % 3}"))
        sweepers = [sweeper(st, clock, sn, batch=25) for st, sn in zip(stores, seen, strict=True)]
        at(clock, NOW + 4000)
        for _ in range(4):
            await asyncio.gather(*(s.sweep() for s in sweepers))
        a, b = seen[0].expired(), seen[1].expired()
        assert set(a).isdisjoint(b) and sorted(a + b) == ids, (len(a), len(b))
    finally:
        for st in stores:
            await st.aclose()


async def test_a_file_from_before_the_expiry_index_is_swept(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    e = offer("esc_old_file_1")
    with sqlite3.connect(path) as conn:  # the schema as it was: no due_at column
        conn.execute(
            "CREATE TABLE escalations (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, agent TEXT NOT NULL,"
            " state TEXT NOT NULL, created_at REAL NOT NULL, doc TEXT NOT NULL)"
        )
        row = (e.id, e.tenant, e.agent, e.state.value, e.created_at, e.encode().decode())
        conn.execute("INSERT INTO escalations VALUES (?,?,?,?,?,?)", row)
    conn.close()
    store = SqliteAnswerStore(str(path))
    try:
        assert await store.due(NOW + 3599, 10) == []
        assert await store.due(NOW + 3600, 10) == [e]
    finally:
        await store.aclose()


DAY = 86_400.0


async def test_closed_escalations_are_deleted_after_the_retention_and_open_ones_never(
    make: Callable[[], AnswerStore],  # noqa: F811
) -> None:
    """Escalations were kept forever: every offer a user let expire stayed in the store, and each
    listing of the agent read them all. Closed ones now go `closed_retention_days` (30) after they
    closed, at the sweep, at most a batch at a time; open ones stay whatever their age."""
    store, clock, seen = make(), FakeClock(), Seen()
    at(clock, NOW)
    for i in range(3):  # accepted, then not answered in time: expire at NOW + 3600
        sent = offer(f"esc_old_{i}")
        await store.put(sent)
        late = replace(queued(sent), expires_at=NOW + 3600)
        assert await store.accept(State.OFFERED, late, NO_LIMITS) is Accepted.OK
    waiting = offer("esc_waiting")
    await store.put(waiting)
    long_wait = replace(queued(waiting), expires_at=NOW + 400 * DAY)  # open for 400 days
    assert await store.accept(State.OFFERED, long_wait, NO_LIMITS) is Accepted.OK
    answered = queued(offer("esc_answered", tenant="globex", agent="leo"))
    await store.put(offer("esc_answered", tenant="globex", agent="leo"))
    assert await store.accept(State.OFFERED, answered, NO_LIMITS) is Accepted.OK
    done = replace(answered, state=State.ANSWERED, closed_at=NOW + 7200, answer="because")
    assert await store.replace(State.QUEUED, done)
    s = sweeper(store, clock, seen, batch=2)
    at(clock, NOW + 3600)
    assert [await s.sweep(), await s.sweep()] == [2, 1]  # they expire; nothing is old enough to go
    assert len(await store.escalations("acme", "maya")) == 4
    at(clock, NOW + 3600 + 30 * DAY - 1)
    await s.sweep()
    assert len(await store.escalations("acme", "maya")) == 4  # not before the retention's end
    at(clock, NOW + 7200 + 30 * DAY + 1)
    await s.sweep()  # the batch (2) bounds a sweep
    await s.sweep()
    assert [e.id for e in await store.escalations("acme", "maya")] == ["esc_waiting"]  # queued, kept
    assert await store.get("acme", "esc_old_0") is None
    assert await store.escalations("globex", "leo") == []  # answered 30 days ago, over every tenant
    assert await store.get("acme", "esc_waiting") is not None
    at(clock, NOW + 400 * DAY)  # the queued one expires at the sweep, and stays its 30 days
    await s.sweep()
    assert [e.state for e in await store.escalations("acme", "maya")] == [State.EXPIRED]
    at(clock, NOW + 430 * DAY + 1)
    await s.sweep()
    assert await store.escalations("acme", "maya") == []


async def test_a_file_from_before_the_closing_index_keeps_its_retention(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    e = replace(offer("esc_old_closed"), state=State.DECLINED, closed_at=NOW)
    with sqlite3.connect(path) as conn:  # the schema as it was: due_at, no closed_at
        conn.execute(
            "CREATE TABLE escalations (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, agent TEXT NOT NULL,"
            " state TEXT NOT NULL, created_at REAL NOT NULL, doc TEXT NOT NULL, due_at REAL)"
        )
        row = (e.id, e.tenant, e.agent, e.state.value, e.created_at, e.encode().decode(), None)
        conn.execute("INSERT INTO escalations VALUES (?,?,?,?,?,?,?)", row)
    conn.close()
    store = SqliteAnswerStore(str(path))
    try:
        assert await store.forget(NOW, 10) == 0
        assert await store.forget(NOW + 1, 10) == 1
        assert await store.get("acme", e.id) is None
    finally:
        await store.aclose()


async def until(check: Callable[[], bool]) -> None:
    """Wait (bounded, 10 s) until `check()` holds: the served sweeper works on real I/O."""
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the served sidecar's sweep did not happen")


async def swept(s: Any, clock: FakeClock, seconds: float) -> None:
    """Advance the clock (the sweeper's timer fires once) and wait until that sweep has finished
    (so no later advance fires the store's timeouts under a sweep in flight)."""
    sweeper = s.sidecar.sweeper
    done = sweeper.rounds
    clock.advance(seconds)
    await until(lambda: sweeper.rounds > done)


async def test_the_served_sidecar_sweeps_and_the_metrics_move_without_a_read(
    s: Any, clock: FakeClock
) -> None:
    from tests.integration.answers.test_lifecycle import accept, answer, offered

    registry = s.sidecar.deps.telemetry.metrics.registry

    def sample(name: str, **labels: str) -> float | None:
        value: float | None = registry.get_sample_value(name, {"agent": "maya", **labels})
        return value

    waiting = await offered(s, who="bob")
    await accept(s, waiting, who="bob")
    lapsing = await offered(s, who="ann")
    await swept(s, clock, INTERVAL)  # the first sweep (default interval 30 s): nothing due, one queued
    assert sample("sidecar_answer_queue_backlog") == 1.0
    assert sample("sidecar_answer_escalations_total", state="expired_offer") is None
    await swept(s, clock, 600)  # the offer expiry is 600 s: only the sweep sees it, nobody reads
    assert sample("sidecar_answer_escalations_total", state="expired_offer") == 1.0
    assert sample("sidecar_answer_queue_backlog") == 1.0
    await swept(s, clock, 3600)  # the queued expiry is 3600 s
    assert sample("sidecar_answer_queue_backlog") == 0.0
    assert sample("sidecar_answer_escalations_total", state="expired_queued") == 1.0
    store = s.sidecar.deps.answers.store
    assert (await store.get("acme", waiting)).state is State.EXPIRED  # type: ignore[union-attr]
    assert await store.get("acme", lapsing) is None  # never accepted: deleted as it expired
    canonical = len(await store.canonical("acme", "maya"))
    with pytest.raises(grpc.aio.AioRpcError) as err:  # the creator answers after the sweep: refused
        await answer(s, waiting, "Too late?")
    failure = await rich(err.value)
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ESCALATION_WRONG_STATE")
    assert len(await store.canonical("acme", "maya")) == canonical  # and nothing changed


async def _from_a_newer_sidecar(store: AnswerStore, e: Escalation) -> None:
    """Rewrite a stored escalation as a newer sidecar sharing the store might: a state this one
    does not know."""
    doc = e.encode().decode().replace('"state":"offered"', '"state":"snoozed"')
    if isinstance(store, SqliteAnswerStore):
        with sqlite3.connect(store._path) as conn:
            conn.execute("UPDATE escalations SET doc = ?, state = 'snoozed' WHERE id = ?", (doc, e.id))
        return
    shared: Any = store
    key = shared._key(e.tenant, "e", e.id)
    await shared._redis.hset(key, mapping={"state": "snoozed", "doc": doc})


async def test_a_record_this_sidecar_cannot_read_does_not_stop_expiry(
    make: Callable[[], AnswerStore],  # noqa: F811
) -> None:
    """One escalation this sidecar cannot read (a newer sidecar's state on a shared Redis, a record
    edited by hand) raised out of every sweep: the sweeper's task ended without a word, and no
    escalation of any tenant expired again until a restart. The creator's list failed the same way."""
    store, clock, seen = make(), FakeClock(), Seen()
    odd, due = offer("esc_unreadable1", at=NOW - 10), offer("esc_readable01")
    await store.put(odd)
    await store.put(due)
    late = replace(queued(due), expires_at=NOW + 3600)  # accepted: kept when it expires
    assert await store.accept(State.OFFERED, late, NO_LIMITS) is Accepted.OK
    await _from_a_newer_sidecar(store, odd)
    s = sweeper(store, clock, seen)
    s.start()
    try:
        await sweep_at(clock, seen, NOW + 3600)
        assert seen.expired() == ["esc_readable01"]
        assert [e.id for e in await store.escalations("acme", "maya")] == ["esc_readable01"]
    finally:
        await s.stop()


class RaisingOnce(FailingOnce):
    async def due(self, now: float, limit: int) -> list[Escalation]:
        if not self.failed:
            self.failed = True
            raise KeyError("state")  # not a store failure: a bug, a record of another shape
        return await self.store.due(now, limit)


async def test_a_sweep_failing_in_an_unforeseen_way_is_counted_and_the_next_one_runs(
    make: Callable[[], AnswerStore],  # noqa: F811
) -> None:
    store, clock, seen = make(), FakeClock(), Seen()
    await store.put(offer("esc_raising_01"))
    s = sweeper(RaisingOnce(store), clock, seen)  # type: ignore[arg-type]
    s.start()
    try:
        await sweep_at(clock, seen, NOW + 3600)
        assert seen.errors == ["sweep"] and seen.moved == []
        await sweep_at(clock, seen, NOW + 3600 + INTERVAL)
        assert seen.expired() == ["esc_raising_01"]
    finally:
        await s.stop()


async def test_an_offer_never_accepted_is_deleted_by_the_sweep_that_expires_it(
    make: Callable[[], AnswerStore],  # noqa: F811
) -> None:
    """Offers cost the user nothing: an offer that lapsed unaccepted was kept `closed_retention_days`
    (30) like a creator's answered escalation, and every list and report read it. It holds nothing
    the user sent, so the sweep that expires it (counted as expired_offer) deletes it; an escalation
    the user sent stays its retention. One read before the sweep still says it expired."""
    store, clock, seen = make(), FakeClock(), Seen()
    lapsed = [offer(f"esc_lapsed_{i}") for i in range(3)]
    for e in lapsed:
        await store.put(e)
    sent = offer("esc_sent")
    await store.put(sent)
    late = replace(queued(sent), expires_at=NOW + 3600)
    assert await store.accept(State.OFFERED, late, NO_LIMITS) is Accepted.OK
    s = sweeper(store, clock, seen)
    at(clock, NOW + 3600)
    read = lapsed[0].expired(clock.wall())  # expired on a read (an acceptance) before the sweep
    assert await store.replace(State.OFFERED, read)
    assert (await store.get("acme", read.id)).state is State.EXPIRED  # type: ignore[union-attr]
    assert await s.sweep() == 3  # two offers and the queued one; the third offer was expired on read
    assert [e.id for e in await store.escalations("acme", "maya")] == ["esc_sent"]
    assert (await store.get("acme", "esc_sent")).state is State.EXPIRED  # type: ignore[union-attr]
    at(clock, NOW + 3600 + 31 * DAY)
    await s.sweep()
    assert await store.escalations("acme", "maya") == []
