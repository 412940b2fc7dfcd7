"""The health port's HTTP/1.0 server, built so the kubelet's probes are answered whatever other
clients on the pod network do.

One thread reads every connection's request and writes every answer without blocking (a selector),
so a client that connects and says nothing, trickles its request a byte at a time, or does not read
its answer costs a socket and a few bytes, never a thread. The answers are made by WSGI apps on
worker threads: one pool for the `scrape_paths` (/metrics) and one for everything else (the probes),
so scrapes never hold up a probe. Nothing runs while no connection is open.

Bounds: `max_connections` open at once. When a newcomer finds them all taken, the connection that
waits the longest on its client (still sending its request, or not reading its answer) of the client
address holding the most connections is closed to make room; a newcomer whose address already holds
`max_connections_per_client` takes the place of that address's own oldest such connection. Only when
every connection is being answered (the server's own work, bounded by the app) is the newcomer
closed; at most SCRAPES_AT_ONCE scrapes are, more are answered 503 at once, so scrapes cannot take
every connection either. A scrape holds its place until its connection ends (its answer, megabytes,
waits in the server until its client reads it): a newcomer scrape takes the place of the scrape
waiting longest on its client, so clients that never read hold at most SCRAPES_AT_ONCE answers. So
to keep a probe from being answered a client would need more addresses than there are connections
and to cycle through all of them within the time the probe takes to send its request. Every
connection ends `connection_timeout` seconds after it was accepted, whatever it is doing. A request
head is at most 16 KiB and 100 headers (else 431 / 400).
Each answer ends its connection; the server reads and drops what the client still sends after its
head until the client closes (a close with bytes unread would reset the connection and lose the
answer's tail).
"""

from __future__ import annotations

import collections
import contextlib
import email.parser
import errno
import functools
import http.client
import io
import logging
import selectors
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from wsgiref.handlers import SimpleHandler

_log = logging.getLogger("sidecar.telemetry")
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

HEAD_LIMIT = 16 * 1024
MAX_HEADERS = 100  # lines (http.client's own count took the head's closing blank line for one)
SCRAPES_AT_ONCE = 4  # made, waiting for a worker or being sent; more are answered 503 at once
_ACCEPTS_PER_TURN = 64  # then the connections' own events get their turn
ACCEPT_PAUSE = 0.1  # seconds the listener is not watched after accept() ran out of descriptors or memory
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    client: str
    deadline: float
    head: bytearray = field(default_factory=bytearray)
    out: memoryview | None = None
    answering: bool = False  # an app makes its answer: the server's work, not the client's
    draining: bool = False  # answered: what the client still sends is read and dropped until it closes
    scrape: bool = False  # its answer is a scrape's (the scrapes' own workers)


class _Handler(SimpleHandler):
    """wsgiref's handler on in-memory streams; a failing app's traceback goes to the log."""

    server_software = "sidecar"
    os_environ: dict[str, str] = {}  # noqa: RUF012 (else wsgiref copies the process's environment in)

    def log_exception(self, exc_info: Any) -> None:
        _log.warning("health port answer failed", exc_info=exc_info)


def _answer(app: WSGIApp, environ: dict[str, Any]) -> bytes:
    """The app's answer to `environ`; to HEAD without its body (its Content-Length is the GET's)."""
    out = io.BytesIO()
    _Handler(io.BytesIO(), out, io.StringIO(), environ, multithread=True, multiprocess=False).run(app)
    answer = out.getvalue()
    if environ["REQUEST_METHOD"] == "HEAD":
        return answer[: answer.find(b"\r\n\r\n") + 4]
    return answer


def _plain_answer(status: str, text: str) -> bytes:
    body = text.encode()
    head = f"HTTP/1.0 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode() + body


def _environ(head: bytes, client: str, server: tuple[str, int]) -> dict[str, Any]:
    """The WSGI environ of a request head (ValueError or http.client.HTTPException when malformed)."""
    line, _, rest = head.partition(b"\n")
    method, target, version = line.decode("latin-1").split()
    if not version.startswith("HTTP/"):
        raise ValueError("not an HTTP request line")
    path, _, query = _origin_form(target).partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": urllib.parse.unquote(path, "iso-8859-1"),
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": version,
        "SERVER_NAME": server[0],
        "SERVER_PORT": str(server[1]),
        "REMOTE_ADDR": client,
        "CONTENT_LENGTH": "",
    }
    if rest.count(b"\n") - 1 > MAX_HEADERS:  # its lines but the closing blank one
        raise ValueError("too many header lines")
    headers = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(rest.decode("latin-1"))
    for name, value in headers.items():  # the stdlib's header syntax, as http.client parses it
        key = name.replace("-", "_").upper()
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value.strip()
        elif "HTTP_" + key in environ:
            environ["HTTP_" + key] += "," + value.strip()
        else:
            environ["HTTP_" + key] = value.strip()
    return environ


