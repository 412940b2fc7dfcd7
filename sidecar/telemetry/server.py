"""`/metrics` on its own HTTP port, and the kubelet's probes, which cannot reach the loopback gRPC port:
`/livez` (200 while the event loop answers), `/readyz` and `/healthz` (200 only while the sidecar
serves: not before it started, not while it drains).

prometheus_client's own WSGI exposition (`make_wsgi_app`: text or OpenMetrics as the scraper asks,
gzip, `name[]` filters) on its thread-per-connection stdlib server, run from one thread of its own.
The collection itself runs on the event loop, which owns the state the collectors read (breakers,
queues); a loop that does not answer within `loop_wait_seconds` fails the scrape and `/livez`. No
asyncio HTTP framework is loaded for this (aiohttp cost about 11 MB of the sidecar's RSS), and the
idle server makes no wake-ups: its thread blocks until a connection or `stop`.

Bounds against a careless or hostile client on the pod network: `max_connections` at once (more are
closed on accept), of which one client address holds at most `max_connections_per_client` (so one
that opens connections and says nothing cannot take the kubelet's probes' slots: /livez would fail
and the sidecar be restarted), `connection_timeout_seconds` for each connection in all (a request
trickled a byte at a time is cut off too), the stdlib's limits on the request line and headers, GET
only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIRequestHandler

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

_log = logging.getLogger("sidecar.telemetry")
T = TypeVar("T")
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Readiness:
    """Whether the sidecar serves calls: set by its lifecycle, read by `/readyz`."""

    def __init__(self) -> None:
        self._ready = False

    def set(self, ready: bool) -> None:
        self._ready = ready

    def __bool__(self) -> bool:
        return self._ready


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[[], T], wait: float) -> T:
    """`fn()` run on the event loop from another thread, its result or its exception; TimeoutError
    when the loop does not run it within `wait` (a late run then does nothing), RuntimeError when the
    loop is closed."""
    done: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not done.set_running_or_notify_cancel():
            return  # the caller gave up waiting
        try:
            done.set_result(fn())
        except BaseException as exc:  # handed to the waiting thread
            done.set_exception(exc)

    loop.call_soon_threadsafe(run)
    try:
        return done.result(wait)
    finally:
        done.cancel()


class _OnLoop(Collector):
    """A registry collected on the event loop (from the server's threads), within a bound."""

    def __init__(self, registry: CollectorRegistry, loop: asyncio.AbstractEventLoop, wait: float) -> None:
        self._registry, self._loop, self._wait = registry, loop, wait

    def collect(self) -> Iterator[Metric]:
        return iter(_on_loop(self._loop, lambda: list(self._registry.collect()), self._wait))

    def restricted_registry(self, names: Iterable[str]) -> _OnLoop:
        restricted = self._registry.restricted_registry(names)
        return _OnLoop(restricted, self._loop, self._wait)  # type: ignore[arg-type]


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (a stalled connection is cut by the server's `reap`)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _BoundedServer(ThreadingWSGIServer):
    """At most `slots` connections served at once, at most `per_client` of them from one client
    address, more are closed as they are accepted; each connection gets `connection_timeout` seconds
    in all (a client that trickles its request a byte at a time is cut off then: `reap`, called by
    the serving thread)."""

    allow_reuse_address = True
    timeout = 0.0  # handle_request() is called only when a connection waits: never block in it

    def __init__(
        self,
        address: tuple[str, int],
        family: int,
        slots: int,
        connection_timeout: float,
        per_client: int = 4,
    ) -> None:
        self.address_family = family
        self.connection_timeout = connection_timeout
        self._slots = threading.BoundedSemaphore(slots)
        self._per_client = per_client
        self._lock = threading.Lock()
        self._deadlines: dict[socket.socket, float] = {}
        self._clients: dict[socket.socket, str] = {}  # each open connection's client address
        super().__init__(address, _QuietHandler)

    def server_bind(self) -> None:
        if self.address_family == socket.AF_INET6:  # "::" takes IPv4 too, whatever the host's default
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._admit(request, str(client_address[0])):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def _admit(self, request: socket.socket, client: str) -> bool:
        """Take a slot for the connection unless every slot, or its client's share, is taken."""
        with self._lock:
            if sum(1 for c in self._clients.values() if c == client) >= self._per_client:
                return False
            if not self._slots.acquire(blocking=False):
                return False
            self._clients[request] = client
            self._deadlines[request] = time.monotonic() + self.connection_timeout
        return True

    def _done(self, request: socket.socket) -> None:
        with self._lock:
            self._deadlines.pop(request, None)
            self._clients.pop(request, None)
        self._slots.release()

    def reap(self, now: float) -> float | None:
        """Cut the connections past their deadline (their threads' reads and writes then end); the
        seconds until the next deadline, or None when no connection is open."""
        with self._lock:
            overdue = [c for c, deadline in self._deadlines.items() if deadline <= now]
            for connection in overdue:
                del self._deadlines[connection]
            upcoming = min(self._deadlines.values(), default=None)
        for connection in overdue:
            with contextlib.suppress(OSError):  # its thread closed it meanwhile
                connection.shutdown(socket.SHUT_RDWR)
        return None if upcoming is None else max(0.0, upcoming - now)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that stalled or went away: not worth a traceback on stderr."""
        _log.debug("metrics connection ended with an error", exc_info=True)


class MetricsServer:
    """Serves GET /metrics for one registry and the probes; `port` is the bound port once started
    (0 = any free)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        address: str,
        *,
        loop_wait_seconds: float = 1.0,
        connection_timeout_seconds: float = 10.0,
        max_connections: int = 16,
        max_connections_per_client: int = 4,
    ) -> None:
        self._registry = registry
        self.readiness = Readiness()
        host, _, port = address.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self._wait, self._slots, self._per_client = (
            loop_wait_seconds,
            max_connections,
            max_connections_per_client,
        )
        self._connection_timeout = connection_timeout_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: _BoundedServer | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self.port = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            hosts = [self._host]
            if self._host == "::":  # every address: IPv6 and IPv4 on one dual-stack socket, or
                hosts.append("0.0.0.0")  # IPv4 alone where the kernel has no IPv6
            self._server = self._bind(hosts)
        except OSError as exc:
            raise RuntimeError(f"cannot serve /metrics on {self._host}:{self._port}: {exc}") from exc
        self._server.set_app(self._app(make_wsgi_app(_OnLoop(self._registry, self._loop, self._wait))))
        self.port = int(self._server.server_address[1])
        self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="metrics-http", daemon=True)
        self._thread.start()

    def _bind(self, hosts: list[str]) -> _BoundedServer:
        for i, host in enumerate(hosts):
            infos = socket.getaddrinfo(host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            family, *_, sockaddr = infos[0]
            try:
                return _BoundedServer(
                    (str(sockaddr[0]), self._port),
                    family,
                    self._slots,
                    self._connection_timeout,
                    self._per_client,
                )
            except OSError:
                if i == len(hosts) - 1:
                    raise
        raise OSError("no address to bind")

    async def stop(self) -> None:
        if self._thread is not None and self._wake is not None:
            self._wake[1].send(b"x")
            self._thread.join()  # the serving loop ends at once: it only accepts
        if self._server is not None:
            self._server.server_close()
        if self._wake is not None:
            for end in self._wake:
                end.close()
        self._server, self._thread, self._wake = None, None, None

    def _serve(self) -> None:
        server, wake = self._server, self._wake
        assert server is not None and wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(server.socket, selectors.EVENT_READ)
            selector.register(wake[0], selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select(server.reap(time.monotonic()))}
                if wake[0] in ready:
                    return
                if server.socket in ready:
                    server.handle_request()  # accept one connection; its thread serves it

    def _loop_answers(self) -> bool:
        assert self._loop is not None
        try:
            return _on_loop(self._loop, lambda: True, self._wait)
        except (TimeoutError, RuntimeError):  # busy past the bound, or closed
            return False

    def _app(self, metrics: WSGIApp) -> WSGIApp:
        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
            if method != "GET":
                return _plain(start_response, "405 Method Not Allowed", "use GET\n", [("Allow", "GET")])
            if path == "/metrics":
                try:
                    return metrics(environ, start_response)
                except Exception as exc:  # the loop did not answer in time, or a collector failed
                    _log.warning("metrics scrape failed", extra={"error": type(exc).__name__})
                    return _plain(start_response, "500 Internal Server Error", "scrape failed\n")
            if path == "/livez":
                if self._loop_answers():
                    return _plain(start_response, "200 OK", "ok\n")
                return _plain(start_response, "503 Service Unavailable", "event loop not answering\n")
            if path in ("/readyz", "/healthz"):
                if self.readiness:
                    return _plain(start_response, "200 OK", "ok\n")
                return _plain(start_response, "503 Service Unavailable", "not serving\n")
            return _plain(start_response, "404 Not Found", "not found\n")

        return app


def _plain(
    start_response: StartResponse, status: str, text: str, extra: list[tuple[str, str]] | None = None
) -> list[bytes]:
    body = text.encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *(extra or []),
    ]
    start_response(status, headers)
    return [body]
