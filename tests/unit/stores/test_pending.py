"""PendingWrites report a write's failure as the call that added it: a background worker started by
one call must not put that call's request id on the log lines of every later call's writes."""

from __future__ import annotations

import asyncio
import contextvars

from sidecar.stores.pending import PendingWrites
from sidecar.telemetry.logging import REQUEST_ID
from tests.conftest import FakeClock


class Down(Exception):
    pass


async def test_each_failure_is_reported_in_the_context_of_the_call_that_added_it(clock: FakeClock) -> None:
    reported: list[str | None] = []

    async def attempt(key: str, value: int) -> None:
        raise Down

    writes: PendingWrites[str, int] = PendingWrites(
        clock, attempt=attempt, failures=(Down,), on_error=lambda exc: reported.append(REQUEST_ID.get())
    )

    def add_as(request_id: str, key: str) -> None:
        REQUEST_ID.set(request_id)
        writes.add(key, 0, until=clock.monotonic() + 60)

    contextvars.copy_context().run(add_as, "call-a", "k1")  # starts the worker
    for _ in range(5):
        await asyncio.sleep(0)
    contextvars.copy_context().run(add_as, "call-b", "k2")  # the worker backs off: k2 waits
    clock.advance(1)
    for _ in range(5):
        await asyncio.sleep(0)
    assert reported == ["call-a", "call-b"]
    await writes.aclose()


async def test_a_write_waiting_is_seen_until_it_no_longer_matters(clock: FakeClock) -> None:
    async def attempt(key: str, value: int) -> None:
        raise Down

    writes: PendingWrites[str, int] = PendingWrites(
        clock, attempt=attempt, failures=(Down,), on_error=lambda exc: None
    )
    writes.add("k", 7, until=clock.monotonic() + 60)
    assert (writes.waiting("k"), writes.waiting("other")) == (7, None)
    clock.advance(60)  # its round may not have run yet: it is not seen past its time all the same
    assert writes.waiting("k") is None
    await writes.aclose()
