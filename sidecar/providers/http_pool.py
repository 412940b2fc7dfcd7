"""The upstream connection pool: keep-alive HTTP/1.1 connections (sidecar/providers/http1.py) per
origin (scheme, host, port), shared by every provider adapter.

- connections are reused newest first; an idle one is closed `keepalive_seconds` after its last
  answer, or a second before the server's own `Keep-Alive: timeout` (a reaper task sleeps on the
  injected clock until the next such moment, and ends when nothing is idle);
- at most `max_connections` in use, and `max_connections_per_host` per origin (0: no own limit); a
  request over a limit waits for its host's slot first, so that requests queued for a saturated
  upstream hold nothing that another upstream needs. The wait is bounded apart from the request
  itself: running out of it is `PoolBusy` (the sidecar's own limit), never the upstream's timeout;
- TLS with the system's trust store (or `ca_file`), checked against the host name; connecting is
  bounded by `connect_seconds` on the injected clock;
- the keep-alive race (the server closes an idle connection as a request goes out on it): a GET on
  a reused connection closed before any byte of an answer is sent once more on a new connection; a
  POST never is (the upstream may have started generating, and billing, it): the caller's retry
  policy decides.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from yarl import URL

from sidecar.core.clock import Clock
from sidecar.core.tasks import cancel_and_wait
from sidecar.providers.http1 import ConnectError, Connection, ConnectionBroke, Origin, Response, request_head

_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS"})  # sent again after the keep-alive race


class PoolBusy(Exception):
    """No connection slot came free within the wait: the sidecar's own limit was reached, which
    says nothing about the upstream."""


@dataclass(frozen=True, slots=True)
class PoolLimits:
    max_connections: int
    max_per_host: int  # 0: only the total limit
    keepalive_seconds: float
    connect_seconds: float


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The client TLS context: the system's trust store, or the CAs of `ca_file`. A bundle that
    cannot be loaded is a RuntimeError naming settings.http.ca_file (serve checks it at start)."""
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise RuntimeError(f"settings.http.ca_file: {ca_file}: cannot load the CA bundle ({why})") from None


