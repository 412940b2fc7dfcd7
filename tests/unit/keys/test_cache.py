from __future__ import annotations

import asyncio
import pickle

import pytest

from sidecar.core.errors import KeyBackendUnavailableError, KeyDecryptError
from sidecar.keys.backend import KeyContext
from sidecar.keys.cache import KeyCache, KeyCachePolicy, KeyCacheStats, SecretKey, cache_key_for
from tests.conftest import FakeClock

KEY_A = ("local", "kek-1", "aa" * 32, "7b7d")
KEY_B = ("local", "kek-1", "bb" * 32, "7b7d")
KEY_C = ("local", "kek-1", "cc" * 32, "7b7d")


class Loader:
    """A scripted load(): counts calls, hands out a fresh buffer each time, optionally gated or failing."""

    def __init__(self, text: str = "sk-test-0123456789", *, gate: asyncio.Event | None = None) -> None:
        self.text, self.gate = text, gate
        self.calls = 0
        self.buffers: list[bytearray] = []
        self.error: Exception | None = None
        self.clock: FakeClock | None = None
        self.takes = 0.0

    async def __call__(self) -> bytearray:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.clock is not None:
            self.clock.advance(self.takes)
        if self.error is not None:
            raise self.error
        buffer = bytearray(self.text.encode())
        self.buffers.append(buffer)
        return buffer


def cache(clock: FakeClock, **policy: float) -> KeyCache:
    return KeyCache(KeyCachePolicy(**policy), clock)  # type: ignore[arg-type]


def zeroed(buffer: bytearray) -> bool:
    return len(buffer) > 0 and buffer == bytearray(len(buffer))


async def test_miss_then_hits(clock: FakeClock) -> None:
    c, load = cache(clock), Loader()
    first = await c.get(KEY_A, load)
    second = await c.get(KEY_A, load)
    assert first is not second  # each caller its own lease of the one cached key
    assert first.reveal() == second.reveal() == "sk-test-0123456789"
    assert load.calls == 1
    assert c.stats() == KeyCacheStats(
        hits=1, misses=1, evictions=0, backend_calls=1, backend_errors=0, entries=1, decrypt_seconds_total=0.0
    )


async def test_keys_are_separate(clock: FakeClock) -> None:
    c = cache(clock)
    a, b = Loader("sk-a"), Loader("sk-b")
    assert (await c.get(KEY_A, a)).reveal() == "sk-a"
    assert (await c.get(KEY_B, b)).reveal() == "sk-b"
    assert (await c.get(KEY_A, b)).reveal() == "sk-a"  # the cached one, not b's
    assert (a.calls, b.calls) == (1, 1)


async def test_expires_by_age_and_wipes(clock: FakeClock) -> None:
    c, load = cache(clock, max_age_seconds=300.0), Loader()
    await c.get(KEY_A, load)
    clock.advance(299.9)
    await c.get(KEY_A, load)
    assert load.calls == 1
    clock.advance(0.1)
    fresh = await c.get(KEY_A, load)
    assert load.calls == 2
    assert zeroed(load.buffers[0])
    assert fresh.reveal() == "sk-test-0123456789"
    assert c.stats().evictions == 1


async def test_expires_by_uses(clock: FakeClock) -> None:
    c, load = cache(clock, max_uses=3), Loader()
    for _ in range(3):
        await c.get(KEY_A, load)
    assert load.calls == 1
    await c.get(KEY_A, load)  # the fourth use needs a new decryption
    assert load.calls == 2
    assert zeroed(load.buffers[0])
    assert c.stats().hits == 2


async def test_lru_eviction_past_max_entries(clock: FakeClock) -> None:
    c = cache(clock, max_entries=2)
    a, b, d = Loader("sk-a"), Loader("sk-b"), Loader("sk-c")
    await c.get(KEY_A, a)
    await c.get(KEY_B, b)
    await c.get(KEY_A, a)  # A is now more recently used than B
    await c.get(KEY_C, d)
    assert zeroed(b.buffers[0])
    assert not zeroed(a.buffers[0])
    assert c.stats().entries == 2
    assert c.stats().evictions == 1
    await c.get(KEY_A, a)
    assert a.calls == 1
    await c.get(KEY_B, b)
    assert b.calls == 2


async def test_purge_expired_wipes_idle_entries(clock: FakeClock) -> None:
    c, a, b = cache(clock, max_age_seconds=10.0), Loader("sk-a"), Loader("sk-b")
    await c.get(KEY_A, a)
    clock.advance(5.0)
    await c.get(KEY_B, b)
    clock.advance(5.0)
    assert c.purge_expired() == 1
    assert zeroed(a.buffers[0])
    assert not zeroed(b.buffers[0])
    assert c.stats().entries == 1


