"""The health port's HTTP server as real clients and attackers use it, over real sockets: what a
client sends beyond its request head, running out of file descriptors, a failure inside the serving
loop, clients that never read their scrapes."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import select
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from sidecar.telemetry import http_server
from sidecar.telemetry.server import MetricsServer

pytestmark = pytest.mark.integration  # real sockets, threads and the OS's clock


def big_registry() -> CollectorRegistry:
    """A 6 MB /metrics page: more than the kernel's buffers between the two ends take."""
    registry = CollectorRegistry()
    big = Gauge("big", "a large page", ["n"], registry=registry)
    for n in range(100):
        big.labels(f"{n}{'x' * 60_000}").set(n)
    return registry


@asynccontextmanager
async def serving(
    registry: CollectorRegistry | None = None, **options: float
) -> AsyncIterator[MetricsServer]:
    server = MetricsServer(registry or CollectorRegistry(), "127.0.0.1:0", **options)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def exchange(port: int, request: bytes) -> bytes:
    """Sends `request` in one write, then reads until the server closes, slowly (as a scraper far
    away would: the answer's tail waits in the server's kernel buffers while the server is done)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        connection.settimeout(10)
        connection.connect(("127.0.0.1", port))
        connection.sendall(request)
        time.sleep(0.3)  # the answer is made, and waits on this client
        chunks = []
        while chunk := connection.recv(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)


def split_answer(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    "sent",
    [
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" + b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n" * 200,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + b"x" * 20_000,
    ],
    ids=["pipelined requests", "a body"],
)
async def test_a_large_answer_is_whole_when_the_client_sent_more_than_its_head(sent: bytes) -> None:
    """The server closed the connection with the client's further bytes unread: the kernel then
    resets it and drops what it had not yet sent of the answer (ConnectionResetError mid-scrape)."""
    async with serving(big_registry()) as server:
        answer = await asyncio.to_thread(exchange, server.port, sent)
        status, headers, body = split_answer(answer)
        assert status == 200 and len(body) == int(headers["content-length"]) > 6_000_000


OUT_OF_DESCRIPTORS = """
import os, resource, socket, sys, time
from sidecar.core.listen import listening_socket
from sidecar.telemetry.http_server import BoundedHttpServer

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\\n"]

server = BoundedHttpServer(listening_socket("127.0.0.1", 0), app, max_connections=64,
                           max_connections_per_client=8, connection_timeout=30)
server.start()
client = socket.socket()
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
client.connect(server.address)  # waits in the listen backlog: accepting it fails with EMFILE
client.sendall(b"GET /livez HTTP/1.0\\r\\n\\r\\n")
time.sleep(0.2)
before = time.process_time()
time.sleep(1.0)
print(time.process_time() - before)
for fd in held[:8]:
    os.close(fd)
client.settimeout(5)
print(client.recv(100).split(b"\\r\\n")[0].decode())
server.stop()
"""


def test_out_of_file_descriptors_the_server_waits_without_spinning_and_then_answers() -> None:
    """accept() failing with EMFILE left the newcomer in the backlog, so the listening socket stayed
    readable: the serving thread retried at once, forever, at full CPU until a descriptor was free."""
    done = subprocess.run(
        [sys.executable, "-c", OUT_OF_DESCRIPTORS], capture_output=True, text=True, timeout=60, check=True
    )
    cpu_seconds, status_line = done.stdout.split("\n")[:2]
    assert float(cpu_seconds) < 0.1  # in the second the process was out of descriptors
    assert status_line == "HTTP/1.0 200 OK"


async def test_an_unexpected_error_serving_one_connection_ends_it_not_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception the serving loop did not expect (here from the head's parsing) ended its only
    thread: the port still accepted connections but never answered again, so every probe failed and
    the kubelet restarted the sidecar; any client able to trigger such a bug could do so at will."""
    parse = http_server._environ

    def failing(head: bytes, client: str, server: tuple[str, int]) -> dict[str, Any]:
        if b"X-Boom" in head:
            raise RuntimeError("a bug")
        return parse(head, client, server)

    monkeypatch.setattr(http_server, "_environ", failing)
    async with serving() as server:
        boom = await asyncio.to_thread(exchange, server.port, b"GET /livez HTTP/1.0\r\nX-Boom: 1\r\n\r\n")
        assert boom == b""  # closed unanswered
        status, _, body = split_answer(
            await asyncio.to_thread(exchange, server.port, b"GET /livez HTTP/1.0\r\n\r\n")
        )
        assert (status, body) == (200, b"ok\n")


def scrape_never_read(address: str, port: int) -> socket.socket:
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.bind((address, 0))
    connection.connect(("127.0.0.1", port))
    connection.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    return connection


