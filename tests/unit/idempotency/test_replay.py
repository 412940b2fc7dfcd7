"""One answer per tenant and request_id within the window, on the in-memory store and a FakeClock."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.core.errors import QuotaExceededError, QuotaViolation
from sidecar.idempotency.replay import Replays
from sidecar.idempotency.store import (
    IdempotencyKeyReusedError,
    IdempotencyStoreUnavailableError,
    MemoryIdempotencyStore,
)
from tests.conftest import FakeClock


class Producer:
    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fail: Exception | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return f"answer-{self.calls}".encode()


def replays(clock: FakeClock, max_entries: int = 100, max_bytes: int = 1000) -> Replays:
    store = MemoryIdempotencyStore(clock=clock, window_seconds=60, max_entries=max_entries)
    return Replays(store, max_answer_bytes=max_bytes, field="input.request_id")


async def test_a_repeat_gets_the_first_answer_and_runs_nothing(clock: FakeClock) -> None:
    r, produce = replays(clock), Producer()
    assert await r.answer("acme", "r1", b"req", produce) == (b"answer-1", False)
    assert await r.answer("acme", "r1", b"req", produce) == (b"answer-1", True)
    assert produce.calls == 1
    assert await r.answer("globex", "r1", b"req", produce) == (b"answer-2", False)  # per tenant


async def test_a_repeat_in_flight_joins_the_first(clock: FakeClock) -> None:
    r, produce = replays(clock), Producer()
    produce.gate = asyncio.Event()
    first = asyncio.create_task(r.answer("acme", "r1", b"req", produce))
    second = asyncio.create_task(r.answer("acme", "r1", b"req", produce))
    await asyncio.sleep(0)
    produce.gate.set()
    assert await first == (b"answer-1", False) and await second == (b"answer-1", True)
    assert produce.calls == 1


async def test_another_request_under_the_same_id_is_refused_naming_the_field(clock: FakeClock) -> None:
    r, produce = replays(clock), Producer()
    await r.answer("acme", "r1", b"req", produce)
    with pytest.raises(IdempotencyKeyReusedError) as err:
        await r.answer("acme", "r1", b"other", produce)
    assert [v.field for v in err.value.violations] == ["input.request_id"] and produce.calls == 1


async def test_a_failed_first_call_is_forgotten_so_a_retry_runs(clock: FakeClock) -> None:
    r, produce = replays(clock), Producer()
    produce.fail = RuntimeError("upstream down")
    with pytest.raises(RuntimeError):
        await r.answer("acme", "r1", b"req", produce)
    produce.fail = None
    assert await r.answer("acme", "r1", b"req", produce) == (b"answer-2", False)


async def test_a_waiting_repeat_runs_itself_when_the_first_fails(clock: FakeClock) -> None:
    r, produce = replays(clock), Producer()
    produce.gate, produce.fail = asyncio.Event(), RuntimeError("boom")
    first = asyncio.create_task(r.answer("acme", "r1", b"req", produce))
    second = asyncio.create_task(r.answer("acme", "r1", b"req", produce))
    await asyncio.sleep(0)
    produce.gate.set()  # the first fails; the waiting second then claims the key and runs itself
    with pytest.raises(RuntimeError):
        await first
    with pytest.raises(RuntimeError):
        await second  # it ran (and failed) on its own
    assert produce.calls == 2


async def test_the_window_ends(clock: FakeClock) -> None:
    r, produce = replays(clock), Producer()
    await r.answer("acme", "r1", b"req", produce)
    clock.advance(61)
    assert await r.answer("acme", "r1", b"req", produce) == (b"answer-2", False)


async def test_the_memory_store_is_bounded(clock: FakeClock) -> None:
    r, produce = replays(clock, max_entries=2), Producer()
    for rid in ("a", "b", "c"):
        await r.answer("acme", rid, b"req", produce)
    assert (await r.answer("acme", "a", b"req", produce))[1] is False  # evicted: runs again
    assert (await r.answer("acme", "c", b"req", produce))[1] is True


async def test_an_answer_too_large_is_not_kept(clock: FakeClock) -> None:
    r, produce = replays(clock, max_bytes=3), Producer()
    await r.answer("acme", "r1", b"req", produce)
    assert await r.answer("acme", "r1", b"req", produce) == (b"answer-2", False)


async def test_each_scope_keeps_its_own_keys_in_the_same_store(clock: FakeClock) -> None:
    generate, produce = replays(clock), Producer()
    embed = generate.scoped("embed", field="request_id")
    assert await generate.answer("acme", "r1", b"generate", produce) == (b"answer-1", False)
    assert await embed.answer("acme", "r1", b"embed", produce) == (b"answer-2", False)  # not reused
    assert await embed.answer("acme", "r1", b"embed", produce) == (b"answer-2", True)
    with pytest.raises(IdempotencyKeyReusedError) as err:
        await embed.answer("acme", "r1", b"changed", produce)
    assert [v.field for v in err.value.violations] == ["request_id"] and produce.calls == 2


class ReleaseFails(MemoryIdempotencyStore):
    """The store cannot be reached when the first call's failure releases its key."""

    async def release(self, key: str) -> None:
        raise IdempotencyStoreUnavailableError("the idempotency store is unreachable; retry")


REFUSED = QuotaExceededError(
    "over",
    reason="TOKEN_QUOTA_EXCEEDED",
    metadata={},
    violation=QuotaViolation("tenant:acme", "x"),
    retry_after=1,
)


@pytest.mark.parametrize("failure", [REFUSED, None])
async def test_the_first_calls_own_failure_is_what_the_caller_gets(
    clock: FakeClock, failure: Exception | None
) -> None:
    """A store that fails the release must not replace the call's own error (a quota refusal stays
    RESOURCE_EXHAUSTED) nor turn the caller's cancellation into an error of its own."""
    store = ReleaseFails(clock=clock, window_seconds=60, max_entries=10)
    r, produce = Replays(store, max_answer_bytes=100, field="input.request_id"), Producer()
    if failure is not None:
        produce.fail = failure
        with pytest.raises(QuotaExceededError):
            await r.answer("acme", "r1", b"req", produce)
        return
    produce.gate = asyncio.Event()
    caller = asyncio.create_task(r.answer("acme", "r1", b"req", produce))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
