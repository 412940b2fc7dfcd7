"""The near-limit webhook's answer is its status: a receiver that answers 200 and then sends a body
without end (or a huge one) has the event, and is neither read into memory nor posted to again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sidecar.config.quota import WebhookConfig
from sidecar.quota.signals import QuotaSignals
from sidecar.quota.webhook import WebhookSender
from tests.support.clock import StepClock
from tests.unit.quota.test_webhook import EVENT

pytestmark = pytest.mark.integration


@pytest.fixture
async def endless() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A receiver that answers 200 with a 1 GB Content-Length and sends 64 KiB of it, then nothing."""
    posts: list[bytes] = []
    stalled = asyncio.Event()  # set at teardown only: the rest of the body never comes
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        posts.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 65536)
        await writer.drain()
        await stalled.wait()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/hook", posts
    server.close()
    stalled.set()  # the handlers end
    for writer in writers:
        writer.close()
    await server.wait_closed()


async def test_a_200_is_delivered_whatever_its_body_does(endless: tuple[str, list[bytes]]) -> None:
    url, posts = endless
    sender = WebhookSender(WebhookConfig(url=url, timeout_seconds=1.0, max_attempts=3), clock=StepClock())
    QuotaSignals(webhook=sender).near_limit(EVENT)
    await asyncio.wait_for(sender.drain(), 10)
    await sender.aclose()
    assert (sender.delivered, sender.failed, len(posts)) == (1, 0, 1)