def _origin_form(target: str) -> str:
    """The path and query of a request target: its absolute form (`http://host/path?query`, sent
    through proxies) reduced to them, as a server must accept it (RFC 9112 3.2.2)."""
    scheme, sep, rest = target.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return target
    at = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    return rest[at:] if rest[at:].startswith("/") else "/" + rest[at:]


def _head_end(head: bytearray) -> int:
    """Where the request head ends (its blank line), or -1 while it has not; a request line that is
    not `method target version` (HTTP/0.9's `GET /path` is the whole request) ends it at once."""
    line, newline, _ = head.partition(b"\n")
    if newline and len(line.split()) != 3:
        return len(line) + 1
    for mark in (b"\r\n\r\n", b"\n\n"):
        if (at := head.find(mark)) >= 0:
            return at + len(mark)
    return -1


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
    ) -> None:
        self._listener, self._app = sock, app
        self._max, self._per_client = max_connections, max_connections_per_client
        self._timeout, self._scrape_paths = connection_timeout, frozenset(scrape_paths)
        self._conns: dict[socket.socket, _Conn] = {}  # by acceptance, so by deadline too
        self._answers: collections.deque[tuple[_Conn, bytes]] = collections.deque()
        self._wake = socket.socketpair()
        self._stopping = False
        self._scraping = 0  # scrapes whose connections are open or whose answers are being made
        self._accept_again: float | None = None  # while the listener is not watched: when it is again
        self._starved = False  # the last accept() ran out of descriptors (told once per such spell)
        self._selector = selectors.DefaultSelector()
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
        for end in self._wake:
            end.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake[0], selectors.EVENT_READ)
        self._thread.start()

    def stop(self) -> None:
        """Stop at once: open connections are closed; an answer still being made is dropped."""
        self._stopping = True
        self._nudge()
        if self._thread.is_alive():
            self._thread.join()
        for executor in (self._scrapes, self._probes):
            executor.shutdown(wait=False, cancel_futures=True)
        for conn in list(self._conns.values()):
            self._close(conn)
        self._selector.close()
        self._listener.close()
        for end in self._wake:
            end.close()

    def _nudge(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            self._wake[1].send(b"x")

    def _run(self) -> None:
        while not self._stopping:
            events = self._selector.select(self._until_next_deadline(time.monotonic()))
            self._resume_accepting(time.monotonic())
            accept = False
            for key, mask in events:  # the connections' own events first, then newcomers
                if key.fileobj is self._listener:
                    accept = True
                elif key.fileobj is self._wake[0]:
                    with contextlib.suppress(OSError):
                        self._wake[0].recv(4096)
                else:
                    self._serve(key.data, self._read if mask & selectors.EVENT_READ else self._write)
            self._take_answers()
            if accept:
                self._accept()
            self._expire(time.monotonic())

    def _until_next_deadline(self, now: float) -> float | None:
        first = next(iter(self._conns.values()), None)
        times = [t for t in (None if first is None else first.deadline, self._accept_again) if t is not None]
        return max(0.0, min(times) - now) if times else None

    def _pause_accepting(self, now: float) -> None:
        """accept() ran out of descriptors (or memory): the newcomer stays in the listen backlog, so
        the listener stays readable; watching it would retry at once, forever, at full CPU."""
        self._selector.unregister(self._listener)
        self._accept_again = now + ACCEPT_PAUSE

    def _resume_accepting(self, now: float) -> None:
        if self._accept_again is not None and now >= self._accept_again:
            self._accept_again = None
            self._selector.register(self._listener, selectors.EVENT_READ)

    def _expire(self, now: float) -> None:
        while (first := next(iter(self._conns.values()), None)) is not None and first.deadline <= now:
            self._close(first)

    def _accept(self) -> None:
        for _ in range(_ACCEPTS_PER_TURN):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_RESOURCES:
                    if not self._starved:
                        _log.warning("health port cannot accept connections", extra={"error": exc.strerror})
                    self._starved = True
                    self._pause_accepting(time.monotonic())
                else:  # the peer left before it was accepted
                    _log.debug("health port accept failed", exc_info=True)
                return
            self._starved = False
            conn = _Conn(sock, str(address[0]), time.monotonic() + self._timeout)
            if not self._make_room(conn.client):
                sock.close()
                continue
            sock.setblocking(False)
            self._conns[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _make_room(self, client: str) -> bool:
        """Room for one more connection of `client`: a connection waiting on its client is closed
        when needed (see the module's doc); False when none can be."""
        own = [c for c in self._conns.values() if c.client == client]
        if len(own) >= self._per_client:
            victim = next((c for c in own if not c.answering), None)
        elif len(self._conns) >= self._max:
            held = collections.Counter(c.client for c in self._conns.values())
            waiting = [c for c in self._conns.values() if not c.answering]
            victim = max(waiting, key=lambda c: held[c.client], default=None)  # the oldest of the most
        else:
            return True
        if victim is None:
            return False
        self._close(victim)
        return True

    def _serve(self, conn: _Conn, step: Callable[[_Conn], None]) -> None:
        """One step of one connection; an error nobody foresaw ends that connection, never the
        serving thread (every probe would go unanswered and the kubelet restart the sidecar)."""
        try:
            step(conn)
        except Exception:
            _log.error("health port connection failed", exc_info=True)
            self._close(conn)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(4096 if not conn.draining else 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        if conn.draining:
            return
        conn.head += data
        end = _head_end(conn.head)
        if (end < 0 and len(conn.head) > HEAD_LIMIT) or end > HEAD_LIMIT:  # however the head arrived
            too_large = "431 Request Header Fields Too Large"
            self._send(conn, _plain_answer(too_large, "request head too large\n"))
            return
        if end < 0:
            return
        try:
            environ = _environ(bytes(conn.head[:end]), conn.client, self.address)
        except (ValueError, http.client.HTTPException):
            self._send(conn, _plain_answer("400 Bad Request", "malformed request\n"))
            return
        scrape = environ["PATH_INFO"] in self._scrape_paths
        if scrape and not self._room_for_scrape():
            self._send(conn, _plain_answer("503 Service Unavailable", "too many scrapes at once\n"))
            return
        conn.answering, conn.scrape = True, scrape
        self._selector.unregister(conn.sock)
        self._scraping += conn.scrape
        (self._scrapes if conn.scrape else self._probes).submit(self._make_answer, conn, environ)

    def _room_for_scrape(self) -> bool:
        """A place for one more scrape: the scrape waiting longest on its client gives up its own
        when they are all taken; False when every one is being made."""
        if self._scraping < SCRAPES_AT_ONCE:
            return True
        victim = next((c for c in self._conns.values() if c.scrape and not c.answering), None)
        if victim is not None:
            self._close(victim)
        return victim is not None

    def _make_answer(self, conn: _Conn, environ: dict[str, Any]) -> None:
        """On a worker thread: the app's answer, handed to the serving thread."""
        try:
            answer = _answer(self._app, environ)
        except Exception:  # the handler itself failed (the app's own errors are a 500 already)
            _log.warning("health port answer failed", exc_info=True)
            answer = _plain_answer("500 Internal Server Error", "internal error\n")
        self._answers.append((conn, answer))
        self._nudge()

    def _take_answers(self) -> None:
        while self._answers:
            conn, answer = self._answers.popleft()
            if self._conns.get(conn.sock) is conn:  # else it was closed meanwhile (its deadline)
                conn.answering = False
                self._serve(conn, functools.partial(self._send, answer=answer))
            else:
                self._scraping -= conn.scrape  # its place was held while its answer was made

    def _send(self, conn: _Conn, answer: bytes) -> None:
        conn.out = memoryview(answer)
        if conn.sock in self._selector.get_map():
            self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
        else:
            self._selector.register(conn.sock, selectors.EVENT_WRITE, conn)
        self._write(conn)

    def _write(self, conn: _Conn) -> None:
        assert conn.out is not None
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client went away
            self._close(conn)
            return
        conn.out = conn.out[sent:]
        if not conn.out:
            self._drain(conn)

    def _drain(self, conn: _Conn) -> None:
        """The whole answer is with the kernel: end the sending (FIN), but read on until the client
        closes (or its deadline, or a newcomer needs its place). Closing with the client's further
        bytes (a body, pipelined requests) unread would make the kernel reset the connection and drop
        the answer's tail it has not yet sent."""
        conn.out, conn.draining = None, True
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:  # the client went away
            self._close(conn)
            return
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)

    def _close(self, conn: _Conn) -> None:
        if self._conns.pop(conn.sock, None) is None:
            return
        if conn.scrape and not conn.answering:  # else its place is given back with its answer
            self._scraping -= 1
        with contextlib.suppress(KeyError, ValueError):  # not registered (or its descriptor is gone)
            self._selector.unregister(conn.sock)
        conn.sock.close()
