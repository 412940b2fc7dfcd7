"""Stopping a background task: the one way every loop the sidecar starts (probes, the ledger writer,
the escalation sweeper, the allocator trimmer, the HTTP pool's idle reaper) is stopped."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def detached(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A background task that belongs to no call: it runs in an empty context, so its log lines do not
    carry the request id of the call that happened to start it (a task inherits its starter's)."""
    return asyncio.get_running_loop().create_task(work, context=contextvars.Context())


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` and wait until it has ended. Its own cancellation is swallowed; a cancellation of
    the caller while it waits is passed on (a bare `suppress(CancelledError)` would eat that too);
    an exception the task ended with is raised."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise  # the caller itself was cancelled, not only the task it stopped
