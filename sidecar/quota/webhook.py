"""Near-limit events to an HTTP endpoint: queued off the request path, POSTed as JSON, retried.

`send` never blocks or raises: a full queue drops the event (and logs it). One background task
POSTs each event, retrying failures (connection errors, non-2xx; a redirect is not followed) with
exponential backoff up to `max_attempts`; `aclose` stops it. An event that is given up is logged
in the context of the call that sent it (its request id, not that of the call that started the task).

With a secret, every POST is signed as the Standard Webhooks specification says: `webhook-id` (the
event's, the same on every retry, so a receiver can drop a repeat), `webhook-timestamp` (this
attempt's, integer Unix seconds, so a receiver can refuse a replay) and `webhook-signature`
("v1," + base64 of HMAC-SHA256 over "<id>.<timestamp>.<body>", keyed with the decoded secret). The key
lives only in the signer: no log line, metric or error carries it.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import hmac
import json
import logging
import uuid

import aiohttp
from pydantic import SecretStr

from sidecar.config.quota import WebhookConfig, webhook_key
from sidecar.core.clock import Clock
from sidecar.core.tasks import detached
from sidecar.quota.signals import NearLimitEvent

_log = logging.getLogger("sidecar.quota.webhook")


class WebhookSigner:
    """The Standard Webhooks headers of one attempt. Holds the key; its repr does not."""

    __slots__ = ("_key",)

    def __init__(self, secret: SecretStr) -> None:
        self._key = webhook_key(secret.get_secret_value())

    def __repr__(self) -> str:
        return "WebhookSigner(<secret>)"

    def headers(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
        digest = hmac.new(self._key, signed, hashlib.sha256).digest()
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }


class WebhookSender:
    def __init__(self, config: WebhookConfig, *, clock: Clock, secret: SecretStr | None = None) -> None:
        self._config, self._clock = config, clock
        self._signer = WebhookSigner(secret) if secret is not None else None
        self._queue: asyncio.Queue[tuple[NearLimitEvent, str, contextvars.Context]] = asyncio.Queue(
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
            self._queue.put_nowait((event, f"msg_{uuid.uuid4().hex}", contextvars.copy_context()))
        except asyncio.QueueFull:
            self.failed += 1
            _log.warning("quota webhook queue full: event dropped", extra={"limit": event.limit})

    async def drain(self) -> None:
        """Wait until every queued event is delivered or given up (tests, shutdown)."""
        await self._queue.join()

    async def _run(self) -> None:
        while True:
            event, msg_id, context = await self._queue.get()
            try:
                problem = await self._deliver(event, msg_id)
                if problem is not None:
                    context.run(self._gave_up, event, problem)
            finally:
                self._queue.task_done()

    async def _deliver(self, event: NearLimitEvent, msg_id: str) -> str | None:
        """None once delivered, else the last attempt's problem (every attempt failed). Each attempt
        is signed anew (its own timestamp) under the event's one id."""
        c = self._config
        body = json.dumps(event.as_json()).encode()
        for attempt in range(1, c.max_attempts + 1):
            headers = {"content-type": "application/json"}
            if self._signer is not None:
                headers |= self._signer.headers(msg_id, int(self._clock.wall()), body)
            problem = await self._post(body, headers)
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

    async def _post(self, body: bytes, headers: dict[str, str]) -> str | None:
        """None when delivered, else what went wrong."""
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._config.timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
        try:
            async with self._session.post(
                self._config.url,
                data=body,
                headers=headers,
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
