"""The threads a key backend's blocking client (boto3, hvac) runs on, each call waited for at most a
bound of the backend's.

The clients' own timeouts are per socket operation (connect, then each read): a backend, or a proxy in
front of it, that trickles its answer a byte at a time never trips them, and the call would never end.
Waiting at most `limit` seconds (on the injected clock) answers the caller, a cold-key flight of the
decrypted-key cache and RegisterKey KEY_BACKEND_UNAVAILABLE, and drops the call from the queue if it
had not started. What Python cannot do is stop the thread: it stays with the trickling socket until
the peer stops; `aclose` does not wait for it past the bound either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ALL_COMPLETED, ThreadPoolExecutor
from typing import TypeVar

from sidecar.core.clock import Clock
from sidecar.core.errors import KeyBackendUnavailableError

T = TypeVar("T")
RETRY_AFTER_SECONDS = 1.0


class BlockingPool:
    """`workers` threads named `name`; `what` names the backend in errors ("AWS KMS", "Vault")."""

    def __init__(self, name: str, *, workers: int, limit: float, clock: Clock, what: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._limit, self._clock, self._what = limit, clock, what
        self._running: set[asyncio.Future[object]] = set()

    async def run(self, call: Callable[[], T]) -> T:
        """`call()` on a thread of the pool; KeyBackendUnavailableError when it takes over the bound."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        self._running.add(future)  # type: ignore[arg-type]
        future.add_done_callback(self._running.discard)
        try:
            async with self._clock.timeout(self._limit):
                return await future
        except TimeoutError:
            if not future.cancelled():  # the call's own (a socket timeout): its caller classifies it
                raise
            raise KeyBackendUnavailableError(
                f"{self._what} did not answer within {self._limit:g} s",
                metadata={"backendError": "Timeout"},
                retry_after=RETRY_AFTER_SECONDS,
            ) from None

    async def aclose(self) -> None:
        """Drop the queued calls and wait for the running ones, at most the bound; release the threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._running:
            await self._clock.wait(set(self._running), within=self._limit, return_when=ALL_COMPLETED)
