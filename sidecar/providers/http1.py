"""The upstream HTTP/1.1 wire: one connection as an asyncio protocol, its answer parsed by
httptools (llhttp, the parser uvicorn uses), the request head, and the errors. The pool that owns
the connections is sidecar/providers/http_pool.py.

Why not aiohttp's client: one upstream request through it cost the sidecar about 0.25 ms of CPU at
saturation and 0.5 to 0.8 ms of latency at low load, a quarter of the sidecar's whole cost per call;
this client does the same exchange for a tenth of that (bench/analysis.md). What one connection does:

- one exchange at a time; bounded answers: at most 64 KiB of status line and headers, at most 200
  headers; the body is read in pieces whose total the caller bounds; reading pauses while 256 KiB
  are buffered unread; interim (1xx) answers are skipped; bytes after the answer mark the
  connection unusable; a server's `Keep-Alive: timeout=N` is kept for the pool;
- never: redirects (a 3xx is an answer; following it would carry the key elsewhere), proxies,
  HTTP/2, compression (it asks for `identity`; an encoded answer is refused). A header name or value
  that is not valid HTTP (CR, LF, NUL) is refused before anything is sent.

No timer lives here: every wait is bounded by the caller's `clock.timeout`.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 200
_PAUSE_AT = 256 * 1024  # unread body bytes buffered before reading from the socket pauses
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
DEFAULT_PORTS = {"http": 80, "https": 443}


class HttpError(Exception):
    """The exchange failed below HTTP semantics; the message never carries request data."""


class ConnectError(HttpError):
    """No connection to the upstream could be made (refused, unreachable, TLS, connect timeout)."""


class ConnectionBroke(HttpError):
    """The connection closed or reset before the answer was complete."""

    def __init__(self, message: str, *, answered: bool) -> None:
        super().__init__(message)
        self.answered = answered  # some bytes of an answer had arrived


class ProtocolError(HttpError):
    """The upstream's bytes are not an HTTP/1.1 answer this client accepts."""