async def test_scrapes_never_read_hold_at_most_four_answers() -> None:
    """A scrape's answer waited in the server until its client read it or the connection timed out,
    and only the making of answers was bounded: 64 scrapes of a 6 MB page asked one after the
    other (each made before the next) and never read held 64 answers, about 390 MB more RSS, for
    10 s, and again as fast as the client reopened them. Now a scrape holds one of the four scrape
    places until its connection ends; a newcomer takes the place of the one waiting longest on its
    client, so a scraper that reads gets its whole page."""
    async with serving(big_registry()) as server:
        held = []
        for n in range(8):
            held.append(scrape_never_read(f"127.0.0.{2 + n % 2}", server.port))
            readable, _, _ = await asyncio.to_thread(select.select, held[-1:], [], [], 10)
            assert readable  # its answer is made and being sent: it waits on its client
        try:
            assert server.open_connections() == http_server.SCRAPES_AT_ONCE
            status, headers, body = split_answer(
                await asyncio.to_thread(exchange, server.port, b"GET /metrics HTTP/1.0\r\n\r\n")
            )
            assert status == 200 and len(body) == int(headers["content-length"]) > 6_000_000
        finally:
            for connection in held:
                connection.close()


def head_of(size: int) -> bytes:
    """A /livez request head of exactly `size` bytes, blank line included."""
    start = b"GET /livez HTTP/1.1\r\nX-Pad: "
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


@pytest.mark.parametrize(("size", "status"), [(16 * 1024, 200), (16 * 1024 + 1, 431), (19 * 1024, 431)])
async def test_the_head_limit_does_not_depend_on_how_the_head_arrives(size: int, status: int) -> None:
    """A head over 16 KiB was refused only while its end had not arrived: sent in one write, a head
    of up to 20 KiB (the limit plus one read) was served."""
    async with serving() as server:
        assert split_answer(await asyncio.to_thread(exchange, server.port, head_of(size)))[0] == status


async def test_head_is_answered_as_get_without_a_body() -> None:
    """HEAD was answered 405 with a body: an answer to HEAD has none (its Content-Length is the
    GET's), and every general-purpose server serves HEAD as it serves GET (RFC 9110 9.1)."""
    registry = CollectorRegistry()
    Gauge("one", "a series", registry=registry).set(1)
    async with serving(registry) as server:
        for path, status in (("/livez", 200), ("/readyz", 503), ("/metrics", 200), ("/nowhere", 404)):
            got = split_answer(
                await asyncio.to_thread(exchange, server.port, b"HEAD %s HTTP/1.1\r\n\r\n" % path.encode())
            )
            assert (got[0], got[2]) == (status, b"") and int(got[1]["content-length"]) > 0
        status, headers, _ = split_answer(
            await asyncio.to_thread(exchange, server.port, b"POST /livez HTTP/1.0\r\n\r\n")
        )
        assert (status, headers["allow"]) == (405, "GET, HEAD")


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"http://sidecar:9090/livez", 200),
        (b"HTTP://sidecar/readyz?x=1", 503),
        (b"http://sidecar", 404),
        (b"/%6Civez?x=%20", 200),
        (b"*", 404),
    ],
)
async def test_request_targets_in_every_form_a_client_may_send(target: bytes, status: int) -> None:
    """The absolute form (`GET http://host/livez`, which a server must accept, RFC 9112 3.2.2: what a
    client sends through a proxy) was taken for a path and answered 404."""
    async with serving() as server:
        request = b"GET %s HTTP/1.1\r\nHost: sidecar\r\n\r\n" % target
        assert split_answer(await asyncio.to_thread(exchange, server.port, request))[0] == status


@pytest.mark.parametrize(("count", "status"), [(100, 200), (101, 400)])
async def test_a_head_may_have_100_headers(count: int, status: int) -> None:
    """The stdlib's parser counted the head's closing blank line as a header: 100 headers, the
    documented limit, were refused 400."""
    async with serving() as server:
        request = b"GET /livez HTTP/1.1\r\n" + b"X-N: 1\r\n" * count + b"\r\n"
        assert split_answer(await asyncio.to_thread(exchange, server.port, request))[0] == status


@pytest.mark.parametrize("line", [b"GET /livez\r\n", b"GET\n", b"GET /livez HTTP/1.1 extra\r\n"])
async def test_a_request_line_that_is_not_http_1_is_refused_at_once(line: bytes) -> None:
    """An HTTP/0.9 request (`GET /livez` and nothing more) waited for a blank line that never comes,
    and its client for an answer until the connection's timeout closed it unanswered."""
    async with serving(connection_timeout_seconds=30) as server:
        assert split_answer(await asyncio.to_thread(exchange, server.port, line))[0] == 400


