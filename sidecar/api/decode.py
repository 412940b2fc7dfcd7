"""Tolerant request decoding: bytes that do not parse are the caller's error, not ours.

grpc's own deserialization failure answers `UNKNOWN` and logs a traceback per request, so a bad
client can flood the log. `add_service` registers any servicer from its service descriptor with
handlers that take the raw request bytes and parse them here: a request that does not parse (garbage,
or a string field that is not UTF-8) is answered `INVALID_ARGUMENT` with reason `MALFORMED_REQUEST`
and, when the wire format can be walked to it, a `BadRequest` naming the field path
(`input.messages[2].content[0].text`). Such requests are logged by one rate-limited line, never per request.

    add_service(server, servicer, generation_service_pb2.DESCRIPTOR.services_by_name["GenerationService"])
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, NoReturn

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message

from sidecar.api.errors import abort
from sidecar.api.gate import rpc_failure
from sidecar.api.wire import bad_utf8_field, fields, too_many_elements
from sidecar.core.clock import DEADLINE_MARGIN, Clock, SystemClock
from sidecar.core.errors import CallerNotReadingError, FieldViolation, InvalidRequestError
from sidecar.telemetry.logging import RateLimitedLog

Context = grpc.aio.ServicerContext[Any, Any]


MAX_ELEMENTS = 100_000  # messages and repeated values one request may parse into (about 7 MB)


class MalformedRequestError(InvalidRequestError):
    """The request bytes are not a valid message of the method's request type."""

    reason = "MALFORMED_REQUEST"


class RequestTooComplexError(MalformedRequestError):
    """A valid message, but one whose parse would allocate more than MAX_ELEMENTS elements."""

    reason = "REQUEST_TOO_COMPLEX"

    def __init__(self, field: str) -> None:
        what = f"more than {MAX_ELEMENTS:,} elements (messages and repeated values) in one request"
        super().__init__([FieldViolation(field, what)])


class RequestDecoder:
    """Parses one request type; failures become `MalformedRequestError`, logged at most once a minute."""

    def __init__(
        self,
        descriptor: Descriptor,
        log: RateLimitedLog,
        on_request: Callable[[int], None] | None = None,
        on_malformed: Callable[[MalformedRequestError], None] | None = None,
    ) -> None:
        self._descriptor, self._log, self._on_request = descriptor, log, on_request
        self._on_malformed = on_malformed
        self._cls: type[Message] = message_factory.GetMessageClass(descriptor)
        # upb parses a message type without fields leniently: a field numbered 0 (never valid) passes
        self._walk_tags = not descriptor.fields

    def seen(self, size: int) -> None:
        """Tell the size observer about a request (when it arrives, and again when it is done)."""
        if self._on_request is not None:
            self._on_request(size)

    def __call__(self, raw: bytes) -> Message:
        self.seen(len(raw))
        if (crowded := too_many_elements(self._descriptor, raw, MAX_ELEMENTS)) is not None:
            self._log.warning("request with too many elements", extra={"type": self._descriptor.full_name})
            too_complex = RequestTooComplexError(crowded)
            self._refused(too_complex)
            raise too_complex
        try:
            if self._walk_tags and raw:
                for _ in fields(memoryview(raw)):  # whole fields, none numbered 0
                    pass
            return self._cls.FromString(raw)
        except (DecodeError, RecursionError, ValueError, IndexError) as exc:
            where = bad_utf8_field(self._descriptor, raw)
            self._log.warning(
                "undecodable request", extra={"type": self._descriptor.full_name, "field": where or ""}
            )
            err = _malformed(self._descriptor, where)
            self._refused(err)
            raise err from exc

    def _refused(self, err: MalformedRequestError) -> None:
        if self._on_malformed is not None:
            self._on_malformed(err)


def _malformed(descriptor: Descriptor, where: str | None) -> MalformedRequestError:
    if where is not None:
        return MalformedRequestError([FieldViolation(where, "not valid UTF-8")])
    return MalformedRequestError([FieldViolation("", f"not a valid {descriptor.full_name} message")])


