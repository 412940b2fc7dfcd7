"""The near-limit webhook against a real loopback HTTP server: delivery, retries with backoff, give-up."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from sidecar.config.quota import WebhookConfig
from sidecar.quota.signals import NearLimitEvent, QuotaSignals
from sidecar.quota.webhook import WebhookSender
from sidecar.telemetry.logging import REQUEST_ID
from tests.support.clock import StepClock

EVENT = NearLimitEvent(
    limit="req", metric="requests", scope="user", tenant="t", user="u", window="day",
    level=90, used=9, limit_value=10, window_end=1_800_000_000.0, shadow=False,
)  # fmt: skip


@dataclass
class Receiver:
    statuses: list[int]
    bodies: list[dict[str, object]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(json.loads(await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(statuses=[])
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    r.url = f"http://127.0.0.1:{port}/hook"
    yield r
    await runner.cleanup()


async def test_delivers_after_retrying_with_backoff(receiver: Receiver) -> None:
    receiver.statuses = [500, 503]
    clock = StepClock()
    sender = WebhookSender(WebhookConfig(url=receiver.url, backoff_seconds=0.5), clock=clock)
    signals = QuotaSignals(webhook=sender)
    signals.near_limit(EVENT)  # returns at once: the POST happens off the request path
    assert receiver.bodies == []
    await sender.drain()
    await sender.aclose()
    assert clock.sleeps == [0.5, 1.0]
    assert len(receiver.bodies) == 3 and sender.delivered == 1
    body = receiver.bodies[-1]
    assert body["event"] == "quota.near_limit" and body["level"] == 90 and body["limit"] == "req"
    assert signals.near_limit_total[("req", 90)] == 1


async def test_gives_up_after_max_attempts(receiver: Receiver) -> None:
    receiver.statuses = [500] * 10

    sender = WebhookSender(WebhookConfig(url=receiver.url, max_attempts=3), clock=StepClock())
    sender.send(EVENT)
    await sender.drain()
    await sender.aclose()
    assert len(receiver.bodies) == 3 and sender.failed == 1 and sender.delivered == 0


async def test_unreachable_endpoint_is_retried_then_dropped() -> None:
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/hook"
    sender = WebhookSender(WebhookConfig(url=url, max_attempts=2, timeout_seconds=2), clock=StepClock())
    sender.send(EVENT)
    await sender.drain()
    await sender.aclose()
    assert sender.failed == 1


async def test_a_give_up_is_logged_as_the_call_whose_event_it_was(receiver: Receiver) -> None:
    """The sender's task is started by the first call that crosses a level; a later call's event that
    is given up is logged with that later call's request id, not the first one's."""
    receiver.statuses = [500] * 10
    sender = WebhookSender(WebhookConfig(url=receiver.url, max_attempts=1), clock=StepClock())
    logged: list[str | None] = []

    class RequestIds(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(REQUEST_ID.get())  # what the JSON formatter puts in the line

    def send_as(request_id: str) -> None:
        REQUEST_ID.set(request_id)
        sender.send(EVENT)

    handler = RequestIds()
    logging.getLogger("sidecar.quota.webhook").addHandler(handler)
    try:
        contextvars.copy_context().run(send_as, "call-a")
        contextvars.copy_context().run(send_as, "call-b")
        await sender.drain()
    finally:
        logging.getLogger("sidecar.quota.webhook").removeHandler(handler)
        await sender.aclose()
    assert logged == ["call-a", "call-b"]


async def test_a_redirect_is_not_a_delivery() -> None:
    """An endpoint that answers 302 (moved) is a failed delivery, given up with the status logged:
    following it turned the POST into a GET of the new location, whose 200 counted the event
    delivered though nobody received it."""
    posted: list[bytes] = []

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def elsewhere(request: web.Request) -> web.Response:
        if request.method == "POST":
            posted.append(await request.read())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", moved)
    app.router.add_route("*", "/elsewhere", elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sender = WebhookSender(
        WebhookConfig(url=f"http://127.0.0.1:{port}/hook", max_attempts=2), clock=StepClock()
    )
    try:
        sender.send(EVENT)
        await sender.drain()
    finally:
        await sender.aclose()
        await runner.cleanup()
    assert (sender.delivered, sender.failed, posted) == (0, 1, [])
