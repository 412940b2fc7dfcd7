"""The health port's HTTP/1.0 server, built so the kubelet's probes are answered whatever other
clients on the pod network do.

One thread reads every connection's request and writes every answer without blocking (a selector),
so a client that connects and says nothing, trickles its request a byte at a time, or does not read
its answer costs a socket and a few bytes, never a thread. The answers are made by WSGI apps on
worker threads: one pool for the `scrape_paths` (/metrics) and one for everything else (the probes),
so scrapes never hold up a probe. Nothing runs while no connection is open.

Bounds: `max_connections` open at once. A newcomer's request is read as it is accepted (it is
usually there already), so it is no longer waited on. When a newcomer finds every place taken, the
oldest connection waiting on its client without being sent an answer (saying nothing, still sending
its request, or answered whole and not yet closed by its client) of the client address holding the
most connections is closed to make room; only when there is none, the connection being sent an
answer whose client moved it least recently (a scrape whose client reads is not cut for a newcomer
while anything else can give way). A newcomer whose address already holds
`max_connections_per_client` takes the place of that address's own connection chosen so (or, when
all of them are being answered, is closed). While every connection is being answered (the server's
own work, bounded by the app) no newcomer is accepted: it waits in the listen backlog until one is
answered; at most SCRAPES_AT_ONCE scrapes are, more are answered 503 at once, so scrapes cannot take
every connection either. A scrape holds its place until its connection ends (its answer, megabytes,
waits in the server until its client reads it): a newcomer scrape takes the place of the scrape
whose client moved it least recently, so clients that never read hold at most SCRAPES_AT_ONCE
answers, and cannot displace one being read. So
to keep a probe from being answered a client would need more addresses than there are connections
and to cycle through all of them within the time the probe takes to send its request. Every
connection ends `connection_timeout` seconds after it was accepted, whatever it is doing. A request
head is read strictly and bounded (http_head.py). Each answer ends its connection (http_conn.py).

Time is the injected clock's: each connection's deadline and the pause in accepting are on it, and
the selector waits until the clock's next deadline, so a test drives them with a FakeClock.
"""

from __future__ import annotations

import collections
import errno
import functools
import logging
import selectors
import socket
import threading
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sidecar.core.clock import Clock, SystemClock
from sidecar.telemetry.http_answer import StartResponse, WSGIApp, app_answer, plain_answer
from sidecar.telemetry.http_conn import Connection, Phase, Step
from sidecar.telemetry.http_head import BadRequest
from sidecar.telemetry.http_head import environ as _environ
from sidecar.telemetry.http_poll import Poller, SelectorPoller

__all__ = ["SCRAPES_AT_ONCE", "BoundedHttpServer", "StartResponse", "WSGIApp"]
_log = logging.getLogger("sidecar.telemetry")

