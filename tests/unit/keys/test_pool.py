"""BlockingPool: a blocking call waited for at most its bound on the injected clock."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sidecar.core.errors import KeyBackendUnavailableError
from sidecar.keys.pool import BlockingPool
from tests.conftest import FakeClock


async def test_a_call_past_the_bound_is_backend_unavailable_and_close_does_not_wait_for_it(
    clock: FakeClock,
) -> None:
    pool = BlockingPool("test-pool", workers=1, limit=30.0, clock=clock, what="Vault")
    release = threading.Event()
    call = asyncio.ensure_future(pool.run(lambda: release.wait(60)))
    queued = asyncio.ensure_future(pool.run(lambda: "never started"))
    await asyncio.sleep(0)
    clock.advance(30)
    for waiting in (call, queued):
        with pytest.raises(KeyBackendUnavailableError) as caught:
            await waiting
        assert caught.value.message == "Vault did not answer within 30 s"
        assert caught.value.metadata["backendError"] == "Timeout" and caught.value.retry_after == 1.0
    await pool.aclose()  # the first call's thread still waits: not for it
    release.set()


async def test_a_calls_own_timeout_is_its_own(clock: FakeClock) -> None:
    def times_out() -> None:
        raise TimeoutError("socket read timed out")

    pool = BlockingPool("test-pool", workers=1, limit=30.0, clock=clock, what="Vault")
    with pytest.raises(TimeoutError, match="socket read"):
        await pool.run(times_out)
    assert await pool.run(lambda: 42) == 42
    await pool.aclose()
