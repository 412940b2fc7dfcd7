"""Defect 9: a cached user key wiped while a call holds it.

The key layer gives each attempt its own lease of the user's key: the cache may wipe its entry (here
after every use: max_uses=1) while the call still needs the key to build its upstream request or to
scrub an upstream error. The error path never raises, so a retryable upstream failure stays
retryable (the route layer may fall back) instead of turning INTERNAL. The lease is wiped when the
attempt ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import pytest

from sidecar.core.errors import ProviderUnavailableError
from sidecar.core.types import Call, Chunk, FinishReason, Price, Secret, Target, Usage
from sidecar.keys.backend import KeyContext
from sidecar.keys.cache import KeyCache, KeyCachePolicy
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.service import KeyService
from sidecar.keys.store import MEMORY, SqliteKeyStore
from sidecar.pipeline.keys import KeyLayer
from tests.conftest import FakeClock
from tests.support.calls import make_call

TARGET = Target("main", "a", "openai", "m", Price())
USER_KEY = "sk-user-own-key-0123456789abcdef"
FINAL = Chunk(finish_reason=FinishReason.STOP, usage=Usage(1, 1))


@pytest.fixture
async def keys(tmp_path: Path, clock: FakeClock) -> AsyncIterator[KeyService]:
    kek = tmp_path / "kek.b64"
    LocalKekBackend.generate_file(kek)
    service = KeyService(
        LocalKekBackend.from_file(kek),
        SqliteKeyStore(MEMORY, clock),
        KeyCache(KeyCachePolicy(max_uses=1), clock),  # every use but the first wipes the cached entry
        clock,
    )
    await service.register(KeyContext("t", "u", "openai", "default"), USER_KEY.encode())
    yield service
    await service.aclose()


def call_on_target(clock: FakeClock) -> Call:
    return dataclasses.replace(make_call(clock), target=TARGET)


async def test_a_key_wiped_in_the_cache_stays_usable_for_the_call_holding_it(
    keys: KeyService, clock: FakeClock
) -> None:
    """Call 1 builds its upstream request late (after call 2 has made the cache wipe its entry),
    then the upstream fails with a retryable 503 that echoes the key: call 1 still reads its key,
    the error is scrubbed and stays retryable."""
    entered, resume = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def upstream(call: Call) -> AsyncGenerator[Chunk, None]:
        assert call.api_key is not None
        if call.request_id == "first":
            entered.set()
            await resume.wait()
        seen.append(call.api_key.reveal())  # the provider building its auth header
        if call.request_id == "first":
            raise ProviderUnavailableError(f"upstream HTTP 503: bad key {call.api_key.reveal()}")
        yield FINAL

    layer = KeyLayer(upstream, keys=keys, modes={"main": "preferred"})
    first = dataclasses.replace(call_on_target(clock), request_id="first")
    task = asyncio.create_task(_drain(layer(first)))
    await entered.wait()  # call 1 holds its key
    assert [c async for c in layer(call_on_target(clock))] == [FINAL]  # the second use wipes the entry
    resume.set()
    with pytest.raises(ProviderUnavailableError) as info:
        await task
    assert info.value.retryable
    assert USER_KEY not in info.value.message and "[redacted]" in info.value.message
    assert seen == [USER_KEY, USER_KEY]


async def test_the_error_path_never_raises_even_on_a_wiped_key(keys: KeyService, clock: FakeClock) -> None:
    held: list[Secret] = []

    async def upstream(call: Call) -> AsyncGenerator[Chunk, None]:
        assert call.api_key is not None
        held.append(call.api_key)
        call.api_key.wipe()  # type: ignore[attr-defined]
        raise ProviderUnavailableError("upstream HTTP 502")
        yield FINAL

    layer = KeyLayer(upstream, keys=keys, modes={"main": "preferred"})
    with pytest.raises(ProviderUnavailableError):
        await _drain(layer(call_on_target(clock)))


async def test_the_attempt_wipes_its_lease_when_it_ends(keys: KeyService, clock: FakeClock) -> None:
    held: list[Secret] = []

    async def upstream(call: Call) -> AsyncGenerator[Chunk, None]:
        assert call.api_key is not None
        held.append(call.api_key)
        yield FINAL

    layer = KeyLayer(upstream, keys=keys, modes={"main": "preferred"})
    await _drain(layer(call_on_target(clock)))
    with pytest.raises(RuntimeError, match="wiped"):
        held[0].reveal()


async def _drain(stream: AsyncGenerator[Chunk, None]) -> list[Chunk]:
    return [c async for c in stream]
