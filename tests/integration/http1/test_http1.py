"""The upstream HTTP/1.1 client (sidecar/providers/http1.py and http_pool.py) against raw loopback
servers that misbehave the ways real upstreams and proxies do: every answer is bytes written by hand."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sidecar.config.schema import HttpSettings
from sidecar.core.clock import Deadline, FakeClock, SystemClock
from sidecar.core.errors import (
    ProviderMalformedError,
    ProviderRejectedError,
    ProviderUnavailableError,
    UpstreamBusyError,
)
from sidecar.providers import _http
from sidecar.providers._http import HttpClient, Timeouts
from tests.support.tls import make_pki

Handler = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK_BODY = b'{"ok": true}'
SSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"


def answer(body: bytes = OK_BODY, *, extra: str = "", status: str = "200 OK") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


@dataclass
class Upstream:
    port: int = 0
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/x"


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


@asynccontextmanager
async def upstream(handler: Handler, *, tls: object = None) -> AsyncIterator[Upstream]:
    state = Upstream()
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(state, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the test is over
        finally:
            state.open_now -= 1
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


async def keep_alive(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        state.requests.append(await read_request(reader))
        writer.write(answer())
        await writer.drain()


def client(clock: object = None, **settings: object) -> HttpClient:
    return HttpClient(HttpSettings(**settings), clock or SystemClock())  # type: ignore[arg-type]


def timeouts(clock: object = None) -> Timeouts:
    return Timeouts(5.0, Deadline.after(None, clock or SystemClock()))  # type: ignore[arg-type]


async def post(http: HttpClient, url: str, **headers: str) -> object:
    return await http.post_json(url, headers=headers, body={"q": 1}, timeouts=timeouts())


async def test_connections_are_kept_alive_and_reused() -> None:
    async with upstream(keep_alive) as up:
        http = client()
        for _ in range(5):
            assert await post(http, up.url) == {"ok": True}
        await http.aclose()
    assert up.connections == 1 and len(up.requests) == 5
    first = up.requests[0].decode()
    assert first.startswith("POST /v1/x HTTP/1.1\r\n") and f"host: 127.0.0.1:{up.port}" in first
    assert "accept-encoding: identity" in first and 'content-length: 7\r\n\r\n{"q":1}' in first


async def test_an_answer_that_closes_is_not_reused() -> None:
    async def close_each(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.requests.append(await read_request(reader))
        writer.write(answer(extra="connection: close\r\n"))
        await writer.drain()

    async with upstream(close_each) as up:
        http = client()
        for _ in range(3):
            assert await post(http, up.url) == {"ok": True}
        await http.aclose()
    assert up.connections == 3


def drops_reused(state: Upstream) -> Handler:
    """Answers the first request of a connection, then drops the connection at its next request
    (the keep-alive race), on the first connection only."""

    async def handler(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.requests.append(await read_request(reader))
        writer.write(answer())
        await writer.drain()
        if state.connections == 1:
            state.requests.append(await read_request(reader))
            return  # closed without answering

    return handler


async def test_a_get_on_a_reused_connection_the_server_closed_is_sent_once_more() -> None:
    async with upstream(drops_reused(Upstream())) as up:
        http = client()
        for _ in range(2):
            assert await http.get_json(up.url, headers={}, timeouts=timeouts()) == {"ok": True}
        await http.aclose()
    assert up.connections == 2 and len(up.requests) == 3


async def test_a_post_on_a_reused_connection_the_server_closed_is_not_sent_again() -> None:
    """The upstream may have started (and billed) it: the route's retry policy decides, not the pool."""
    async with upstream(drops_reused(Upstream())) as up:
        http = client()
        assert await post(http, up.url) == {"ok": True}
        with pytest.raises(ProviderUnavailableError, match="closed before answering"):
            await post(http, up.url)
        assert await post(http, up.url) == {"ok": True}
        await http.aclose()
    assert up.connections == 2 and len(up.requests) == 3