def add_service(
    server: grpc.aio.Server,
    servicer: object,
    service: ServiceDescriptor,
    *,
    clock: Clock | None = None,
    log: logging.Logger | None = None,
    on_request: Callable[[int], None] | None = None,
    on_malformed: Callable[[str, MalformedRequestError], None] | None = None,
    write_timeout: float | None = None,
) -> None:
    """Register every method of `service` on `server`, implemented by `servicer`'s method of the same
    name, with tolerant request decoding (responses are serialized as usual). `on_request` is told
    each request's size in bytes (the allocator trimmer); `on_malformed` each refused request, with
    its method's name (the generation metrics count them)."""
    clock = clock or SystemClock()
    limited = RateLimitedLog(log or logging.getLogger("sidecar.api"), clock, interval=60.0)
    writer = Writer(clock, write_timeout, log or logging.getLogger("sidecar.api"))
    handlers = {}
    for m in service.methods:
        told = None if on_malformed is None else partial(on_malformed, m.name)
        decode = RequestDecoder(m.input_type, limited, on_request, told)
        handlers[m.name] = _handler(m, getattr(servicer, m.name), decode, writer)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)  # type: ignore[attr-defined]


class Writer:
    """Sends the responses of a server stream, each waiting at most `timeout` seconds (None:
    unbounded) for gRPC flow control to take it: a caller that reads nothing must not hold the call,
    its admission and quota slots and its upstream stream until its deadline. One watchdog timer per
    stream checks the write in progress (a timer around every write cost about 4 µs per event)."""

    def __init__(self, clock: Clock, timeout: float | None, log: logging.Logger) -> None:
        self._clock, self._timeout, self._log = clock, timeout, log

    def watch(self) -> WriteWatch | None:
        """The current task's watchdog (None without a bound); `close()` it when the stream ends."""
        if self._timeout is None:
            return None
        task = asyncio.current_task()
        assert task is not None
        return WriteWatch(self._clock, self._timeout, task)

    async def __call__(self, context: Context, response: Message, watch: WriteWatch | None) -> None:
        if watch is None:
            await context.write(response)
            return
        watch.since = self._clock.monotonic()
        try:
            await context.write(response)
        except asyncio.CancelledError:
            if not watch.fired or watch.task.uncancel() > 0:
                raise  # the caller gone, or a cancellation of someone else's on top of the watchdog's
            self._log.warning(
                "stream ended: its caller read nothing for %gs",
                self._timeout,
                extra={"reason": CallerNotReadingError.reason},
            )
            raise CallerNotReadingError(
                f"the caller read nothing of the stream for {self._timeout:g}s "
                "(settings.stream_write_timeout_seconds); the call was ended"
            ) from None
        watch.since = None


class WriteWatch:
    """A stream's write watchdog: fires when one write has waited `timeout` seconds, cancelling the
    stream's task (which the write turns into CallerNotReadingError); otherwise re-arms itself for
    when the write in progress would have waited that long, or a whole `timeout` later."""

    __slots__ = ("_clock", "_timeout", "_timer", "fired", "since", "task")

    def __init__(self, clock: Clock, timeout: float, task: asyncio.Task[Any]) -> None:
        self._clock, self._timeout, self.task = clock, timeout, task
        self.since: float | None = None  # when the write in progress began; None between writes
        self.fired = False
        self._timer = clock.call_later(timeout, self._check)

    def _check(self) -> None:
        since, now = self.since, self._clock.monotonic()
        if since is not None and now - since >= self._timeout - DEADLINE_MARGIN:
            self.fired = True
            self.task.cancel()
            return
        due = self._timeout if since is None else since + self._timeout - now
        self._timer = self._clock.call_later(due, self._check)

    def close(self) -> None:
        self._timer.cancel()


def _handler(
    method: Any, behavior: Callable[..., Any], decode: RequestDecoder, writer: Writer
) -> grpc.RpcMethodHandler[Any, Any]:
    serialize = message_factory.GetMessageClass(method.output_type).SerializeToString
    if method.client_streaming:
        wrapped_stream = _streaming_request(behavior, decode, method.server_streaming)
        if method.server_streaming:
            return grpc.stream_stream_rpc_method_handler(wrapped_stream, response_serializer=serialize)
        return grpc.stream_unary_rpc_method_handler(wrapped_stream, response_serializer=serialize)
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(
            _unary_request_stream(behavior, decode, method.name, writer), response_serializer=serialize
        )
    handle = _unary_request(behavior, decode, method.name)
    return grpc.unary_unary_rpc_method_handler(handle, response_serializer=serialize)