async def test_clear_wipes_everything_but_the_leases_calls_hold(clock: FakeClock) -> None:
    c, a, b = cache(clock), Loader("sk-a"), Loader("sk-b")
    ka, kb = await c.get(KEY_A, a), await c.get(KEY_B, b)
    c.clear()
    assert zeroed(a.buffers[0]) and zeroed(b.buffers[0])
    assert c.stats().entries == 0
    assert ka.reveal() == "sk-a" and kb.reveal() == "sk-b"  # defect 9: a call's key stays usable
    ka.wipe()  # until the call ends and wipes its own copy
    with pytest.raises(RuntimeError, match="wiped"):
        ka.reveal()
    assert kb.reveal() == "sk-b"
    await c.get(KEY_A, a)
    assert a.calls == 2


async def test_concurrent_misses_share_one_load(clock: FakeClock) -> None:
    c, gate = cache(clock), asyncio.Event()
    load = Loader(gate=gate)
    tasks = [asyncio.create_task(c.get(KEY_A, load)) for _ in range(200)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    gate.set()
    keys = await asyncio.gather(*tasks)
    assert load.calls == 1
    assert all(k.reveal() == "sk-test-0123456789" for k in keys) and len({id(k) for k in keys}) == 200
    stats = c.stats()
    assert (stats.misses, stats.hits, stats.backend_calls) == (200, 0, 1)


async def test_failing_load_reaches_every_waiter_and_caches_nothing(clock: FakeClock) -> None:
    c, gate = cache(clock), asyncio.Event()
    load = Loader(gate=gate)
    load.error = KeyBackendUnavailableError("kms throttled")
    tasks = [asyncio.create_task(c.get(KEY_A, load)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, KeyBackendUnavailableError) for r in results)
    assert load.calls == 1
    assert c.stats().entries == 0
    assert c.stats().backend_errors == 1
    load.error = None
    assert (await c.get(KEY_A, load)).reveal() == "sk-test-0123456789"
    assert load.calls == 2


async def test_cancelled_first_waiter_does_not_cancel_the_load(clock: FakeClock) -> None:
    c, gate = cache(clock), asyncio.Event()
    load = Loader(gate=gate)
    first = asyncio.create_task(c.get(KEY_A, load))
    await asyncio.sleep(0)
    others = [asyncio.create_task(c.get(KEY_A, load)) for _ in range(5)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    assert first.cancelled()
    gate.set()
    keys = await asyncio.gather(*others)
    assert {k.reveal() for k in keys} == {"sk-test-0123456789"}
    assert load.calls == 1
    await c.get(KEY_A, load)
    assert load.calls == 1  # the load filled the cache
    assert c.stats().backend_errors == 0


async def test_load_survives_every_waiter_leaving(clock: FakeClock) -> None:
    c, gate = cache(clock), asyncio.Event()
    load = Loader(gate=gate)
    waiter = asyncio.create_task(c.get(KEY_A, load))
    await asyncio.sleep(0)
    waiter.cancel()
    gate.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert c.stats().entries == 1
    await c.get(KEY_A, load)
    assert load.calls == 1


async def test_fresh_entry_keeps_serving_while_the_backend_is_down(clock: FakeClock) -> None:
    c, good = cache(clock, max_age_seconds=60.0), Loader()
    key = await c.get(KEY_A, good)
    down = Loader()
    down.error = KeyBackendUnavailableError("kms unreachable")
    clock.advance(59.0)
    assert (await c.get(KEY_A, down)).reveal() == key.reveal()
    assert down.calls == 0  # only a miss calls load
    clock.advance(1.0)  # expired: no stale serving
    with pytest.raises(KeyBackendUnavailableError):
        await c.get(KEY_A, down)
    assert zeroed(good.buffers[0])
    assert c.stats().backend_errors == 1


async def test_a_waiter_never_receives_a_wiped_key(clock: FakeClock) -> None:
    """A's load finishes, then B's load evicts A before A's waiters resume: they still get A's key,
    from the copy the load handed them, without loading it again."""
    c = cache(clock, max_entries=1)
    gate = asyncio.Event()
    a, b = Loader("sk-a", gate=gate), Loader("sk-b", gate=gate)
    waiters = [asyncio.create_task(c.get(KEY_A, a)) for _ in range(2)]
    other = asyncio.create_task(c.get(KEY_B, b))
    await asyncio.sleep(0)
    gate.set()
    key_a1, key_a2, key_b = await asyncio.gather(*waiters, other)
    assert zeroed(a.buffers[0])  # A's cached decryption, evicted by B
    assert a.calls == 1  # no second load
    assert not key_a1.wiped and not key_a2.wiped
    assert key_a1.reveal() == key_a2.reveal() == "sk-a"
    assert key_b.reveal() == "sk-b" and c.stats().entries == 1


async def test_times_the_load(clock: FakeClock) -> None:
    c, load = cache(clock), Loader()
    load.clock, load.takes = clock, 0.25
    await c.get(KEY_A, load)
    await c.get(KEY_B, load)
    assert c.stats().decrypt_seconds_total == pytest.approx(0.5)


async def test_secret_key_never_reveals_itself(clock: FakeClock) -> None:
    c = cache(clock)
    key = await c.get(KEY_A, Loader("sk-supersecret"))
    for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key]), repr(c.stats())):
        assert "supersecret" not in text
    assert repr(key) == "SecretKey(<redacted>)"
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_wipe_zeroes_the_buffer_in_place() -> None:
    buffer = bytearray(b"sk-abc")
    key = SecretKey(buffer)
    key.wipe()
    assert buffer == bytearray(6)
    assert key.wiped


