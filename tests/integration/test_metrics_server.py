"""/metrics and the probes on their own port: the exposition formats prometheus_client negotiates, the
collection on the event loop (a loop that does not answer fails the scrape and /livez, within the
bound), and the bounds a hostile client meets (connections, stalls, methods); a busy port fails clearly."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import selectors
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from prometheus_client import CollectorRegistry, Gauge

from sidecar.telemetry.metrics import Metrics
from sidecar.telemetry.server import MetricsServer

pytestmark = pytest.mark.integration  # real sockets, threads and the OS's clock for the deadlines


def fetch(port: int, path: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


async def get(port: int, path: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], bytes]:
    """From a thread: the server collects on this test's event loop, which must stay free."""
    return await asyncio.to_thread(fetch, port, path, method, **headers)


async def status_once_free(port: int, path: str) -> int:
    """With one slot: the connection that held it ends in its own thread, which may still hold the
    slot for a moment after its peer saw the close (a connection accepted meanwhile is closed
    unanswered); ask until one is answered."""
    for _ in range(200):
        try:
            return (await get(port, path))[0]
        except OSError:
            continue
    return 0


@asynccontextmanager
async def serving(
    m: Metrics | CollectorRegistry | None = None, **options: float
) -> AsyncIterator[MetricsServer]:
    registry = m if isinstance(m, CollectorRegistry) else (m or Metrics()).registry
    server = MetricsServer(registry, "127.0.0.1:0", **options)  # type: ignore[arg-type]
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_serves_its_registry_on_a_free_port() -> None:
    m = Metrics()
    m.cache_lookup(hit=True)
    async with serving(m) as server:
        assert server.port > 0
        status, headers, body = await get(server.port, "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert 'sidecar_cache_lookups_total{result="hit"} 1.0' in body.decode()
        assert (await get(server.port, "/other"))[0] == 404


async def test_openmetrics_gzip_and_name_filters_as_the_scraper_asks() -> None:
    m = Metrics()
    m.cache_lookup(hit=True)
    async with serving(m) as server:
        status, headers, body = await get(server.port, "/metrics", Accept="application/openmetrics-text")
        assert status == 200 and headers["content-type"].startswith("application/openmetrics-text")
        assert body.endswith(b"# EOF\n")
        status, headers, body = await get(server.port, "/metrics", **{"Accept-Encoding": "gzip"})
        assert headers["content-encoding"] == "gzip"
        assert b"sidecar_cache_lookups_total" in gzip.decompress(body)
        _, _, body = await get(server.port, "/metrics?name[]=sidecar_cache_lookups_total")
        names = {line.split("{")[0].split(" ")[0] for line in body.decode().splitlines() if line[:1] != "#"}
        assert names == {"sidecar_cache_lookups_total"}


@pytest.mark.parametrize(
    "accept", ["text/plain; version=abc", "application/openmetrics-text; version=1.0.0x, */*"]
)
async def test_an_accept_header_the_exposition_cannot_read_is_served_the_text_format(accept: str) -> None:
    """prometheus_client's choose_encoder raised TypeError on a version that is not a number, which
    the port answered 500 'scrape failed' and logged as a failing scrape (an alert's signal any client
    could send); an Accept it cannot read is as one it does not know: the default text format."""
    m = Metrics()
    m.cache_lookup(hit=True)
    async with serving(m) as server:
        status, headers, body = await get(server.port, "/metrics", Accept=accept)
        assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'sidecar_cache_lookups_total{result="hit"} 1.0' in body.decode()


async def test_only_get_is_served() -> None:
    async with serving() as server:
        for path in ("/metrics", "/livez", "/readyz"):
            status, headers, _ = await get(server.port, path, method="POST")
            assert (status, headers["allow"]) == (405, "GET, HEAD")


async def test_readiness_follows_the_flag_and_liveness_the_loop() -> None:
    async with serving() as server:
        assert (await get(server.port, "/livez"))[0] == 200
        assert (await get(server.port, "/readyz"))[0] == 503
        server.readiness.set(True)
        assert (await get(server.port, "/readyz"))[0] == 200
        assert (await get(server.port, "/healthz"))[0] == 200


@contextmanager
def loop_in_thread() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def test_a_loop_that_does_not_answer_fails_the_scrape_and_livez_within_the_bound() -> None:
    with loop_in_thread() as loop:
        server = MetricsServer(Metrics().registry, "127.0.0.1:0", loop_wait_seconds=0.5)
        asyncio.run_coroutine_threadsafe(server.start(), loop).result()
        try:
            assert fetch(server.port, "/livez")[0] == 200
            assert fetch(server.port, "/metrics")[0] == 200
            release = threading.Event()
            loop.call_soon_threadsafe(release.wait)  # the loop is stuck in a callback
            try:
                status, _, body = fetch(server.port, "/livez")
                assert (status, body) == (503, b"event loop not answering\n")
                status, _, body = fetch(server.port, "/metrics")
                assert (status, body) == (500, b"scrape failed\n")
                assert fetch(server.port, "/readyz")[0] == 503  # the flag needs no loop
            finally:
                release.set()
            assert fetch(server.port, "/livez")[0] == 200  # answers again
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result()


async def test_a_newcomer_takes_the_place_of_a_connection_that_says_nothing() -> None:
    async with serving(max_connections=1) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as holder:  # says nothing
            holder.settimeout(5)
            await asyncio.sleep(0.1)  # accepted
            assert (await get(server.port, "/livez"))[0] == 200
            assert await asyncio.to_thread(holder.recv, 100) == b""  # closed for the newcomer


def idle(address: str, port: int) -> socket.socket:
    """A connection from `address` (any 127/8 address is this machine) that says nothing."""
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.bind((address, 0))
    connection.connect(("127.0.0.1", port))
    return connection


def probe(port: int) -> int | str:
    """The kubelet: /livez within 1 s (its default timeoutSeconds); the status or what went wrong."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1) as r:
            return int(r.status)
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__


@pytest.mark.parametrize(("addresses", "each"), [(4, 4), (16, 1)])
async def test_connections_that_say_nothing_from_several_addresses_do_not_starve_the_probes(
    addresses: int, each: int
) -> None:
    """16 connections from 4 addresses (4 each, the most one address could hold), or from 16, took
    every slot, each held until the connection timeout and then opened again: the kubelet's /livez
    was closed unanswered (RemoteDisconnected) and, three probes later, the sidecar restarted."""
    async with serving(max_connections=16, max_connections_per_client=4) as server:
        held = [idle(f"127.0.0.{2 + a}", server.port) for a in range(addresses) for _ in range(each)]
        try:
            await asyncio.sleep(0.1)  # every one accepted
            assert [await asyncio.to_thread(probe, server.port) for _ in range(3)] == [200] * 3
        finally:
            for connection in held:
                connection.close()


def attack(port: int, addresses: int, stop: threading.Event, payload: bytes) -> int:
    """Keep `addresses` x 4 connections open, each sending `payload` (then nothing), opening a new
    one as soon as one is closed; how many it opened."""
    opened = 0
    with selectors.DefaultSelector() as selector:
        while not stop.is_set():
            while len(selector.get_map()) < addresses * 4:
                connection = idle(f"127.0.0.{2 + opened % addresses}", port)
                connection.sendall(payload)
                selector.register(connection, selectors.EVENT_READ)
                opened += 1
            for key, _ in selector.select(0.01):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                try:
                    closed = ready.recv(65536) == b""
                except ConnectionResetError:  # closed with its request unread: reset
                    closed = True
                if closed:
                    selector.unregister(ready)
                    ready.close()
        for key in list(selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
    return opened


@pytest.mark.parametrize("payload", [b"", b"GET /livez HTTP/1.1\r\nX-Slow: a"], ids=["silent", "trickled"])
async def test_probes_are_answered_while_many_addresses_keep_every_slot_taken(payload: bytes) -> None:
    """An attacker that reopens at once every connection closed, from 16 addresses (64 connections,
    the server's default cap), saying nothing or a request head never finished: every probe of the
    kubelet's is answered in time, and the attacker's connections are what gives way."""
    async with serving() as server:
        stop = threading.Event()
        attacker = asyncio.ensure_future(asyncio.to_thread(attack, server.port, 16, stop, payload))
        try:
            await asyncio.sleep(0.3)
            answers = [await asyncio.to_thread(probe, server.port) for _ in range(10)]
        finally:
            stop.set()
        opened = await attacker
        assert answers == [200] * 10
        assert opened > 64  # it kept every slot taken: its connections were closed for the probes


async def test_clients_that_do_not_read_their_answers_do_not_starve_the_probes() -> None:
    """A scrape asked for and never read holds its connection until the connection timeout (the
    answer's bytes wait in the server); the probes still get in."""
    registry = CollectorRegistry()
    big = Gauge("big", "a large page", ["n"], registry=registry)
    for n in range(100):  # 6 MB: more than the kernel's buffers between the two ends take
        big.labels(f"{n}{'x' * 60_000}").set(n)
    async with serving(registry, max_connections=4, max_connections_per_client=4) as server:
        readers = []
        for a in range(4):
            connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            connection.bind((f"127.0.0.{2 + a}", 0))
            connection.connect(("127.0.0.1", server.port))
            connection.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")  # and never reads
            readers.append(connection)
        try:
            await asyncio.sleep(1.0)  # every answer made and stuck in the sending
            assert server.open_connections() == 4
            assert [await asyncio.to_thread(probe, server.port) for _ in range(3)] == [200] * 3
        finally:
            for connection in readers:
                connection.close()


async def test_one_address_at_its_share_gives_up_its_own_oldest_connection() -> None:
    async with serving(max_connections=16, max_connections_per_client=2) as server:
        with idle("127.0.0.2", server.port) as oldest, idle("127.0.0.2", server.port) as newer:
            await asyncio.sleep(0.1)
            with idle("127.0.0.2", server.port) as newest:
                newest.sendall(b"GET /readyz HTTP/1.0\r\n\r\n")
                newest.settimeout(5)
                assert (await asyncio.to_thread(newest.recv, 100)).startswith(b"HTTP/1.0 503")
            oldest.settimeout(5)
            assert await asyncio.to_thread(oldest.recv, 100) == b""  # its place went to the newest
            newer.setblocking(False)
            with pytest.raises(BlockingIOError):
                newer.recv(100)  # still open


async def test_a_malformed_or_oversized_request_head_is_refused() -> None:
    async with serving() as server:
        for head, status in [
            (b"NONSENSE\r\n\r\n", b"400"),
            (b"GET / HTTP/1.0\r\n" + b"X: y\r\n" * 101 + b"\r\n", b"400"),
            (b"GET / HTTP/1.0\r\nX: " + b"a" * 20_000, b"431"),
        ]:
            with socket.create_connection(("127.0.0.1", server.port)) as connection:
                connection.settimeout(5)
                connection.sendall(head)
                assert (await asyncio.to_thread(connection.recv, 100)).split(b" ")[1] == status
        assert (await get(server.port, "/livez"))[0] == 200


async def test_a_stalled_client_is_dropped_after_the_connection_timeout_quietly(
    capfd: pytest.CaptureFixture[str],
) -> None:
    async with serving(connection_timeout_seconds=0.2) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as stalled:
            stalled.settimeout(5)
            stalled.sendall(b"GET /metr")  # and nothing more
            assert await asyncio.to_thread(stalled.recv, 100) == b""
        assert (await get(server.port, "/livez"))[0] == 200
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


TRICKLED = b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 200


def trickle_until_closed(connection: socket.socket) -> int:
    """A slowloris client: a byte every 50 ms until the server closes; how many bytes it sent."""
    sent = 0
    for byte in TRICKLED:
        try:
            if connection.recv(1, socket.MSG_DONTWAIT) == b"":
                return sent
        except BlockingIOError:  # open, nothing to read
            pass
        try:
            connection.send(bytes([byte]))
        except OSError:
            return sent
        sent += 1
        time.sleep(0.05)  # the client's pace (the server's deadline is the OS's clock, see below)
    return sent


async def test_a_request_trickled_a_byte_at_a_time_is_cut_off_at_the_connection_timeout() -> None:
    """Each read is quick, so only the deadline for the whole connection ends it."""
    async with serving(connection_timeout_seconds=0.3, max_connections=1) as server:
        with socket.create_connection(("127.0.0.1", server.port)) as connection:
            sent = await asyncio.to_thread(trickle_until_closed, connection)
        assert 1 <= sent < len(TRICKLED) // 2  # cut at about 0.3 s: 6 bytes, not 233 over 12 s
        assert await status_once_free(server.port, "/livez") == 200  # the slot is free again


async def test_stop_is_prompt_and_frees_the_port() -> None:
    async with serving() as server:
        port = server.port
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


async def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = MetricsServer(Metrics().registry, f"127.0.0.1:{port}")
        with pytest.raises(RuntimeError, match=f"cannot serve /metrics on 127.0.0.1:{port}"):
            await server.start()
        await server.stop()


def test_scrapes_waiting_on_a_busy_loop_do_not_take_every_connection() -> None:
    """A scrape is the server's own work (it waits for the event loop, up to loop_wait_seconds), so
    its connection is not given up for a newcomer: scrapes asked from several addresses while the
    loop was busy took every connection, and the probes' were closed unanswered. At most a few
    scrapes are made at once; the others are answered 503 at once."""
    with loop_in_thread() as loop:
        server = MetricsServer(Metrics().registry, "127.0.0.1:0", loop_wait_seconds=3, max_connections=6)
        asyncio.run_coroutine_threadsafe(server.start(), loop).result()
        release = threading.Event()
        loop.call_soon_threadsafe(release.wait)  # the loop is busy in a callback
        scrapes = []
        try:
            for a in range(6):
                scrape = idle(f"127.0.0.{2 + a}", server.port)
                scrape.settimeout(10)
                scrape.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
                scrapes.append(scrape)
            busy = [scrape.recv(100) for scrape in scrapes[4:]]
            assert [answer.split(b" ")[1] for answer in busy] == [b"503", b"503"]
            status, _, body = fetch(server.port, "/readyz")  # needs no loop: answered at once
            assert (status, body) == (503, b"not serving\n")
        finally:
            release.set()
            for scrape in scrapes:
                scrape.close()
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result()


def test_a_newcomer_waits_for_a_place_while_every_one_is_being_answered() -> None:
    """With every connection being answered (here /livez waiting on a busy loop), a newcomer was
    accepted and closed at once unanswered (a reset): under a flood of valid requests from more
    clients than there are places, one kubelet probe in three or four failed so. Now the server
    stops accepting while no place can be made, so the newcomer waits in the listen backlog and is
    answered as soon as one frees."""
    with loop_in_thread() as loop:
        server = MetricsServer(Metrics().registry, "127.0.0.1:0", loop_wait_seconds=5, max_connections=2)
        asyncio.run_coroutine_threadsafe(server.start(), loop).result()
        release = threading.Event()
        loop.call_soon_threadsafe(release.wait)  # the loop is busy in a callback
        held = []
        try:
            for a in range(2):
                connection = idle(f"127.0.0.{2 + a}", server.port)
                connection.sendall(b"GET /livez HTTP/1.0\r\n\r\n")
                held.append(connection)
            time.sleep(0.3)  # both being answered: waiting on the loop
            threading.Timer(0.5, release.set).start()
            status, _, body = fetch(server.port, "/readyz")
            assert (status, body) == (503, b"not serving\n")
        finally:
            release.set()
            for connection in held:
                connection.close()
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result()