async def test_the_servers_keep_alive_timeout_shortens_reuse() -> None:
    clock = FakeClock()

    async def announces(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            state.requests.append(await read_request(reader))
            writer.write(answer(extra="keep-alive: timeout=5, max=100\r\n"))
            await writer.drain()

    async with upstream(announces) as up:
        http = HttpClient(HttpSettings(keepalive_seconds=30), clock)
        await http.post_json(up.url, headers={}, body={}, timeouts=timeouts(clock))
        clock.advance(3.5)
        await http.post_json(up.url, headers={}, body={}, timeouts=timeouts(clock))
        assert up.connections == 1
        clock.advance(4.5)  # past 5 - 1 seconds idle: the server may be closing it right now
        await http.post_json(up.url, headers={}, body={}, timeouts=timeouts(clock))
        await http.aclose()
    assert up.connections == 2


async def test_a_new_connection_closed_before_answering_is_not_retried() -> None:
    async def hang_up(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.requests.append(await read_request(reader))

    async with upstream(hang_up) as up:
        http = client()
        with pytest.raises(ProviderUnavailableError, match="closed before answering"):
            await post(http, up.url)
        await http.aclose()
    assert up.connections == 1


def raw_answer(data: bytes, *, close: bool = True) -> Handler:
    async def handler(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.requests.append(await read_request(reader))
        writer.write(data)
        await writer.drain()
        if not close:
            await reader.read()

    return handler


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        (answer(b"x" * 100)[:-90], ProviderUnavailableError, "broke mid-answer"),
        (b"hello there\r\n\r\n", ProviderMalformedError, "not HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n", ProviderMalformedError, "over 65536"),
        (
            b"HTTP/1.1 200 OK\r\n"
            + b"".join(b"x-h%d: 1\r\n" % i for i in range(300))
            + b"content-length: 0\r\n\r\n",
            ProviderMalformedError,
            "more than 200 headers",
        ),
        (answer(extra="content-encoding: gzip\r\n"), ProviderMalformedError, "'gzip'-encoded"),
        (
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\nhello",
            ProviderMalformedError,
            "HTTP",
        ),
    ],
    ids=["close-mid-body", "not-http", "huge-header", "too-many-headers", "gzip", "two-lengths"],
)
async def test_broken_answers_are_classified(data: bytes, error: type[Exception], match: str) -> None:
    async with upstream(raw_answer(data)) as up:
        http = client()
        with pytest.raises(error, match=match):
            await post(http, up.url)
        await http.aclose()


async def test_a_body_delimited_by_the_close_is_read_whole() -> None:
    body = json.dumps({"text": "y" * 5000}).encode()
    data = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n" + body
    async with upstream(raw_answer(data)) as up:
        http = client()
        assert await post(http, up.url) == {"text": "y" * 5000}
        await http.aclose()


async def test_chunked_answers_and_interim_answers_are_read_and_the_connection_reused() -> None:
    chunked = b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n'

    async def handler(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            state.requests.append(await read_request(reader))
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" + chunked)
            await writer.drain()

    async with upstream(handler) as up:
        http = client()
        assert await post(http, up.url) == {"a": 1}
        assert await post(http, up.url) == {"a": 1}
        await http.aclose()
    assert up.connections == 1


async def test_bytes_after_the_answer_poison_the_connection() -> None:
    async def handler(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            state.requests.append(await read_request(reader))
            writer.write(answer() + answer(b'{"smuggled": 1}'))
            await writer.drain()

    async with upstream(handler) as up:
        http = client()
        assert await post(http, up.url) == {"ok": True}
        assert await post(http, up.url) == {"ok": True}
        await http.aclose()
    assert up.connections == 2


@pytest.mark.parametrize(
    "headers",
    [{"authorization": "Bearer sk-a\r\nx-evil: 1"}, {"x-key": "a\nb"}, {"bad name": "v"}, {"x-k": "\x00"}],
)
async def test_a_header_that_is_not_http_is_refused_before_anything_is_sent(headers: dict[str, str]) -> None:
    async with upstream(keep_alive) as up:
        http = client()
        with pytest.raises(ProviderRejectedError, match="nothing was sent") as caught:
            await post(http, up.url, **headers)
        assert "sk-a" not in str(caught.value)
        await http.aclose()
    assert up.connections == 0


async def test_the_connection_limit_queues_requests() -> None:
    async def slow(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            state.requests.append(await read_request(reader))
            await asyncio.sleep(0.02)
            writer.write(answer())
            await writer.drain()

    async with upstream(slow) as up:
        http = client(max_connections=2)
        results = await asyncio.gather(*(post(http, up.url) for _ in range(8)))
        await http.aclose()
    assert results == [{"ok": True}] * 8
    assert up.most_open <= 2 and len(up.requests) == 8


async def test_an_idle_connection_past_keepalive_is_not_reused() -> None:
    clock = FakeClock()
    async with upstream(keep_alive) as up:
        http = HttpClient(HttpSettings(keepalive_seconds=10), clock)
        await http.post_json(up.url, headers={}, body={}, timeouts=timeouts(clock))
        clock.advance(9)
        await http.post_json(up.url, headers={}, body={}, timeouts=timeouts(clock))
        assert up.connections == 1
        clock.advance(11)
        await http.post_json(up.url, headers={}, body={}, timeouts=timeouts(clock))
        await http.aclose()
    assert up.connections == 2


async def test_a_large_streamed_answer_arrives_whole_with_reading_paused_and_resumed() -> None:
    piece = b"data: " + b"z" * 4000 + b"\n\n"
    count = 600  # 2.4 MB, many times the pause threshold

    async def handler(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for _ in range(count):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with upstream(handler) as up:
        http = client()
        got = bytearray()
        reads = http.post_stream(up.url, headers={}, body={}, timeouts=timeouts(), kind="text/event-stream")
        async with aclosing(reads):
            async for data in reads:
                got += data
                await asyncio.sleep(0)
        await http.aclose()
    assert bytes(got) == piece * count


async def test_an_abandoned_stream_closes_its_connection_and_frees_its_slot() -> None:
    async def handler(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            state.requests.append(await read_request(reader))
            if len(state.requests) == 1:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 1000\r\n\r\n"
                )
                writer.write(b"data: 1\n\n")
                await writer.drain()
                await reader.read()  # the client goes away mid-answer
                return
            writer.write(answer())
            await writer.drain()

    async with upstream(handler) as up:
        http = client(max_connections=1)
        reads = http.post_stream(up.url, headers={}, body={}, timeouts=timeouts(), kind="text/event-stream")
        async with aclosing(reads):
            async for _ in reads:
                break
        assert await asyncio.wait_for(post(http, up.url), 5) == {"ok": True}
        await http.aclose()
    assert up.connections == 2


async def test_tls_is_checked_against_the_configured_ca(tmp_path: Path) -> None:
    import ssl

    pki = make_pki(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.server_cert, pki.server_key)
    async with upstream(keep_alive, tls=server_tls) as up:
        url = f"https://127.0.0.1:{up.port}/v1/x"
        trusted = client(ca_file=pki.ca)
        assert await post(trusted, url) == {"ok": True}
        await trusted.aclose()
        untrusted = client()
        with pytest.raises(ProviderUnavailableError, match="TLS failed"):
            await post(untrusted, url)
        await untrusted.aclose()
    assert up.requests[0].decode().startswith("POST /v1/x HTTP/1.1\r\n")


async def test_a_refused_connection_is_unavailable() -> None:
    async with upstream(keep_alive) as up:
        port = up.port
    http = client()
    with pytest.raises(ProviderUnavailableError, match="connection failed"):
        await post(http, f"http://127.0.0.1:{port}/v1/x")
    await http.aclose()


async def test_idle_connections_are_closed_when_their_keep_alive_ends() -> None:
    clock = FakeClock()
    async with upstream(keep_alive) as up:
        http = HttpClient(HttpSettings(keepalive_seconds=10), clock)
        await asyncio.gather(
            *(http.post_json(up.url, headers={}, body={}, timeouts=timeouts(clock)) for _ in range(3))
        )
        assert up.open_now == 3
        clock.advance(9.9)
        await asyncio.sleep(0.05)
        assert up.open_now == 3
        clock.advance(0.2)
        for _ in range(100):
            if up.open_now == 0:
                break
            await asyncio.sleep(0.01)
        assert up.open_now == 0
        await http.aclose()


class Waits:
    """Records the upstream waits the client reports (the call's outcome in the sidecar)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []

    def upstream_wait_started(self, now: float) -> None:
        self.events.append(("start", now))

    def upstream_wait_ended(self, now: float) -> None:
        self.events.append(("end", now))

    def intervals(self) -> list[float]:
        assert [kind for kind, _ in self.events] == ["start", "end"] * (len(self.events) // 2)
        return [self.events[i + 1][1] - self.events[i][1] for i in range(0, len(self.events), 2)]


async def test_the_waits_on_the_upstream_are_reported_and_nothing_else() -> None:
    async def slow(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.requests.append(await read_request(reader))
        await asyncio.sleep(0.05)
        writer.write(answer())
        await writer.drain()

    waits = Waits()
    async with upstream(slow) as up:
        http = client()
        result = await http.post_json(
            up.url,
            headers={},
            body={"q": 1},
            timeouts=Timeouts(5.0, Deadline.after(None, SystemClock()), waits),
        )
        await http.aclose()
    assert result == {"ok": True}
    head, body = waits.intervals()  # the request and the answer's head; then the body
    assert head >= 0.05 and body < 0.05


async def test_each_read_of_a_stream_is_a_reported_wait() -> None:
    async def events(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE + b"transfer-encoding: chunked\r\n\r\n")
        for i in range(3):
            await asyncio.sleep(0.02)
            piece = b"data: %d\n\n" % i
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    waits = Waits()
    async with upstream(events) as up:
        http = client()
        timed = Timeouts(5.0, Deadline.after(None, SystemClock()), waits)
        reads = http.post_stream(up.url, headers={}, body={}, timeouts=timed, kind="text/event-stream")
        async with aclosing(reads):
            got = [data async for data in reads]
        await http.aclose()
    assert b"".join(got) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    spans = waits.intervals()
    assert len(spans) == len(got) + 2  # the head, each read, the end of the body
    assert sum(spans) >= 0.05  # three 20 ms silences; each wait starts a little after the last read


async def test_requests_queued_for_a_busy_host_do_not_hold_back_another_host() -> None:
    release = asyncio.Event()

    async def stuck(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.requests.append(await read_request(reader))
        await release.wait()
        writer.write(answer())
        await writer.drain()

    async with upstream(stuck) as busy, upstream(keep_alive) as other:
        http = client(max_connections=2, max_connections_per_host=1)
        queued = [asyncio.ensure_future(post(http, busy.url)) for _ in range(3)]  # 1 sent, 2 waiting
        await asyncio.sleep(0.05)
        assert await asyncio.wait_for(post(http, other.url), 2) == {"ok": True}
        release.set()
        assert await asyncio.gather(*queued) == [{"ok": True}] * 3
        await http.aclose()


async def test_a_stream_that_never_ends_is_cut_at_the_stream_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid events at full speed and no end (an upstream ignoring max_tokens, or looping): the
    stream is a bad answer once it passes the bound (64 MiB; 1 MiB here), not relayed for ever."""
    monkeypatch.setattr(_http, "_MAX_STREAM_BODY", 1 << 20, raising=False)
    piece = b"data: " + b"z" * 4000 + b"\n\n"

    async def handler(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            for _ in range(1000):  # 4 MB, then a clean end
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        await reader.read()

    async with upstream(handler) as up:
        http = client()
        got = 0
        reads = http.post_stream(up.url, headers={}, body={}, timeouts=timeouts(), kind="text/event-stream")
        with pytest.raises(ProviderMalformedError, match="stream larger than"):
            async with aclosing(reads):
                async for data in reads:
                    got += len(data)
        await http.aclose()
    assert got <= 1 << 20


async def test_no_free_connection_slot_is_the_sidecars_overload_not_the_upstreams_timeout() -> None:
    """Every slot to the upstream held past the wait: UpstreamBusyError (UNAVAILABLE / OVERLOADED,
    which leaves the deployment's breaker alone), not ProviderTimeoutError (which counts against it);
    the request that held the slot is still answered, and so is the next once the slot is free."""
    release = asyncio.Event()

    async def stuck(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            state.requests.append(await read_request(reader))
            await release.wait()
            writer.write(answer())
            await writer.drain()

    async with upstream(stuck) as up:
        http = client(max_connections=1)
        holder = asyncio.ensure_future(post(http, up.url))
        await asyncio.sleep(0.05)
        short = Timeouts(0.2, Deadline.after(None, SystemClock()))
        with pytest.raises(UpstreamBusyError) as info:
            await http.post_json(up.url, headers={}, body={"q": 2}, timeouts=short)
        assert info.value.reason == "OVERLOADED" and info.value.retry_after == 1.0
        assert len(up.requests) == 1  # the refused request was never sent
        release.set()
        assert await holder == {"ok": True}
        assert await post(http, up.url) == {"ok": True}
        await http.aclose()


async def test_waiting_for_a_connection_slot_is_the_sidecars_time_not_the_upstreams() -> None:
    """A request queued behind the pool's one slot for ~0.2 s reports only its own exchange with the
    upstream as upstream wait: the queue is the sidecar's overhead in the call's summary."""
    release = asyncio.Event()

    async def gated(state: Upstream, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            state.requests.append(await read_request(reader))
            if len(state.requests) == 1:
                await release.wait()
            writer.write(answer())
            await writer.drain()

    async with upstream(gated) as up:
        http = client(max_connections=1)
        holder = asyncio.ensure_future(post(http, up.url))
        await asyncio.sleep(0.05)
        waits = Waits()
        timed = Timeouts(5.0, Deadline.after(None, SystemClock()), waits)
        queued = asyncio.ensure_future(http.post_json(up.url, headers={}, body={"q": 2}, timeouts=timed))
        await asyncio.sleep(0.2)
        assert waits.events == []  # still queued for the slot: nothing reported as the upstream's
        release.set()
        assert await holder == {"ok": True} and await queued == {"ok": True}
        await http.aclose()
    assert sum(waits.intervals()) < 0.1
    failed = Waits()  # a slot never freed: PoolBusy, and no upstream wait at all
    async with upstream(gated) as up:
        release.clear()
        http = client(max_connections=1)
        holder = asyncio.ensure_future(post(http, up.url))
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamBusyError):
            await http.post_json(
                up.url,
                headers={},
                body={},
                timeouts=Timeouts(0.1, Deadline.after(None, SystemClock()), failed),
            )
        release.set()
        await holder
        await http.aclose()
    assert failed.events == []