class BadRequestHeader(ValueError):
    """A request header name or value that is not valid HTTP; nothing was sent."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: URL) -> Origin:
        if url.scheme not in DEFAULT_PORTS or not url.host:
            raise ConnectError(f"unsupported upstream URL scheme {url.scheme!r}")
        return cls(url.scheme, url.host, url.port or DEFAULT_PORTS[url.scheme])


class Response:
    """One answer: status and headers at once, the body read piece by piece."""

    def __init__(self, connection: Connection, status: int, headers: CIMultiDictProxy[str]) -> None:
        self._connection = connection
        self.status = status
        self.headers = headers

    async def read_chunk(self) -> bytes:
        """The body bytes that arrived since the last call (waiting for some); b"" at the end."""
        return await self._connection.read_body()

    def is_eof(self) -> bool:
        return self._connection.body_complete()

    def release(self) -> None:
        """Done with the answer: a fully read answer returns the connection to the pool, any other
        closes it (the upstream stops sending)."""
        self._connection.finish()

    close = release


class Pool(Protocol):
    """What a connection tells its pool (http_pool.Http1Client)."""

    def give_back(self, connection: Connection) -> None: ...

    def forget(self, connection: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one exchange at a time, its answer parsed as it arrives."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self._pool = pool
        self.origin = origin
        self.idle_since = 0.0
        self.keepalive_limit: float | None = None  # the server's own Keep-Alive timeout, if it sent one
        self.reused = False
        self.gates: tuple[asyncio.Semaphore, ...] = ()  # the in-use slots this connection holds
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._reset_exchange()

    def _reset_exchange(self) -> None:
        self._head_bytes = 0  # bytes read while the head was incomplete (bounds a head split over reads)
        self._header_size = 0  # the parsed headers' size (bounds a head that came in one read)
        self._header_items: list[tuple[str, str]] = []
        self._head: asyncio.Future[tuple[int, CIMultiDictProxy[str]]] | None = None
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._complete = False
        self._failure: HttpError | None = None
        self._reader: asyncio.Future[None] | None = None
        self._answered = False
        self._keep_alive = False
        self._delimited = False  # the body's end is marked (a length or chunked), not the close
        self._paused = False
        self._interim = False  # the message being parsed is a 1xx, not the answer
        self._trailing = False  # bytes after the answer are being parsed: ignored

    # --- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a registered subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self._head is None or self._complete or self._failure is not None:
            self._keep_alive = False  # bytes nobody asked for: the connection cannot be trusted
            self._abort()
            return
        self._answered = True
        waiting_for_head = not self._head.done()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"upstream sent bytes that are not HTTP/1.1 ({type(exc).__name__})"))
        if waiting_for_head and not self._head.done():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._fail(ProtocolError(f"upstream status line and headers over {MAX_HEAD_BYTES} bytes"))

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._pool.forget(self)
        if self._head is None or self._complete or self._failure is not None:
            return
        if self._head.done() and not self._delimited and exc is None:
            self._complete = True  # a body delimited by the close: the close is its end
            self._keep_alive = False
            self._wake()
            return
        where = "mid-body" if self._head.done() else "before the answer"
        self._fail(ConnectionBroke(f"upstream connection closed {where}", answered=self._answered))

    def pause_writing(self) -> None:  # request bodies are written at once; the kernel takes them
        pass

    def resume_writing(self) -> None:
        pass

    # --- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self._complete:  # a second answer to one request: keep the first, never reuse the connection
            self._trailing = True
            self._keep_alive = False
            self._abort()
        self._interim = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._trailing:
            return
        if len(self._header_items) >= MAX_HEADERS:
            self._fail(ProtocolError(f"upstream sent more than {MAX_HEADERS} headers"))
            return
        self._header_size += len(name) + len(value) + 4
        if self._header_size > MAX_HEAD_BYTES:
            self._fail(ProtocolError(f"upstream status line and headers over {MAX_HEAD_BYTES} bytes"))
            return
        self._header_items.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self._trailing:
            return
        status = self._parser.get_status_code()
        if status < 200:  # an interim answer (103 Early Hints): the real one follows
            self._interim = True
            self._header_items = []
            return
        headers = CIMultiDictProxy(CIMultiDict(self._header_items))
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._delimited = chunked or "content-length" in headers
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", ""):
            self._fail(
                ProtocolError(f"upstream sent a {encoding[:20]!r}-encoded body (identity was asked for)")
            )
            return
        if (announced := keepalive_timeout(headers.get("keep-alive", ""))) is not None:
            self.keepalive_limit = announced
        if self._head is not None and not self._head.done():
            self._head.set_result((status, headers))

    def on_body(self, body: bytes) -> None:
        if self._failure is not None or self._trailing:
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered >= _PAUSE_AT and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._failure is not None or self._interim or self._trailing:
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()
        self._wake()

    # --- the exchange ------------------------------------------------------------------------
    async def exchange(self, head: bytes, body: bytes | None) -> Response:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionBroke("upstream connection closed before the answer", answered=False)
        self._reset_exchange()
        self._parser = httptools.HttpResponseParser(self)
        self._head = self._loop.create_future()
        self._transport.write(head + body if body else head)
        status, headers = await self._head
        return Response(self, status, headers)

    async def read_body(self) -> bytes:
        while not self._body and not self._complete and self._failure is None:
            self._reader = self._loop.create_future()
            try:
                await self._reader
            finally:
                self._reader = None
        if self._body:
            data = b"".join(self._body)
            self._body.clear()
            self._buffered = 0
            if self._paused and self._transport is not None:
                self._paused = False
                self._transport.resume_reading()
            return data
        if self._failure is not None:
            raise self._failure
        return b""

    def body_complete(self) -> bool:
        return self._complete and not self._body

    def finish(self) -> None:
        if self._complete and self._keep_alive and self._failure is None and self._transport is not None:
            self._head = None
            self._pool.give_back(self)
        else:
            self._abort()
            self._pool.forget(self)

    def alive(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def close(self) -> None:
        self._abort()

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, failure: HttpError) -> None:
        if self._failure is None:
            self._failure = failure
        if self._head is not None and not self._head.done():
            self._head.set_exception(failure)
        self._wake()
        self._abort()

    def _wake(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.set_result(None)


def keepalive_timeout(header: str) -> float | None:
    """`timeout=N` of a Keep-Alive header, seconds; None when absent or not a number."""
    for part in header.split(","):
        name, _, value = part.partition("=")
        value = value.strip()
        if name.strip().lower() == "timeout" and value.isascii() and value.isdigit():  # not Latin-1's ²
            return float(value)
    return None


def request_head(
    method: str, url: URL, origin: Origin, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    host = origin.host if ":" not in origin.host else f"[{origin.host}]"
    if origin.port != DEFAULT_PORTS[origin.scheme]:
        host = f"{host}:{origin.port}"
    lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1", f"host: {host}"]
    for name, value in headers.items():
        lower = name.lower()
        if lower in ("host", "content-length", "transfer-encoding", "connection"):
            continue  # this client frames the request itself
        if not _TOKEN.match(name) or _BAD_VALUE.search(value):
            raise BadRequestHeader("a request header name or value is not valid HTTP")
        lines.append(f"{name}: {value}")
    if body is not None or method in ("POST", "PUT", "PATCH"):
        lines.append(f"content-length: {len(body or b'')}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise BadRequestHeader("a request header value is not Latin-1 text") from None
