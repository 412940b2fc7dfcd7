"""Near-limit events to an HTTP endpoint: queued off the request path, POSTed as JSON, retried.

`send` never blocks or raises: a full queue drops the event (and logs it). One background task
POSTs each event, retrying failures (connection errors, non-2xx; a redirect is not followed) with
exponential backoff up to `max_attempts`; `aclose` stops it. An event that is given up is logged
in the context of the call that sent it (its request id, not that of the call that started the task).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging

import aiohttp

from sidecar.config.quota import WebhookConfig
from sidecar.core.clock import Clock
from sidecar.core.tasks import detached
from sidecar.quota.signals import NearLimitEvent

_log = logging.getLogger("sidecar.quota.webhook")


class WebhookSender:
    def __init__(self, config: WebhookConfig, *, clock: Clock) -> None:
        self._config, self._clock = config, clock
        self._queue: asyncio.Queue[tuple[NearLimitEvent, contextvars.Context]] = asyncio.Queue(
            config.queue_size
        )
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.delivered = 0
        self.failed = 0

    def send(self, event: NearLimitEvent) -> None:
        if self._task is None:
            self._task = detached(self._run())
        try:
            self._queue.put_nowait((event, contextvars.copy_context()))
        except asyncio.QueueFull:
            self.failed += 1
            _log.warning("quota webhook queue full: event dropped", extra={"limit": event.limit})

    async def drain(self) -> None:
        """Wait until every queued event is delivered or given up (tests, shutdown)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            event, context = await self._queue.get()
            try:
                problem = await self._deliver(event)
                if problem is not None:
                    context.run(self._gave_up, event, problem)
            finally:
                self._queue.task_done()

    async def _deliver(self, event: NearLimitEvent) -> str | None:
        """None once delivered, else the last attempt's problem (every attempt failed)."""
        c = self._config
        body = json.dumps(event.as_json()).encode()
        for attempt in range(1, c.max_attempts + 1):
            problem = await self._post(body)
            if problem is None:
                self.delivered += 1
                return None
            if attempt == c.max_attempts:
                break
            await self._clock.sleep(min(c.max_backoff_seconds, c.backoff_seconds * 2 ** (attempt - 1)))
        return problem

    def _gave_up(self, event: NearLimitEvent, problem: str) -> None:
        self.failed += 1
        _log.error("quota webhook gave up", extra={"limit": event.limit, "error": problem})

    async def _post(self, body: bytes) -> str | None:
        """None when delivered, else what went wrong."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._config.timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.post(
                self._config.url,
                data=body,
                headers={"content-type": "application/json"},
                allow_redirects=False,  # a 3xx is no delivery (a 302 followed is a GET without the event)
            ) as resp:  # the status is the answer: the body is never read (it may be endless or huge)
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
