"""The Redis idempotency store against a real redis-server that stalls (DEBUG SLEEP, as a fork, a
slow script or SIGSTOP would): a claim that timed out, or whose caller gave up, must not leave a
claim behind that makes every retry of the request wait for an answer that never comes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from sidecar.core.clock import SystemClock
from sidecar.idempotency.redis_store import RedisIdempotencyStore
from sidecar.idempotency.replay import Replays
from sidecar.idempotency.store import IdempotencyKeyReusedError, IdempotencyStoreUnavailableError
from tests.support.redis import stall, start_redis

pytestmark = pytest.mark.integration
STORE_TIMEOUT = 5.0  # the store's per-command socket timeout
CLAIM_AND_HANG = """
import asyncio, sys
from sidecar.core.clock import SystemClock
from sidecar.idempotency.redis_store import RedisIdempotencyStore
from sidecar.idempotency.replay import Replays

async def main():
    store = RedisIdempotencyStore(sys.argv[1], prefix="idem:", window_seconds=600, clock=SystemClock())
    replays = Replays(store, max_answer_bytes=1000, field="input.request_id")
    async def hang():
        print("claimed", flush=True)
        await asyncio.sleep(3600)
        return b""
    await replays.answer("acme", "order-9", b"req", hang)

asyncio.run(main())
"""


class Producer:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return f"answer-{self.calls}".encode()


@pytest.fixture
async def slow_redis() -> AsyncIterator[str]:
    with start_redis("--enable-debug-command", "yes") as port:
        yield f"redis://127.0.0.1:{port}/0"


def replays(url: str, errors: list[str] | None = None) -> tuple[RedisIdempotencyStore, Replays]:
    store = RedisIdempotencyStore(
        url,
        prefix="idem:",
        window_seconds=60,
        clock=SystemClock(),
        on_store_error=(errors if errors is not None else []).append,
    )
    return store, Replays(store, max_answer_bytes=1000, field="input.request_id")


async def test_a_claim_that_timed_out_does_not_hold_the_key(slow_redis: str) -> None:
    errors: list[str] = []
    store, r = replays(slow_redis, errors)
    produce = Producer()
    try:
        await r.answer("acme", "warm", b"w", produce)  # a pooled connection: the claim is sent at once
        sleeper = await stall(slow_redis, STORE_TIMEOUT + 0.7)
        with pytest.raises(IdempotencyStoreUnavailableError):
            await r.answer("acme", "order-1", b"req", produce)  # times out; its SET runs on wake-up
        await sleeper
        answer, replayed = await asyncio.wait_for(r.answer("acme", "order-1", b"req", produce), 4)
        assert (answer, replayed) == (b"answer-2", False) and produce.calls == 2  # the retry ran
        assert errors == ["claim"]  # counted as the store's error (the give-up went through)
    finally:
        await store.aclose()


async def test_a_redis_that_is_down_counts_each_failed_operation() -> None:
    with start_redis() as port:
        url = f"redis://127.0.0.1:{port}/0"
    errors: list[str] = []
    store, r = replays(url, errors)  # nothing listens there any more
    try:
        with pytest.raises(IdempotencyStoreUnavailableError):
            await r.answer("acme", "order-1", b"req", Producer())
        assert errors == ["claim"]
    finally:
        await store.aclose()  # tries the abandoned claim's give-up once more: it fails too
    assert errors[-1] == "give_up" and errors.count("give_up") == 1


async def test_a_claim_whose_caller_gave_up_does_not_hold_the_key(slow_redis: str) -> None:
    store, r = replays(slow_redis)
    produce = Producer()
    try:
        await r.answer("acme", "warm", b"w", produce)
        sleeper = await stall(slow_redis, 0.6)
        caller = asyncio.create_task(r.answer("acme", "order-2", b"req", produce))
        await asyncio.sleep(0.1)  # the claim is queued behind the sleep
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await sleeper
        answer, replayed = await asyncio.wait_for(r.answer("acme", "order-2", b"req", produce), 4)
        assert (answer, replayed) == (b"answer-2", False)
    finally:
        await store.aclose()


async def test_a_give_up_that_overtakes_its_claim_still_wins(slow_redis: str) -> None:
    """The give-up may reach Redis before the claim it gives up (another connection): the claim,
    when it runs, takes nothing; a different claim treats the tombstone as a free key."""
    store, _ = replays(slow_redis)
    name, fingerprint = store._key("4:acme:order-3"), b"f" * 32
    mine, theirs = b"P" + fingerprint + b"m" * 16, b"P" + fingerprint + b"t" * 16
    try:
        await store._give_up(keys=[name], args=[mine, b"X" + b"m" * 16, 60_000])
        assert await store._claim(keys=[name], args=[mine, 60_000, b"X" + b"m" * 16]) == b""
        assert await store._redis.get(name) == b"X" + b"m" * 16  # not claimed by the late claim
        assert await store._claim(keys=[name], args=[theirs, 60_000, b"X" + b"t" * 16]) == b""
        assert await store._redis.get(name) == theirs
    finally:
        await store.aclose()


def claim_then_crash(url: str) -> None:
    """Another process claims order-9, then is killed (SIGKILL) while its call runs."""
    with subprocess.Popen(
        [sys.executable, "-c", CLAIM_AND_HANG, url], stdout=subprocess.PIPE, text=True
    ) as p:
        try:
            assert p.stdout is not None and p.stdout.readline().strip() == "claimed"
        finally:
            p.kill()


async def test_a_crashed_sidecars_claim_frees_the_key_within_a_lease(slow_redis: str) -> None:
    """A sidecar killed while its first call runs leaves its claim; a retry elsewhere waits at most
    one lease (15 s), not the old fixed in-flight bound of 300 s, and then runs the call itself."""
    await asyncio.to_thread(claim_then_crash, slow_redis)
    store, r = replays(slow_redis)
    produce = Producer()
    try:
        started = time.monotonic()
        answer, replayed = await asyncio.wait_for(r.answer("acme", "order-9", b"req", produce), 20)
        assert (answer, replayed) == (b"answer-1", False) and time.monotonic() - started < 16
    finally:
        await store.aclose()


async def test_a_call_longer_than_its_lease_keeps_the_key(slow_redis: str) -> None:
    """The claim is renewed while the call runs: a repeat on another sidecar waits for the answer
    instead of running the call a second time when the first lease would have lapsed."""
    first = RedisIdempotencyStore(
        slow_redis, prefix="idem:", window_seconds=60, lease_seconds=1.0, clock=SystemClock()
    )
    second = RedisIdempotencyStore(
        slow_redis, prefix="idem:", window_seconds=60, lease_seconds=1.0, clock=SystemClock()
    )
    calls = 0

    async def slow() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(3.0)  # three leases (renewed every third of one)
        return b"slow answer"

    try:
        a = Replays(first, max_answer_bytes=1000, field="input.request_id")
        b = Replays(second, max_answer_bytes=1000, field="input.request_id")
        running = asyncio.create_task(a.answer("acme", "order-10", b"req", slow))
        await asyncio.sleep(0.1)
        assert await b.answer("acme", "order-10", b"req", slow) == (b"slow answer", True)
        assert await running == (b"slow answer", False) and calls == 1
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_key_holding_a_value_it_cannot_read_is_waited_on_not_spun_on(slow_redis: str) -> None:
    """A foreign or corrupt value under the key: the call waits at the poll interval (bounded by its
    deadline) instead of claiming and reading it again in a tight loop against Redis."""
    from tests.conftest import FakeClock

    clock = FakeClock()
    store = RedisIdempotencyStore(slow_redis, prefix="idem:", window_seconds=600, clock=clock)
    replays = Replays(store, max_answer_bytes=1000, field="input.request_id")
    other = Redis.from_url(slow_redis)
    name = store._key("4:acme:order-1")
    await other.set(name, b"garbage that is no claim")
    produce = Producer()
    task = asyncio.create_task(replays.answer("acme", "order-1", b"req", produce))
    try:
        await asyncio.sleep(0.3)  # real time: a spinning loop would not wait on the clock at all
        assert not task.done() and clock.sleeps == [0.05]
        await other.delete(name)
        clock.advance(0.05)
        assert await asyncio.wait_for(task, 5) == (b"answer-1", False)
    finally:
        task.cancel()
        await other.aclose()
        await store.aclose()


async def test_an_answer_that_could_not_be_kept_is_kept_once_redis_answers(tmp_path: Path) -> None:
    """The first call ran (and was charged); Redis went down as its answer was to be kept, then came
    back (with its data). The answer was delivered but never kept, so a retry found the first call's
    claim, waited out its lease and ran the call again, charged twice (seen with four sidecar
    processes on one redis-server, stopped while calls ran). The answer is kept once Redis answers."""
    from sidecar.stores.redis import RedisEndpoint
    from tests.support.quota_cluster import OwnRedis

    redis = OwnRedis(tmp_path)
    redis.start()
    store = RedisIdempotencyStore(
        RedisEndpoint(redis.url, timeout=0.5), prefix="idem:", window_seconds=60, clock=SystemClock()
    )
    r = Replays(store, max_answer_bytes=1000, field="input.request_id")
    produce = Producer()

    async def redis_goes_down_as_it_answers() -> bytes:
        redis.stop()
        return await produce()

    try:
        assert await r.answer("acme", "order-11", b"req", redis_goes_down_as_it_answers) == (
            b"answer-1",
            False,
        )
        redis.start()
        await asyncio.sleep(1.0)
        answer = await asyncio.wait_for(r.answer("acme", "order-11", b"req", produce), 5)
        assert answer == (b"answer-1", True) and produce.calls == 1
    finally:
        await store.aclose()
        redis.stop()


async def test_an_answer_waiting_to_be_kept_answers_this_sidecars_retry(tmp_path: Path) -> None:
    """The answer could not be kept (Redis went down as the first call finished) and waits in this
    sidecar. A retry to this sidecar (a pod's app retries through its own sidecar) is answered by
    it: while Redis is still down (it was refused unavailable), and once Redis came back empty
    (restarted without its data, or its lease lapsed): the retry claimed the free key before the
    answer was kept and ran the call again, charged twice."""
    from sidecar.stores.redis import RedisEndpoint
    from tests.support.quota_cluster import OwnRedis

    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    redis = OwnRedis(tmp_path / "before")
    redis.start()
    store = RedisIdempotencyStore(
        RedisEndpoint(redis.url, timeout=0.5), prefix="idem:", window_seconds=60, clock=SystemClock()
    )
    r = Replays(store, max_answer_bytes=1000, field="input.request_id")
    produce = Producer()

    async def redis_goes_down_as_it_answers() -> bytes:
        redis.stop()
        return await produce()

    try:
        first = await r.answer("acme", "order-12", b"req", redis_goes_down_as_it_answers)
        assert first == (b"answer-1", False)
        assert await asyncio.wait_for(r.answer("acme", "order-12", b"req", produce), 5) == (b"answer-1", True)
        await asyncio.sleep(2.0)  # the background write backs off (up to 5 s between tries)
        redis.dir = tmp_path / "after"  # its data lost
        redis.start()
        assert await asyncio.wait_for(r.answer("acme", "order-12", b"req", produce), 5) == (b"answer-1", True)
        with pytest.raises(IdempotencyKeyReusedError):
            await r.answer("acme", "order-12", b"another request", produce)
        assert produce.calls == 1
    finally:
        await store.aclose()
        redis.stop()


async def test_a_retry_waiting_on_the_first_call_gets_its_answer_waiting_to_be_kept(tmp_path: Path) -> None:
    """A retry sent while the first call ran waits on the key (polling Redis). Redis goes down as the
    first call finishes: its answer waits in this sidecar, and the waiting retry's next poll was
    refused unavailable; it gets the answer."""
    from sidecar.stores.redis import RedisEndpoint
    from tests.support.quota_cluster import OwnRedis

    redis = OwnRedis(tmp_path)
    redis.start()
    store = RedisIdempotencyStore(
        RedisEndpoint(redis.url, timeout=0.5), prefix="idem:", window_seconds=60, clock=SystemClock()
    )
    fingerprint = bytes(32)
    try:
        assert await store.claim("k", fingerprint) is None  # the first call runs
        redis.stop()
        with pytest.raises(IdempotencyStoreUnavailableError):
            await store.finish("k", fingerprint, b"answer")
        held = await asyncio.wait_for(store.wait("k"), 5)  # the waiting retry's next poll
        assert held is not None and (held.fingerprint, held.answer) == (fingerprint, b"answer")
    finally:
        await store.aclose()
        redis.stop()


async def test_closing_with_redis_stalled_costs_one_timeout(slow_redis: str) -> None:
    """At shutdown the answers waiting to be kept and the claims waiting to be given up are each
    tried while Redis answers: one after the other, a stalled Redis cost the shutdown two timeouts
    (10 s at the default) before the closers after it (the ledger's flush last) ran."""
    from sidecar.stores.redis import RedisEndpoint

    store = RedisIdempotencyStore(
        RedisEndpoint(slow_redis, timeout=1.0), prefix="idem:", window_seconds=60, clock=SystemClock()
    )
    fingerprint = bytes(32)
    assert await store.claim("first", fingerprint) is None
    sleeper = await stall(slow_redis, 20)
    try:
        with pytest.raises(IdempotencyStoreUnavailableError):
            await store.finish("first", fingerprint, b"answer")  # an answer to keep
        with pytest.raises(IdempotencyStoreUnavailableError):
            await store.claim("second", fingerprint)  # a claim to give up
        started = time.monotonic()
        await store.aclose()
        assert time.monotonic() - started < 1.8
    finally:
        sleeper.cancel()