def _unary_request(
    behavior: Callable[[Message, Context], Awaitable[Message]], decode: RequestDecoder, rpc: str
) -> Callable[[bytes, Context], Awaitable[Message]]:
    async def handle(raw: bytes, context: Context) -> Message:
        size, request = len(raw), None
        try:
            try:
                request = decode(raw)
            except MalformedRequestError as err:
                await abort(context, err)
            try:
                return await behavior(request, context)
            except Exception as exc:  # what a servicer left unclassified: INTERNAL here, not grpc's UNKNOWN
                await _unclassified(context, exc, rpc)
        except BaseException as ended:  # an abort, the caller gone: the RPC is over
            forget_frames(ended)
            raw, request = b"", None  # this frame outlives the RPC (see forget_frames)
            raise
        finally:
            decode.seen(size)

    return handle


def _unary_request_stream(
    behavior: Callable[[Message, Context], AsyncIterator[Message]],
    decode: RequestDecoder,
    rpc: str,
    write: Writer,
) -> Callable[[bytes, Context], Awaitable[None]]:
    """A coroutine that writes each response (not an async generator gRPC iterates): when the caller
    goes while a response waits to be sent, gRPC cancels this task, so the stream is closed here,
    in the call's own task and context. An async generator it would drop unclosed, for Python's
    finalizer to close later in another task, where the pipeline's `finally` blocks could not
    restore what they set in the call's context (with tracing on, an ERROR line each time)."""

    async def handle(raw: bytes, context: Context) -> None:
        size, request, stream = len(raw), None, None
        try:
            try:
                request = decode(raw)
            except MalformedRequestError as err:
                await abort(context, err)
            stream = behavior(request, context)
            try:
                if inspect.isawaitable(stream):  # a servicer writing its own responses (Health.Watch)
                    await stream
                else:
                    watch = write.watch()
                    try:
                        async for response in stream:
                            await write(context, response, watch)
                    finally:
                        if watch is not None:
                            watch.close()
            except CallerNotReadingError as exc:  # wind the call down (settle, close) before its status
                await _closed(stream)
                await _unclassified(context, exc, rpc)
            except Exception as exc:
                await _unclassified(context, exc, rpc)
        except BaseException as ended:  # an abort, the caller gone: the RPC is over
            forget_frames(ended)
            raw, request = b"", None  # this frame outlives the RPC (see forget_frames)
            raise
        finally:
            closing, stream = stream, None
            await _closed(closing)
            decode.seen(size)

    return handle


async def _closed(stream: object) -> None:
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def forget_frames(exc: BaseException) -> None:
    """Drop the tracebacks of an ending RPC's exception and of the ones it chains: they hold the
    frames it passed through, which hold the request. grpc keeps an abort's exception in the RPC's
    state, which the handler's `context` holds, so exception, traceback and frames are a reference
    cycle (as is any exception kept by a frame it passed through: a helper re-raising its argument,
    a list of attempts' errors) that only a full garbage collection frees; the collector runs by
    counts of Python objects, while a decoded request is mostly protobuf arena (8 MiB of tiny
    repeated messages is about 300 MB), so such requests alone grew the process without bound.
    Frames are not cleared (in Python 3.11 that would close a coroutine still suspended); the
    handler's own frame stays in the re-raised exception's traceback, so it drops its request."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending += (current.__cause__, current.__context__)


async def _unclassified(context: Context, exc: Exception, rpc: str) -> NoReturn:
    """INTERNAL for an exception the servicer did not classify, unless the RPC is over already: a
    caller that went away (its deadline, its cancel) makes the servicer's own abort fail, and that
    is neither a crash nor anything to answer."""
    if context.cancelled() or context.done():
        raise exc
    await rpc_failure(context, exc, rpc)


def _streaming_request(
    behavior: Callable[..., Any], decode: RequestDecoder, server_streaming: bool
) -> Callable[..., Any]:
    """Client-streaming methods (reflection's): each request is decoded as the servicer reads it; a
    bad one aborts. A coroutine either way: grpc iterates only a handler that is an async generator
    function itself, so a stream of responses is written here, as `_unary_request_stream` does."""

    def decoded(requests: AsyncIterator[bytes], context: Context) -> AsyncIterator[Message]:
        async def each() -> AsyncIterator[Message]:
            async for raw in requests:
                try:
                    yield decode(raw)
                except MalformedRequestError as err:
                    await abort(context, err)

        return each()

    async def unary(requests: AsyncIterator[bytes], context: Context) -> Any:
        return await behavior(decoded(requests, context), context)

    async def stream(requests: AsyncIterator[bytes], context: Context) -> None:
        responses = behavior(decoded(requests, context), context)
        try:
            async for response in responses:
                await context.write(response)
        finally:
            await responses.aclose()

    return stream if server_streaming else unary