class Http1Client:
    """The pool: idle connections per origin, in-use limits, connecting on demand."""

    def __init__(
        self,
        limits: PoolLimits,
        clock: Clock,
        *,
        ca_file: Path | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._ca_file = ca_file
        self._tls: ssl.SSLContext | None = tls  # else made at the first https connection
        self._idle: dict[Origin, list[Connection]] = {}
        self._open: set[Connection] = set()
        self._total = asyncio.Semaphore(limits.max_connections)
        self._per_host: dict[Origin, asyncio.Semaphore] = {}
        self._closed = False
        self._reaper: asyncio.Task[None] | None = None

    async def request(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        wait: Callable[[], float],
        slotted: Callable[[], object] = lambda: None,
    ) -> Response:
        """Send one request; return once the answer's status and headers are in. `wait()` bounds
        the wait for a connection slot (PoolBusy past it), then, asked again, the request until its
        answer's head is in (TimeoutError); `slotted()` is called between the two (the time before
        it is the sidecar's own queue, not the upstream's). The caller reads the body and then calls
        `release()` (or `close()`) exactly once."""
        origin = Origin.of(url)
        head = request_head(method, url, origin, headers, body)
        held: list[asyncio.Semaphore] = []
        try:
            await self._slots(origin, held, wait)
            slotted()
            async with self._clock.timeout(wait()):
                response, connection = await self._send(origin, head, body, replayable=method in _REPLAYABLE)
        except BaseException:
            for gate in held:
                gate.release()
            raise
        connection.gates = tuple(held)  # freed when the answer is released or the connection closes
        return response

    async def _slots(self, origin: Origin, held: list[asyncio.Semaphore], wait: Callable[[], float]) -> None:
        """The origin's slot, then the pool's (waiting for a busy host holds nothing), into `held`."""
        gates = (self._host_gate(origin), self._total)
        if not any(gate.locked() for gate in gates):  # the common case: no wait, no timer
            for gate in gates:
                await gate.acquire()  # free: returns without suspending
                held.append(gate)
            return
        try:
            async with self._clock.timeout(wait()):
                for gate in gates:
                    await gate.acquire()
                    held.append(gate)
        except TimeoutError:
            raise PoolBusy(f"every connection this sidecar may open to {origin.host} is in use") from None

    async def _send(
        self, origin: Origin, head: bytes, body: bytes | None, *, replayable: bool
    ) -> tuple[Response, Connection]:
        connection = self._take_idle(origin)
        if connection is not None:
            try:
                return await connection.exchange(head, body), connection
            except ConnectionBroke as exc:
                connection.close()
                if exc.answered or not replayable:
                    raise
                # the server had closed it while it was idle: once more, on a new connection
            except BaseException:
                connection.close()
                raise
        connection = await self._connect(origin)
        try:
            return await connection.exchange(head, body), connection
        except BaseException:
            connection.close()
            raise

    def _expiry(self, connection: Connection) -> float:
        """When an idle connection stops being reused: our keep-alive, or a second short of the
        server's own (to stay clear of its closing)."""
        limit = self._limits.keepalive_seconds
        if connection.keepalive_limit is not None:
            limit = min(limit, connection.keepalive_limit - 1)
        return connection.idle_since + limit

    async def _reap(self) -> None:
        """Close idle connections as they expire; end when none is idle."""
        while due := [self._expiry(c) for idle in self._idle.values() for c in idle]:
            await self._clock.sleep(max(0.0, min(due) - self._clock.monotonic()))
            now = self._clock.monotonic()
            for idle in self._idle.values():
                for connection in [c for c in idle if now >= self._expiry(c)]:
                    idle.remove(connection)
                    connection.close()

    def _host_gate(self, origin: Origin) -> asyncio.Semaphore:
        gate = self._per_host.get(origin)
        if gate is None:
            per_host = self._limits.max_per_host or self._limits.max_connections
            gate = self._per_host[origin] = asyncio.Semaphore(per_host)
        return gate

    def _take_idle(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        now = self._clock.monotonic()
        while idle:
            connection = idle.pop()
            if connection.alive() and now < self._expiry(connection):
                connection.reused = True
                return connection
            connection.close()
        return None

    async def _connect(self, origin: Origin) -> Connection:
        if self._closed:
            raise ConnectError("the HTTP client is closed")
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if origin.scheme == "https" else None
        try:
            async with self._clock.timeout(self._limits.connect_seconds):
                _, connection = await loop.create_connection(
                    lambda: Connection(self, origin),
                    origin.host,
                    origin.port,
                    ssl=tls,
                    server_hostname=origin.host if tls is not None else None,
                )
        except TimeoutError as exc:
            raise ConnectError("upstream connect timed out") from exc
        except ssl.SSLError as exc:
            raise ConnectError(f"upstream TLS failed ({exc.reason or type(exc).__name__})") from exc
        except OSError as exc:
            raise ConnectError(f"upstream connection failed ({exc.strerror or type(exc).__name__})") from exc
        self._open.add(connection)
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = tls_context(self._ca_file)
        return self._tls

    def give_back(self, connection: Connection) -> None:
        self._release_gates(connection)
        if self._closed:
            connection.close()
            return
        connection.idle_since = self._clock.monotonic()
        self._idle.setdefault(connection.origin, []).append(connection)
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    def forget(self, connection: Connection) -> None:
        """A connection closed (by either side): out of the pool, its slot free."""
        self._release_gates(connection)
        self._open.discard(connection)
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)

    @staticmethod
    def _release_gates(connection: Connection) -> None:
        gates = connection.gates
        connection.gates = ()
        for gate in gates:
            gate.release()

    async def aclose(self) -> None:
        self._closed = True
        reaper, self._reaper = self._reaper, None
        await cancel_and_wait(reaper)
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