def answer_or_hang(port: int, request: bytes) -> tuple[int | None, bool]:
    """(the answer's status or None when closed unanswered, whether the server closed within 3 s)."""
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.settimeout(3)
        connection.sendall(request)
        chunks = []
        try:
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            return None, False
        except ConnectionResetError:  # closed with the request unread
            pass
    answer = b"".join(chunks)
    return (int(answer.split(b" ")[1]) if answer else None), True


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /livez HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 400),
        (b"GET /livez HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\nHost: x\n\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\nX: 1\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nX-A: a\x00b", 400),  # refused before its head ends
        (b"GET /" + b"a" * 17_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET /" + b"a" * 17_000, 414),
        (b"GET /livez HTTP/2.0\r\n\r\n", 505),
    ],
    ids=[
        "space before colon",
        "obs-fold",
        "two content-lengths",
        "content-length and transfer-encoding",
        "transfer-encoding not ending in chunked",
        "transfer-encoding in http/1.0",
        "two hosts",
        "bare CR",
        "bare LF",
        "one bare LF",
        "NUL",
        "NUL before the head ends",
        "request line too long",
        "request line too long, unfinished",
        "http/2 request line",
    ],
)
async def test_heads_a_proxy_could_read_otherwise_are_refused_and_closed(
    request_bytes: bytes, status: int
) -> None:
    """RFC 9112 5.1: whitespace between a field name and its colon MUST be answered 400 (it was
    served, `Host : x` taken for a Host); 5.2: an obs-fold line is refused (it was joined to the line
    before). Two Content-Lengths, Content-Length with Transfer-Encoding, a bare CR or LF, a NUL were
    served as if the head were whole and plain; heads with bare LFs alone waited for a blank line
    that never came until the connection timed out unanswered; a request line past 16 KiB was 431."""
    async with serving(connection_timeout_seconds=30) as server:
        assert await asyncio.to_thread(answer_or_hang, server.port, request_bytes) == (status, True)


async def test_a_body_is_never_taken_for_a_second_request() -> None:
    """The chunked body below is invalid and hides a request: one answer (the first request's), then
    the connection ends; no second answer, no hang."""
    request = (
        b"GET /livez HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    async with serving() as server:
        answer = await asyncio.to_thread(exchange, server.port, request)
        assert answer.count(b"HTTP/1.0 ") == 1 and split_answer(answer)[:3:2] == (200, b"ok\n")


class RefusingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """epoll refusing to watch new connections while `refusing` (as with ENOMEM, or ENOSPC past
    fs.epoll.max_user_watches); the listener and the wake-up pair (no data) are watched."""

    refusing = 0

    def register(self, fileobj: Any, events: int, data: Any = None) -> Any:
        if data is not None and RefusingSelector.refusing > 0:
            RefusingSelector.refusing -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().register(fileobj, events, data)


async def test_a_connection_the_selector_refuses_to_watch_does_not_end_the_server(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Registering a newly accepted connection with epoll raised out of the serving loop and ended
    its only thread: the port accepted connections and never answered again, every probe failed."""
    monkeypatch.setattr(selectors, "DefaultSelector", RefusingSelector)
    async with serving() as server:
        RefusingSelector.refusing = 3
        with caplog.at_level("WARNING", logger="sidecar.telemetry"):
            for _ in range(3):
                assert await asyncio.to_thread(
                    answer_or_hang, server.port, b"GET /livez HTTP/1.0\r\n\r\n"
                ) == (
                    None,
                    True,
                )  # closed unanswered
        status, _, body = split_answer(
            await asyncio.to_thread(exchange, server.port, b"GET /livez HTTP/1.0\r\n\r\n")
        )
        assert (status, body) == (200, b"ok\n")
    told = [r for r in caplog.records if r.getMessage() == "health port cannot watch a new connection"]
    assert len(told) == 1


def flood(port: int, addresses: int, stop: threading.Event) -> int:
    """Connections that say nothing from `addresses` addresses, each reopened as soon as the server
    closes it; how many were opened."""
    opened = 0
    with selectors.DefaultSelector() as selector:
        while not stop.is_set():
            while len(selector.get_map()) < addresses:
                connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                connection.bind((f"127.0.3.{1 + opened % addresses}", 0))
                connection.connect(("127.0.0.1", port))
                selector.register(connection, selectors.EVENT_READ)
                opened += 1
            for key, _ in selector.select(0.01):
                selector.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
    return opened


def scrape_slowly(port: int) -> tuple[int, int, int]:
    """A whole scrape read as a scraper far away reads it; (status, Content-Length, body length)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        connection.settimeout(10)
        connection.connect(("127.0.0.1", port))
        connection.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := connection.recv(16384):
                chunks.append(chunk)
    answer = b"".join(chunks)
    if not answer:
        return 0, 0, 0
    status, headers, body = split_answer(answer)
    return status, int(headers.get("content-length", -1)), len(body)


async def test_a_scrape_being_read_is_not_cut_for_newcomers_from_more_addresses_than_places() -> None:
    """A newcomer that found every place taken took the place of the oldest connection waiting on
    its client, a scrape whose client was reading its answer among them: with connections that say
    nothing reopened from more addresses than there are places, every scrape was cut mid-answer
    (IncompleteRead, or a reset) and Prometheus saw the target down. Connections that say nothing,
    or were answered whole, now give up their places first; an answer being sent only when no
    other can, the one that moved least recently first."""
    async with serving(big_registry(), max_connections=8) as server:
        stop = threading.Event()
        flooding = asyncio.ensure_future(asyncio.to_thread(flood, server.port, 16, stop))
        try:
            await asyncio.sleep(0.3)
            scrapes = [await asyncio.to_thread(scrape_slowly, server.port) for _ in range(3)]
        finally:
            stop.set()
        assert await flooding > 16  # it kept every place taken
        for status, length, got in scrapes:
            assert status == 200 and got == length > 6_000_000
