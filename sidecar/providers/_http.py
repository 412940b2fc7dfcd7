"""The one shared, pooled HTTP client, and the one place HTTP failures are classified (with
upstream_errors.py: what a failure status and its body say).

Every network await is bounded by min(read timeout, the caller's remaining deadline), and no
await spans a `yield`, so a timeout can never fire inside the caller's code.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from yarl import URL

from sidecar.config.schema import HttpSettings
from sidecar.core.clock import DEADLINE_MARGIN, Clock, Deadline
from sidecar.core.errors import (
    DeadlineExceededError,
    ProviderError,
    ProviderMalformedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    UpstreamBusyError,
)
from sidecar.core.outcome import UpstreamWaits
from sidecar.providers import http1
from sidecar.providers.http_pool import Http1Client, PoolBusy, PoolLimits, tls_context
from sidecar.providers.sse import SseDecoder, SseEvent
from sidecar.providers.upstream_errors import RetryAfterPolicy, credentials_of, error_body, status_error
from sidecar.telemetry.tracing import inject_trace_context

_MAX_JSON_BODY = 32 * 1024 * 1024
_MAX_STREAM_BODY = 64 * 1024 * 1024  # far above any answer within limits.max_tokens_cap, on any wire

Url = str | URL  # a URL object when the path must go out exactly as encoded (signed requests)
Tolerated = Callable[[int, Mapping[str, str]], bool]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Bounds for one upstream attempt, and where its waits on the upstream are reported."""

    read_seconds: float
    deadline: Deadline
    waits: UpstreamWaits | None = None  # the call's outcome (None for probes)
    idle_seconds: float | None = None  # a stream: the longest wait for an event that carries data

    def next_wait(self) -> float:
        remaining = self.deadline.remaining()
        return self.read_seconds if remaining is None else min(self.read_seconds, remaining)


class Progress:
    """When a stream last made progress as its consumer counts it (a complete SSE line, a whole
    event-stream message): the read timeout bounds the wait from then, not only each read, so an
    upstream trickling bytes that never complete anything is as silent as one sending none."""

    __slots__ = ("_clock", "at", "data_at")

    def __init__(self, clock: Clock) -> None:
        self._clock, self.at = clock, clock.monotonic()
        self.data_at = self.at  # the last event that carried data (not a keep-alive)

    def mark(self) -> None:
        self.at = self._clock.monotonic()

    def mark_data(self) -> None:
        self.data_at = self._clock.monotonic()

    def wait(self, timeouts: Timeouts) -> float:
        """The next read's bound: the read timeout left since the last progress and the idle bound
        left since the last data, within the deadline."""
        now = self._clock.monotonic()
        left = timeouts.read_seconds - (now - self.at)
        if timeouts.idle_seconds is not None:
            left = min(left, timeouts.idle_seconds - (now - self.data_at))
        return max(0.0, min(timeouts.next_wait(), left))

    def idle(self, timeouts: Timeouts) -> bool:
        """Whether the idle bound has run out (a read timed out on it, not on the read timeout)."""
        if timeouts.idle_seconds is None:
            return False
        return self._clock.monotonic() - self.data_at >= timeouts.idle_seconds - DEADLINE_MARGIN


