"""Hostile upstreams written byte for byte on a raw loopback socket (what aiohttp would refuse to
send: header bytes outside ASCII, lying framing), seen through a real server and gRPC client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.conftest import user
from tests.integration.test_failures import ENV, two_deployments
from tests.support.api import generate_request, stream_request, text_of
from tests.support.upstream import Reply, Upstream, fixture

pytestmark = pytest.mark.integration

Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


class RawUpstream:
    """Reads each request (head and content-length body), then writes what `answer` writes."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    0,
                )  # fmt: skip
                await reader.readexactly(length)
                self.requests += 1
                await self.answer(writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[Answer], Awaitable[RawUpstream]]]:
    started: list[RawUpstream] = []

    async def start(answer: Answer) -> RawUpstream:
        server = await RawUpstream(answer).start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.close()


def writes(data: bytes) -> Answer:
    async def answer(writer: asyncio.StreamWriter) -> None:
        writer.write(data)

    return answer


def json_answer(body: bytes, *, status: bytes = b"200 OK", headers: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n" + headers
        + b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )  # fmt: skip


async def generate(s: Any) -> Any:
    return await s.stub.Generate(generate_request(messages=[user("Hi")]), timeout=10)


async def test_a_retry_after_of_superscript_digits_is_ignored_not_a_crash(
    serve: Any, raw: Any, upstream2: Upstream
) -> None:
    """`Retry-After: ²` (byte 0xB2, a digit to str.isdigit but not to float): the 429 was INTERNAL
    for the caller and no other deployment was tried. It is a 429 without a usable wait."""
    limited = json_answer(
        b'{"error":{"message":"slow down"}}',
        status=b"429 Too Many Requests",
        headers=b"retry-after: \xb2\xb3\r\n",
    )
    first = await raw(writes(limited))
    upstream2.push(Reply.json("openai/chat_completion.json"))
    s = await serve({"policy": two_deployments(first.url, upstream2.url)}, ENV)
    reply = await generate(s)
    assert text_of(reply)
    assert [(a.deployment, a.outcome) for a in reply.summary.attempts] == [
        ("first", "PROVIDER_RATE_LIMITED"),
        ("second", "OK"),
    ]


async def test_a_keep_alive_timeout_of_superscript_digits_is_ignored_not_the_answer_refused(
    serve: Any, raw: Any, upstream2: Upstream
) -> None:
    """`Keep-Alive: timeout=²` on a good answer: float() raised inside the parser's callback and the
    answer was refused as not HTTP/1.1 (a bad response, the next deployment tried). The header is
    advice about the connection; one that does not parse is no advice."""
    answer = json_answer(fixture("openai/chat_completion.json"), headers=b"keep-alive: timeout=\xb2\r\n")
    first = await raw(writes(answer))
    s = await serve({"policy": two_deployments(first.url, upstream2.url)}, ENV)
    reply = await generate(s)
    assert text_of(reply)
    assert [(a.deployment, a.outcome) for a in reply.summary.attempts] == [("first", "OK")]


async def test_a_stream_whose_media_type_is_in_capitals_is_read(
    serve: Any, raw: Any, upstream2: Upstream
) -> None:
    """Media types are case-insensitive (RFC 9110 8.3.1): `Text/Event-Stream` was refused as a bad
    response, and every stream of that upstream failed over."""
    events = fixture("openai/stream.sse")
    head = b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; Charset=UTF-8\r\n"
    answer = head + b"content-length: " + str(len(events)).encode() + b"\r\n\r\n" + events
    first = await raw(writes(answer))
    s = await serve({"policy": two_deployments(first.url, upstream2.url)}, ENV)
    call = s.stub.StreamGenerate(stream_request(messages=[user("Hi")]), timeout=10)
    received = [e async for e in call]
    assert "".join(e.delta.text for e in received if e.HasField("delta"))
    assert [(a.deployment, a.outcome) for a in received[-1].result.summary.attempts] == [("first", "OK")]


async def test_an_answer_complete_before_the_deadline_is_not_lost_to_the_connection_drain(
    serve: Any, raw: Any, upstream2: Upstream
) -> None:
    """After `[DONE]` the adapter reads on (up to 0.25 s) so the connection can go back to the pool,
    and the caller's result waits for it. An upstream that holds the connection open after a whole
    answer sent 0.3 s into a 0.5 s call made the caller's result come at 0.55 s: DEADLINE_EXCEEDED
    for an answer that was complete. The drain takes at most half the time left."""

    async def answer(writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.3)
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
        writer.write(head + fixture("openai/stream.sse"))
        await writer.drain()
        await asyncio.sleep(5)  # the body's end is the close, which does not come

    first = await raw(answer)
    s = await serve({"policy": two_deployments(first.url, upstream2.url, read_timeout_seconds=5)}, ENV)
    call = s.stub.StreamGenerate(stream_request(messages=[user("Hi")]), timeout=0.5)
    received = [e async for e in call]
    assert text_of(received[-1].result) == "Hello! How can I help you today?"
