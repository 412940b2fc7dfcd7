"""Fuzzing the API from outside: a real sidecar on its own thread (so synchronous clients and
hypothesis drive it), every record logged while it runs, and request bytes built at the wire level.

    with ThreadedSidecar(cfg) as s:          # started on a loop of its own; stopped on exit
        channel = grpc.insecure_channel(s.target)

`LogTap` keeps every record of every logger at DEBUG (before any formatter redacts it), so a
canary in a message, an argument, an `extra` field or a traceback is found. The wire helpers build
what a protobuf library refuses to build: strings that are not UTF-8, truncated fields, wrong wire
types; `string_paths` lists every string field reachable from a request type, with the path the
sidecar is expected to name (`input.messages[0].content[0].text`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from sidecar.app import build_server
from sidecar.config.schema import Config
from sidecar.server import Sidecar

START_TIMEOUT_SECONDS = 30.0
WIRE_VARINT, WIRE_I64, WIRE_LEN, WIRE_SGROUP, WIRE_I32 = 0, 1, 2, 3, 5
BAD_UTF8 = b"\xff\xfe\xc3("  # not UTF-8 in any reading
T = TypeVar("T")


class ThreadedSidecar:
    """A built sidecar served by an event loop on its own thread."""

    def __init__(self, cfg: Config) -> None:
        self._cfg = cfg
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fuzzed-sidecar", daemon=True)
        self.sidecar: Sidecar | None = None

    def __enter__(self) -> ThreadedSidecar:
        self._thread.start()
        self.sidecar = self._run(self._start())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.sidecar is not None:
                self._run(self.sidecar.stop(0))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_SECONDS)
            self._loop.close()

    @property
    def target(self) -> str:
        assert self.sidecar is not None
        return f"127.0.0.1:{self.sidecar.port}"

    async def _start(self) -> Sidecar:
        sidecar = build_server(self._cfg)
        await sidecar.start()
        return sidecar

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(START_TIMEOUT_SECONDS)


class LogTap(logging.Handler):
    """Every record of every logger, raw: installed on the root logger at DEBUG while in use."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def __enter__(self) -> LogTap:
        root = logging.getLogger()
        self._level = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self)
        root.setLevel(self._level)

    def mark(self) -> int:
        with self._lock_records:
            return len(self.records)

    def since(self, mark: int) -> list[logging.LogRecord]:
        with self._lock_records:
            return list(self.records[mark:])


def record_text(record: logging.LogRecord) -> str:
    """Everything a record could write: message, arguments, extra fields and the traceback."""
    parts = [str(record.msg), repr(record.args)]
    with contextlib.suppress(TypeError, ValueError):  # a record whose arguments do not fit its format
        parts.append(record.getMessage())
    parts += [f"{k}={v!r}" for k, v in vars(record).items() if k not in ("msg", "args")]
    if record.exc_info and record.exc_info[1] is not None:
        parts.append(repr(record.exc_info[1]))
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as two's complement, as protobuf writes them
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, payload: bytes) -> bytes:
    return tag(number, WIRE_LEN) + varint(len(payload)) + payload


@dataclass(frozen=True)
class StringPath:
    """A string field reached through message fields: the chain and the path the sidecar names."""

    chain: tuple[FieldDescriptor, ...]
    expected: str

    def encode(self, payload: bytes) -> bytes:
        """A message whose string at this path holds `payload` (every parent present once)."""
        data = length_delimited(self.chain[-1].number, payload)
        for parent in reversed(self.chain[:-1]):
            data = length_delimited(parent.number, data)
        return data


def string_paths(descriptor: Descriptor, depth: int = 4) -> Iterator[StringPath]:
    """Every string field reachable from `descriptor` in at most `depth` message levels (well-known
    types are not entered: their strings are the protobuf library's own)."""
    yield from _paths(descriptor, (), "", depth)


def _paths(
    descriptor: Descriptor, chain: tuple[FieldDescriptor, ...], prefix: str, depth: int
) -> Iterator[StringPath]:
    for field in descriptor.fields:
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        name = f"{prefix}{field.name}"
        if field.is_repeated and not is_map:
            name += "[0]"
        if field.type == FieldDescriptor.TYPE_STRING:
            yield StringPath((*chain, field), name)
        elif is_map:
            entry = field.message_type
            for part in entry.fields:
                if part.type == FieldDescriptor.TYPE_STRING:
                    yield StringPath((*chain, field, part), f"{prefix}{field.name}")
        elif field.type == FieldDescriptor.TYPE_MESSAGE and depth > 1 and not _well_known(field):
            yield from _paths(field.message_type, (*chain, field), name + ".", depth - 1)


def _well_known(field: FieldDescriptor) -> bool:
    return bool(field.message_type.full_name.startswith("google.protobuf."))
