"""`/metrics` on its own HTTP port, and the kubelet's probes, which cannot reach the loopback gRPC port:
`/livez` (200 while the event loop answers), `/readyz` and `/healthz` (200 only while the sidecar
serves: not before it started, not while it drains).

prometheus_client's own WSGI exposition (`make_wsgi_app`: text or OpenMetrics as the scraper asks,
gzip, `name[]` filters) and the probes, served by `http_server.BoundedHttpServer` from threads of
its own. The collection itself runs on the event loop, which owns the state the collectors read
(breakers, queues); a loop that does not answer within `loop_wait_seconds` fails the scrape and
`/livez`. No asyncio HTTP framework is loaded for this (aiohttp cost about 11 MB of the sidecar's
RSS), and the idle server makes no wake-ups: its thread blocks until a connection or `stop`.

Bounds against a careless or hostile client on the pod network (see http_server.py): at most
`max_connections` open, `max_connections_per_client` of them from one address; a newcomer takes the
place of the oldest connection waiting on its client (saying nothing, trickling its request, not
closing after its answer) of the address holding the most, an answer being sent only when there is
none, so connections that say nothing, from however many addresses, cannot keep the kubelet's probes
unanswered (/livez would fail and the sidecar be restarted) nor cut a scrape being read;
`connection_timeout_seconds` for each connection in all (on the injected clock); a strict, bounded
request head; GET and HEAD only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from sidecar.core.clock import Clock, SystemClock
from sidecar.core.listen import listening_socket, split_address
from sidecar.telemetry.http_server import BoundedHttpServer, StartResponse, WSGIApp

_log = logging.getLogger("sidecar.telemetry")
T = TypeVar("T")


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
        max_connections: int = 64,
        max_connections_per_client: int = 8,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._registry = registry
        self.readiness = Readiness()
        self._host, self._port = split_address(address)
        self._wait, self._slots, self._per_client = (
            loop_wait_seconds,
            max_connections,
            max_connections_per_client,
        )
        self._connection_timeout = connection_timeout_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: BoundedHttpServer | None = None
        self.port = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            sock = listening_socket(self._host, self._port)  # "" or "::": every address, IPv6 and IPv4
        except OSError as exc:
            raise RuntimeError(f"cannot serve /metrics on {self._host}:{self._port}: {exc}") from exc
        app = self._app(make_wsgi_app(_OnLoop(self._registry, self._loop, self._wait)))
        self._server = BoundedHttpServer(
            sock,
            app,
            max_connections=self._slots,
            max_connections_per_client=self._per_client,
            connection_timeout=self._connection_timeout,
            scrape_paths=("/metrics",),
            clock=self._clock,
        )
        self.port = self._server.address[1]
        self._server.start()

    def open_connections(self) -> int:
        return self._server.open_connections() if self._server is not None else 0

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()  # at once: it never waits for the event loop
            self._server = None

    def _loop_answers(self) -> bool:
        assert self._loop is not None
        try:
            return _on_loop(self._loop, lambda: True, self._wait)
        except (TimeoutError, RuntimeError):  # busy past the bound, or closed
            return False

    def _app(self, metrics: WSGIApp) -> WSGIApp:
        def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
            if method not in ("GET", "HEAD"):  # HEAD: the GET's answer, its body left out by the server
                return _plain(start_response, "405 Method Not Allowed", "use GET\n", [("Allow", "GET, HEAD")])
            if path == "/metrics":
                asked = {**environ, "REQUEST_METHOD": "GET"}  # HEAD too
                if not _readable_accept(environ.get("HTTP_ACCEPT", "")):
                    asked.pop("HTTP_ACCEPT")  # as an Accept it does not know: the default text format
                try:
                    return metrics(asked, start_response)
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


def _readable_accept(accept: str) -> bool:
    """Whether prometheus_client's negotiation reads `accept` (it raised TypeError on a version that
    is not a number: a client's header, not a failing scrape)."""
    try:
        choose_encoder(accept)
    except Exception:
        return False
    return True


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