SCRAPES_AT_ONCE = 4  # made, waiting for a worker or being sent; more are answered 503 at once
_ACCEPTS_PER_TURN = 64  # then the connections' own events get their turn
ACCEPT_PAUSE = 0.1  # seconds the listener is not watched after accept() ran out of descriptors or memory
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class BoundedHttpServer:
    """Serves `app` on the listening socket `sock` (it owns and closes it) from `start()` to `stop()`."""

    def __init__(
        self,
        sock: socket.socket,
        app: WSGIApp,
        *,
        max_connections: int,
        max_connections_per_client: int,
        connection_timeout: float,
        scrape_paths: Collection[str] = (),
        clock: Clock | None = None,
        poller: Poller | None = None,
    ) -> None:
        self._listener, self._app = sock, app
        self._max, self._per_client = max_connections, max_connections_per_client
        self._timeout, self._scrape_paths = connection_timeout, frozenset(scrape_paths)
        self._clock = clock or SystemClock()
        self._poller = poller or SelectorPoller()
        self._conns: dict[socket.socket, Connection] = {}  # by acceptance, so by deadline too
        self._answers: collections.deque[tuple[Connection, bytes]] = collections.deque()
        self._stopping = False
        self._scraping = 0  # scrapes whose connections are open or whose answers are being made
        self._accept_again: float | None = None  # while accepting pauses (out of descriptors): until when
        self._listening = False  # the listener is watched (not while paused, nor while no place can be made)
        self._starved = False  # the last accept() ran out of descriptors (told once per such spell)
        self._unwatchable = False  # the last newcomer could not be watched (told once per such spell)
        self.unwatchable_connections = 0  # newcomers closed because the selector refused them
        self._scrapes = ThreadPoolExecutor(2, thread_name_prefix="metrics-scrape")
        self._probes = ThreadPoolExecutor(2, thread_name_prefix="metrics-probe")
        self._thread = threading.Thread(target=self._run, name="metrics-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def open_connections(self) -> int:
        return len(self._conns)

    def start(self) -> None:
        self._listener.setblocking(False)
        self._listen_if_room(self._clock.monotonic())
        self._thread.start()

    def stop(self) -> None:
        """Stop at once: open connections are closed; an answer still being made is dropped."""
        self._stopping = True
        self._poller.wake()
        if self._thread.is_alive():
            self._thread.join()
        for executor in (self._scrapes, self._probes):
            executor.shutdown(wait=False, cancel_futures=True)
        for conn in list(self._conns.values()):
            self._close(conn)
        self._poller.close()
        self._listener.close()

    def _run(self) -> None:
        failing = False
        while not self._stopping:
            try:
                self.turn()
            except Exception:  # a bug of the loop's own: told (once while it lasts), the port serves on
                if not failing:
                    _log.error("health port serving loop failed", exc_info=True)
                failing = True
            else:
                failing = False

    def turn(self) -> None:
        """One turn of the serving loop: wait until a socket is ready or the clock's next deadline,
        then serve what is ready, hand out the answers made, accept newcomers, end what is due."""
        ready = self._poller.select(self._until_next_deadline(self._clock.monotonic()))
        accept = False
        for sock, data, mask in ready:  # the connections' own events first, then newcomers
            if sock is self._listener:
                accept = True
            elif (conn := self._conns.get(sock)) is not None and conn is data:  # else closed this turn
                self._serve(conn, conn.read if mask & selectors.EVENT_READ else conn.write)
        self._take_answers()
        if accept:
            self._accept()
        self._expire(self._clock.monotonic())
        self._listen_if_room(self._clock.monotonic())

    def _until_next_deadline(self, now: float) -> float | None:
        first = next(iter(self._conns.values()), None)
        times = [t for t in (None if first is None else first.deadline, self._accept_again) if t is not None]
        return max(0.0, min(times) - now) if times else None

    def _pause_accepting(self, now: float) -> None:
        """accept() ran out of descriptors (or memory): the newcomer stays in the listen backlog, so
        the listener stays readable; watching it would retry at once, forever, at full CPU."""
        self._accept_again = now + ACCEPT_PAUSE
        self._listen_if_room(now)

    def _full(self) -> bool:
        """No place can be made: every one is taken and being answered. A newcomer would be closed
        unanswered; in the listen backlog it waits until an answer is made, then takes a place."""
        return len(self._conns) >= self._max and not any(c.waits_on_client for c in self._conns.values())

    def _listen_if_room(self, now: float) -> None:
        """Watch the listener while newcomers can be accepted: not while accepting pauses, nor while
        no place can be made."""
        if self._accept_again is not None and now >= self._accept_again:
            self._accept_again = None
        wanted = self._accept_again is None and not self._full()
        if wanted == self._listening:
            return
        if not wanted:
            self._poller.forget(self._listener)
            self._listening = False
            return
        try:
            self._poller.watch(self._listener, selectors.EVENT_READ)
        except OSError as exc:  # the selector is out of memory too: try again after another pause
            _log.warning("health port cannot watch its listener", extra={"error": exc.strerror})
            self._accept_again = now + ACCEPT_PAUSE
            return
        self._listening = True

    def _expire(self, now: float) -> None:
        while (first := next(iter(self._conns.values()), None)) is not None and first.deadline <= now:
            self._close(first)

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_TURN):
            if self._full():  # the newcomer waits in the backlog (see _full)
                self._listen_if_room(self._clock.monotonic())
                return
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    if not self._starved:
                        _log.warning("health port cannot accept connections", extra={"error": exc.strerror})
                    self._starved = True
                    self._pause_accepting(self._clock.monotonic())
                else:  # the peer left before it was accepted
                    _log.debug("health port accept failed", exc_info=True)
                return
            self._starved = False
            conn = Connection(
                sock, str(address[0]), self._clock.monotonic() + self._timeout, self._clock.monotonic
            )
            if self._make_room(conn.client):
                self._admit(conn)
            else:
                sock.close()

    def _admit(self, conn: Connection) -> None:
        """Watch a newcomer; one the selector refuses (epoll out of memory, or past the user's
        max_user_watches) is closed, counted and told once per spell, and the server goes on."""
        try:
            conn.sock.setblocking(False)
            self._poller.watch(conn.sock, conn.events, conn)
        except OSError as exc:
            self.unwatchable_connections += 1
            if not self._unwatchable:
                _log.warning("health port cannot watch a new connection", extra={"error": exc.strerror})
            self._unwatchable = True
            self._poller.forget(conn.sock)
            conn.sock.close()
            return
        self._unwatchable = False
        self._conns[conn.sock] = conn
        self._serve(conn, conn.read)  # its request is often here already: it is no longer waited on

    def _make_room(self, client: str) -> bool:
        """Room for one more connection of `client`: a connection waiting on its client is closed
        when needed (see the module's doc); False when none can be."""
        own = [c for c in self._conns.values() if c.client == client]
        if len(own) >= self._per_client:
            victim = _victim(own, collections.Counter())
        elif len(self._conns) >= self._max:
            victim = _victim(
                self._conns.values(), collections.Counter(c.client for c in self._conns.values())
            )
        else:
            return True
        if victim is None:
            return False
        self._close(victim)
        return True

    def _serve(self, conn: Connection, step: Callable[[], bytes | Step]) -> None:
        """One step of one connection, then its socket watched for what it waits for next; an error
        nobody foresaw ends that connection, never the serving thread (every probe would go
        unanswered and the kubelet restart the sidecar)."""
        try:
            try:
                done = step()
            except BadRequest as exc:
                done = conn.answer(plain_answer(exc.status, exc.reason + "\n"))
            if isinstance(done, bytes):
                done = self._request(conn, done)
            if done is Step.CLOSE:
                self._close(conn)
            else:
                self._poller.watch(conn.sock, conn.events, conn)
        except Exception:
            _log.error("health port connection failed", exc_info=True)
            self._close(conn)

    def _request(self, conn: Connection, head: bytes) -> Step:
        """A whole head: its answer is made on a worker (or refused at once)."""
        try:
            environ = _environ(head, conn.client, self.address)
        except BadRequest as exc:
            return conn.answer(plain_answer(exc.status, exc.reason + "\n"))
        scrape = environ["PATH_INFO"] in self._scrape_paths
        if scrape and not self._room_for_scrape():
            return conn.answer(plain_answer("503 Service Unavailable", "too many scrapes at once\n"))
        conn.scrape = scrape
        self._scraping += conn.scrape
        (self._scrapes if conn.scrape else self._probes).submit(self._make_answer, conn, environ)
        return Step.WAIT

    def _room_for_scrape(self) -> bool:
        """A place for one more scrape: the scrape waiting longest on its client gives up its own
        when they are all taken; False when every one is being made."""
        if self._scraping < SCRAPES_AT_ONCE:
            return True
        waiting = (c for c in self._conns.values() if c.scrape and c.waits_on_client)
        victim = min(waiting, key=lambda c: c.moved, default=None)
        if victim is not None:
            self._close(victim)
        return victim is not None

    def _make_answer(self, conn: Connection, environ: dict[str, Any]) -> None:
        """On a worker thread: the app's answer, handed to the serving thread."""
        try:
            answer = app_answer(self._app, environ)
        except Exception:  # the handler itself failed (the app's own errors are a 500 already)
            _log.warning("health port answer failed", exc_info=True)
            answer = plain_answer("500 Internal Server Error", "internal error\n")
        self._answers.append((conn, answer))
        self._poller.wake()

    def _take_answers(self) -> None:
        while self._answers:
            conn, answer = self._answers.popleft()
            if self._conns.get(conn.sock) is conn:  # else it was closed meanwhile (its deadline)
                self._serve(conn, functools.partial(conn.answer, answer))
            else:
                self._scraping -= conn.scrape  # its place was held while its answer was made

    def _close(self, conn: Connection) -> None:
        if self._conns.pop(conn.sock, None) is None:
            return
        if conn.scrape and conn.phase is not Phase.ANSWERING:  # else its place is given back with its answer
            self._scraping -= 1
        self._poller.forget(conn.sock)
        try:
            conn.sock.close()
        except OSError:
            _log.debug("health port close failed", exc_info=True)


def _victim(conns: Iterable[Connection], held: collections.Counter[str]) -> Connection | None:
    """The connection to close for a newcomer: of those that wait on their clients and are not
    being sent an answer (saying nothing, trickling a head, or answered whole), the oldest of the
    address holding the most (`held`); only when there is none, the answer being sent whose client
    moved it least recently (a scrape whose client reads is cut only when nothing else can be)."""
    waiting = [c for c in conns if c.waits_on_client]
    quiet = [c for c in waiting if c.phase is not Phase.SENDING]
    if quiet:
        return max(quiet, key=lambda c: held[c.client])  # the first of the most: the oldest
    return min(waiting, key=lambda c: c.moved, default=None)