def test_undecodable_key_does_not_leak_its_bytes() -> None:
    key = SecretKey(bytearray(b"\xffsecret"))
    with pytest.raises(KeyDecryptError) as info:
        key.reveal()
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert "secret" not in str(info.value)


def test_cache_key_is_made_of_the_wrapped_key_and_context() -> None:
    context = KeyContext("t1", "u1", "openai", "default")
    key = cache_key_for(context.aad(), "aws-kms", "arn:aws:kms:k", b"wrapped-blob")
    assert key[:2] == ("aws-kms", "arn:aws:kms:k")
    assert len(key[2]) == 64 and key[3] == context.aad().hex()
    other = KeyContext("t1", "u2", "openai", "default")
    assert cache_key_for(other.aad(), "aws-kms", "arn:aws:kms:k", b"wrapped-blob") != key
    assert cache_key_for(context.aad(), "aws-kms", "arn:aws:kms:k", b"rewrapped") != key


@pytest.mark.parametrize(
    "policy", [{"max_age_seconds": 0.0}, {"max_uses": 0}, {"max_entries": 0}], ids=["age", "uses", "entries"]
)
def test_policy_rejects_nonsense(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        KeyCachePolicy(**policy)  # type: ignore[arg-type]


async def test_close_cancels_loads_in_flight_and_refuses_new_ones() -> None:
    """A decrypt finishing after shutdown must not leave a plaintext key cached in memory."""
    cache = KeyCache(KeyCachePolicy(), FakeClock())
    started, release = asyncio.Event(), asyncio.Event()
    loaded: list[bytearray] = []

    async def slow() -> bytearray:
        started.set()
        await release.wait()
        buffer = bytearray(b"sk-late-key")
        loaded.append(buffer)
        return buffer

    waiter = asyncio.create_task(cache.get(("k",), slow))
    await started.wait()
    cache.close()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert loaded == [] and cache.stats().entries == 0
    with pytest.raises(KeyBackendUnavailableError):
        await cache.get(("k",), slow)


async def test_an_idle_key_is_wiped_when_it_reaches_its_age_without_another_call(clock: FakeClock) -> None:
    """The age bounded serving only: an entry was wiped when a later get() found it expired or a later
    miss purged, so a key used once and never again stayed in memory, in plaintext, for as long as no
    other key was loaded (forever on a quiet sidecar)."""
    c, load = cache(clock, max_age_seconds=300.0), Loader()
    (await c.get(KEY_A, load)).wipe()  # the caller is done with its lease
    clock.advance(299.0)
    await asyncio.sleep(0)
    assert not zeroed(load.buffers[0])
    clock.advance(1.0)
    await asyncio.sleep(0)
    assert zeroed(load.buffers[0])
    assert c.stats().entries == 0 and c.stats().evictions == 1
    assert clock.pending() == 0  # nothing cached: no timer left behind
    (await c.get(KEY_B, load)).wipe()
    clock.advance(300.0)
    await asyncio.sleep(0)
    assert zeroed(load.buffers[1])


async def test_close_stops_the_expiry_timer(clock: FakeClock) -> None:
    c, load = cache(clock, max_age_seconds=300.0), Loader()
    await c.get(KEY_A, load)
    c.close()
    await asyncio.sleep(0)
    assert clock.pending() == 0 and zeroed(load.buffers[0])


async def test_waiters_keep_their_load_when_the_entry_is_evicted_before_they_resume(clock: FakeClock) -> None:
    """A waiter whose load's entry was wiped before it resumed (by a newer caller finding the entry
    used up, max_uses: 1) loaded again, and so did the next one: with a backend that answers at once
    (the local one), calls for one key arriving one loop turn apart never ended, reloading without
    bound."""
    c = cache(clock, max_uses=1)
    load = Loader()

    async def bounded() -> bytearray:
        if load.calls >= 500:
            raise AssertionError("reloading without bound")
        return await load()

    async def one(turns: int) -> str:
        for _ in range(turns):  # arrive a few loop turns apart
            await asyncio.sleep(0)
        key = await c.get(KEY_A, bounded)
        try:
            return key.reveal()
        finally:
            key.wipe()

    got = await asyncio.gather(*(one(i % 7) for i in range(60)))
    assert got == ["sk-test-0123456789"] * 60
    assert load.calls <= 60
