"""/metrics and the probes on their own port: the exposition formats prometheus_client negotiates, the
collection on the event loop (a loop that does not answer fails the scrape and /livez, within the
bound), and the bounds a hostile client meets (connections, stalls, methods); a busy port fails clearly."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest

from sidecar.telemetry.metrics import Metrics
from sidecar.telemetry.server import MetricsServer, _BoundedServer

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
async def serving(m: Metrics | None = None, **options: float) -> AsyncIterator[MetricsServer]:
    server = MetricsServer((m or Metrics()).registry, "127.0.0.1:0", **options)  # type: ignore[arg-type]
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


async def test_only_get_is_served() -> None:
    async with serving() as server:
        for path in ("/metrics", "/livez", "/readyz"):
            status, headers, _ = await get(server.port, path, method="POST")
            assert (status, headers["allow"]) == (405, "GET")


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


async def test_connections_beyond_the_cap_are_closed_and_the_slot_comes_back() -> None:
    async with serving(max_connections=1) as server:
        holder = socket.create_connection(("127.0.0.1", server.port))  # says nothing: holds the slot
        try:
            with socket.create_connection(("127.0.0.1", server.port)) as extra:
                extra.settimeout(5)
                extra.sendall(b"GET /livez HTTP/1.0\r\n\r\n")
                assert await asyncio.to_thread(extra.recv, 100) == b""  # closed unanswered
        finally:
            holder.close()
        assert await status_once_free(server.port, "/livez") == 200


async def test_one_client_holding_every_connection_it_may_does_not_starve_the_probes() -> None:
    """A client on the pod network that opens connections and says nothing (each held until the
    connection timeout, then opened again) got every slot: the kubelet's /livez was closed unanswered
    and, three probes later, the sidecar restarted. One client gets a few slots, not all of them."""
    async with serving() as server:  # the defaults: 16 connections
        held: list[socket.socket] = []
        try:
            for _ in range(16):
                attacker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                attacker.bind(("127.0.0.2", 0))  # another address than the prober's
                attacker.connect(("127.0.0.1", server.port))
                held.append(attacker)
            assert await status_once_free(server.port, "/livez") == 200
            assert (await get(server.port, "/readyz"))[0] == 503
        finally:
            for attacker in held:
                attacker.close()


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


def test_reap_cuts_only_the_connections_past_their_deadline() -> None:
    server = _BoundedServer(("127.0.0.1", 0), socket.AF_INET, 4, 10.0)
    try:
        assert server.reap(1000.0) is None  # nothing open
        early, late = socket.socketpair(), socket.socketpair()
        with server._lock:  # two connections, accepted at t=100 and t=105
            server._deadlines[early[0]] = 110.0
            server._deadlines[late[0]] = 115.0
        assert server.reap(109.0) == pytest.approx(1.0)
        assert server.reap(111.0) == pytest.approx(4.0)  # `early` cut, `late` has 4 s left
        assert early[1].recv(10) == b""  # its peer sees the close
        late[1].setblocking(False)
        with pytest.raises(BlockingIOError):
            late[1].recv(10)  # still open
        assert server.reap(120.0) is None
        assert late[1].recv(10) == b""
        for pair in (early, late):
            for end in pair:
                end.close()
    finally:
        server.server_close()


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