class HttpClient:
    """One connection pool (sidecar/providers/http_pool.py) shared by every provider adapter."""

    def __init__(self, settings: HttpSettings, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._pool: Http1Client | None = None
        self._retry_after = RetryAfterPolicy(settings.max_retry_after_seconds, clock)
        # a bundle it cannot load fails start-up, naming the setting, not every HTTPS call
        self._tls = tls_context(settings.ca_file) if settings.ca_file is not None else None

    def _client(self) -> Http1Client:
        if self._pool is None:  # made on first use: it needs the running loop
            limits = PoolLimits(
                max_connections=self._settings.max_connections,
                max_per_host=self._settings.max_connections_per_host,
                keepalive_seconds=self._settings.keepalive_seconds,
                connect_seconds=self._settings.connect_timeout_seconds,
            )
            self._pool = Http1Client(limits, self._clock, ca_file=self._settings.ca_file, tls=self._tls)
        return self._pool

    @property
    def clock(self) -> Clock:
        """The clock every upstream wait is timed on (providers time their own waits with it)."""
        return self._clock

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None

    async def post_json(
        self, url: Url, *, headers: Mapping[str, str], body: object, timeouts: Timeouts
    ) -> Any:
        """POST a JSON body; return the parsed JSON answer or raise a classified ProviderError."""
        return await self._request_json("POST", url, _json_headers(headers), _encode(body), timeouts)

    async def get_json(
        self,
        url: Url,
        *,
        headers: Mapping[str, str],
        timeouts: Timeouts,
        tolerate: Tolerated | None = None,
        max_bytes: int = _MAX_JSON_BODY,
    ) -> Any:
        """GET a JSON document of at most `max_bytes`; return it parsed or raise a classified
        ProviderError (a larger one: ProviderMalformedError, read no further than the bound).

        A failure status that `tolerate(status, headers)` accepts returns None instead (a probe for
        which "authenticated but not allowed to list" still proves the endpoint and the credential).
        """
        return await self._request_json(
            "GET", url, _json_headers(headers, body=False), None, timeouts, tolerate, max_bytes
        )

    async def _request_json(
        self, method: str, url: Url, headers: Mapping[str, str], data: bytes | None, timeouts: Timeouts,
        tolerate: Tolerated | None = None, max_bytes: int = _MAX_JSON_BODY,
    ) -> Any:  # fmt: skip
        with map_http_errors(timeouts.deadline):
            with self._waiting(timeouts, from_slot=True) as slotted:
                resp = await self._client().request(
                    method, _url(url), headers, data, wait=timeouts.next_wait, slotted=slotted
                )
            try:
                if resp.status >= 300 and tolerate is not None and tolerate(resp.status, resp.headers):
                    return None
                if resp.status >= 300:  # redirects are not followed: they would carry the key elsewhere
                    raise await self._status_error(resp, timeouts, headers)
                async with self._clock.timeout(timeouts.next_wait()):
                    with self._waiting(timeouts):
                        raw = await _read_bounded(resp, max_bytes)
            finally:
                resp.release()  # fully read: back to the pool; else closed
        return _decode(raw)

    async def _status_error(
        self, resp: http1.Response, timeouts: Timeouts, headers: Mapping[str, str]
    ) -> ProviderError:
        """The error of a failure status, classified by the status: its body (the upstream's own
        message) is read for at most settings.http.error_body_timeout_seconds and 64 KiB, and what
        arrived by then is used. A body that drips or breaks off never turns a 429 into a timeout."""
        wait = min(self._settings.error_body_timeout_seconds, timeouts.next_wait())
        with self._waiting(timeouts):
            body = await error_body(resp, self._clock, wait)
        return status_error(resp.status, resp.headers, body, self._retry_after, credentials_of(headers))

    @contextmanager
    def _waiting(self, timeouts: Timeouts, *, from_slot: bool = False) -> Iterator[Callable[[], None]]:
        """Report the time inside as waiting on the upstream: connecting, sending, the answer's head
        and body arriving. Encoding the request and parsing the answer are the sidecar's own time,
        and so is waiting for one of its own connection slots: `from_slot` starts the wait only when
        the function yielded is called (the pool calls it once it holds a slot)."""
        waits, started = timeouts.waits, False

        def start() -> None:
            nonlocal started
            if waits is not None and not started:
                started = True
                waits.upstream_wait_started(self._clock.monotonic())

        if not from_slot:
            start()
        try:
            yield start
        finally:
            if started and waits is not None:
                waits.upstream_wait_ended(self._clock.monotonic())

    async def post_sse(
        self,
        url: Url,
        *,
        headers: Mapping[str, str],
        body: object,
        timeouts: Timeouts,
        keepalive: Callable[[SseEvent], bool] | None = None,
    ) -> AsyncGenerator[list[SseEvent], None]:
        """POST a JSON body; yield the server-sent events of the answer, one list per network read.

        Events that arrived together stay together, so a layer above can send them on as one
        message: a bursty upstream then costs one downstream write per burst, not per token.
        The read timeout bounds the time from the request to the first complete line and between
        complete lines (an event's, or a keep-alive comment), not only each read: an upstream
        trickling bytes that never end a line is as silent as one that sends nothing. The idle
        bound (`timeouts.idle_seconds`) counts only events that carry data, and of those not the
        provider's own keep-alive events (`keepalive`, e.g. Anthropic's `ping`): an upstream sending
        nothing but keep-alives is a timeout, not a stream that lasts to the deadline.
        """
        decoder, progress = SseDecoder(), Progress(self._clock)
        reads = self.post_stream(
            url, headers=headers, body=body, timeouts=timeouts, kind="text/event-stream", progress=progress
        )
        try:
            async with aclosing(reads):
                async for data in reads:
                    if b"\n" in data or b"\r" in data:
                        progress.mark()
                    if events := decoder.feed(data):
                        if keepalive is None or not all(map(keepalive, events)):
                            progress.mark_data()
                        yield events
        except ProviderTimeoutError as exc:
            if progress.idle(timeouts):
                raise ProviderTimeoutError(
                    f"upstream sent no event with data for {timeouts.idle_seconds:g}s "
                    "(stream_idle_timeout_seconds; keep-alive comments do not count)"
                ) from exc
            raise
        if events := decoder.close():
            yield events

    async def post_stream(
        self,
        url: Url,
        *,
        headers: Mapping[str, str],
        body: object,
        timeouts: Timeouts,
        kind: str,
        progress: Progress | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """POST a JSON body; yield the bytes of a streamed answer of content type `kind` as they arrive
        (at most 64 MiB of them: an upstream that never ends is a bad answer, not an endless relay).
        Each read waits at most the read timeout, or with `progress` what is left of it since the
        consumer last marked progress."""
        with map_http_errors(timeouts.deadline):
            body_bytes, sent_headers = _encode(body), _json_headers(headers)
            with self._waiting(timeouts, from_slot=True) as slotted:
                resp = await self._client().request(
                    "POST", _url(url), sent_headers, body_bytes, wait=timeouts.next_wait, slotted=slotted
                )
        try:
            if resp.status >= 300:  # redirects are not followed: they would carry the key elsewhere
                raise await self._status_error(resp, timeouts, sent_headers)
            if kind not in resp.headers.get("content-type", "").lower():  # media types ignore case
                sent = resp.headers.get("content-type") or "no content type"
                raise ProviderMalformedError(f"expected {kind}, the upstream sent {sent[:80]}")
            received = 0
            while True:
                wait = timeouts.next_wait() if progress is None else progress.wait(timeouts)
                with map_http_errors(timeouts.deadline):
                    async with self._clock.timeout(wait):
                        with self._waiting(timeouts):
                            data = await resp.read_chunk()
                if not data:
                    return
                received += len(data)
                if received > _MAX_STREAM_BODY:  # an upstream that never ends is not relayed forever
                    raise ProviderMalformedError(f"upstream stream larger than {_MAX_STREAM_BODY} bytes")
                yield data
        finally:
            resp.release()  # fully read: back to the pool; abandoned mid-way: closed, the upstream stops


@contextmanager
def map_http_errors(deadline: Deadline) -> Iterator[None]:
    """Turn the HTTP client's and timeout exceptions into ProviderErrors (or the caller's deadline)."""
    try:
        yield
    except ProviderError:
        raise
    except TimeoutError as exc:  # a timer at (or a hair before) the caller's deadline is the caller's
        if deadline.expired(DEADLINE_MARGIN):
            raise DeadlineExceededError("the call's deadline passed while waiting upstream") from exc
        raise ProviderTimeoutError("upstream did not answer within the read timeout") from exc
    except PoolBusy as exc:  # the sidecar's own connection limit: never the upstream's failure
        if deadline.expired(DEADLINE_MARGIN):
            raise DeadlineExceededError(
                "the call's deadline passed waiting for an upstream connection"
            ) from exc
        raise UpstreamBusyError(
            "every connection this sidecar may open to the upstream is in use; retry", retry_after=1.0
        ) from exc
    except http1.ConnectionBroke as exc:
        if exc.answered:
            raise ProviderUnavailableError("upstream connection broke mid-answer") from exc
        raise ProviderUnavailableError("upstream connection failed (closed before answering)") from exc
    except http1.ConnectError as exc:
        raise ProviderUnavailableError(str(exc)) from exc
    except http1.ProtocolError as exc:
        raise ProviderMalformedError(str(exc)) from exc
    except http1.BadRequestHeader as exc:  # nothing was sent
        raise ProviderRejectedError(f"{exc}; nothing was sent") from exc
    except OSError as exc:
        raise ProviderUnavailableError(f"upstream connection failed ({exc.strerror})") from exc


async def _read_bounded(resp: http1.Response, limit: int) -> bytes:
    """The whole body, or ProviderMalformedError once it passes `limit` (at once when its declared
    Content-Length does: nothing of it is read)."""
    declared = resp.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ProviderMalformedError(f"upstream body larger than {limit} bytes")
    parts: list[bytes] = []
    size = 0
    while data := await resp.read_chunk():
        parts.append(data)
        size += len(data)
        if size > limit:
            raise ProviderMalformedError(f"upstream body larger than {limit} bytes")
    return b"".join(parts)


def _json_headers(headers: Mapping[str, str], *, body: bool = True) -> dict[str, str]:
    """A JSON request's headers: what the body is, or (without one) what the answer should be."""
    kind = {"content-type": "application/json"} if body else {"accept": "application/json"}
    merged = {**kind, "accept-encoding": "identity", **headers}  # see http1.py: no compression
    inject_trace_context(merged)  # W3C traceparent of the current attempt span, when tracing
    return merged


def _url(url: Url) -> URL:
    """A URL object as given (a signed request's path goes out exactly as encoded), else parsed."""
    return url if isinstance(url, URL) else URL(url)


def _encode(body: object) -> bytes:
    """JSON-encode a body; bytes are sent as they are (a signed request's body must not change).

    orjson: compact UTF-8 like json.dumps(separators=(",", ":"), ensure_ascii=False), in about 0.2 µs
    against 6.5 µs for a one-message chat body (bench/analysis.md)."""
    if isinstance(body, bytes):
        return body
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:  # the caller's own JSON (tool arguments) past 255 levels
        raise ProviderRejectedError(
            "the request is nested too deeply to encode as JSON; nothing was sent"
        ) from exc


def _decode(raw: bytes) -> Any:
    """orjson: 3 µs against 14 µs for a recorded chat completion; NaN, Infinity and integers beyond
    64 bits are malformed answers here."""
    try:
        return orjson.loads(raw)
    except ValueError as exc:
        raise ProviderMalformedError("upstream answered with invalid JSON") from exc


def decode_json(text: str) -> Any:
    """Parse one JSON document of an upstream stream, classifying garbage once."""
    try:
        return orjson.loads(text)
    except ValueError as exc:
        raise ProviderMalformedError("upstream sent an event that is not JSON") from exc
