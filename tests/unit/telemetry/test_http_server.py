"""The health port's serving loop on virtual time: its deadlines are the injected clock's and the
selector waits until the clock's next one, so these drive timeouts with a FakeClock, one `turn()`
at a time, through a fake selector over fake sockets (no thread of its own, no real socket, no
sleep). Also: a newcomer the selector refuses to watch is closed and the server goes on."""

from __future__ import annotations

import ast
import errno
import logging
import selectors
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.core.clock import FakeClock
from sidecar.telemetry import http_server
from sidecar.telemetry.http_server import ACCEPT_PAUSE, BoundedHttpServer


class FakeSocket:
    """A connected socket's server end: `inbound` is what the client sent, `outbound` what the
    server wrote; `peer_closed` once the client closed its end."""

    def __init__(self, client: str = "10.0.0.1") -> None:
        self.client = client
        self.inbound = bytearray()
        self.outbound = bytearray()
        self.peer_closed = self.closed = self.write_shut = False

    def setblocking(self, flag: bool) -> None:
        pass

    def recv(self, size: int) -> bytes:
        if not self.inbound:
            if self.peer_closed:
                return b""
            raise BlockingIOError
        data = bytes(self.inbound[:size])
        del self.inbound[:size]
        return data

    def send(self, data: Any) -> int:
        self.outbound += bytes(data)
        return len(data)

    def shutdown(self, how: int) -> None:
        self.write_shut = True

    def close(self) -> None:
        self.closed = True


class FakeListener:
    def __init__(self) -> None:
        self.waiting: list[FakeSocket | OSError] = []
        self.closed = False

    def setblocking(self, flag: bool) -> None:
        pass

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 9464)

    def accept(self) -> tuple[FakeSocket, tuple[str, int]]:
        if not self.waiting:
            raise BlockingIOError
        got = self.waiting.pop(0)
        if isinstance(got, OSError):
            raise got
        return got, (got.client, 40000)

    def close(self) -> None:
        self.closed = True


class FakePoller:
    """A selector over the fakes: a listener is ready while it has newcomers, a connection while it
    has bytes to read (or its client closed) or is watched for writing. Records each wait asked."""

    def __init__(self) -> None:
        self.watched: dict[Any, tuple[int, Any]] = {}
        self.waits: list[float | None] = []
        self.woken = threading.Event()
        self.refuse: list[OSError] = []  # raised by the next watch() calls of a new connection

    def watch(self, sock: Any, events: int, data: Any = None) -> None:
        if not events:
            self.forget(sock)
            return
        if self.refuse and isinstance(sock, FakeSocket) and sock not in self.watched:
            raise self.refuse.pop(0)
        self.watched[sock] = (events, data)

    def forget(self, sock: Any) -> None:
        self.watched.pop(sock, None)

    def select(self, timeout: float | None) -> list[tuple[Any, Any, int]]:
        self.waits.append(timeout)
        ready = []
        for sock, (events, data) in self.watched.items():
            if isinstance(sock, FakeListener):
                if sock.waiting:
                    ready.append((sock, data, selectors.EVENT_READ))
            elif events & selectors.EVENT_WRITE:
                ready.append((sock, data, selectors.EVENT_WRITE))
            elif sock.inbound or sock.peer_closed:
                ready.append((sock, data, selectors.EVENT_READ))
        return ready

    def wake(self) -> None:
        self.woken.set()

    def close(self) -> None:
        pass


def ok(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]


@pytest.fixture
def parts() -> Iterator[tuple[BoundedHttpServer, FakeListener, FakePoller, FakeClock]]:
    listener, poller, clock = FakeListener(), FakePoller(), FakeClock()
    server = BoundedHttpServer(
        listener,  # type: ignore[arg-type]
        ok,
        max_connections=4,
        max_connections_per_client=2,
        connection_timeout=10.0,
        clock=clock,
        poller=poller,
    )
    server._listen_if_room(clock.monotonic())  # as start() does, without its thread
    yield server, listener, poller, clock
    server.stop()


def test_a_silent_connection_ends_at_its_deadline_on_the_clock(
    parts: tuple[BoundedHttpServer, FakeListener, FakePoller, FakeClock],
) -> None:
    server, listener, poller, clock = parts
    server.turn()
    assert poller.waits == [None]  # nothing open: no deadline, the selector waits for a newcomer
    silent = FakeSocket()
    listener.waiting.append(silent)
    server.turn()
    assert server.open_connections() == 1
    server.turn()
    assert poller.waits[-1] == 10.0  # until its deadline, on the clock
    clock.advance(9.5)
    server.turn()
    assert poller.waits[-1] == pytest.approx(0.5) and not silent.closed
    clock.advance(0.5)
    server.turn()
    assert silent.closed and server.open_connections() == 0
    server.turn()
    assert poller.waits[-1] is None


def test_a_probe_is_answered_and_then_drained_until_its_deadline(
    parts: tuple[BoundedHttpServer, FakeListener, FakePoller, FakeClock],
) -> None:
    server, listener, poller, clock = parts
    probe = FakeSocket()
    probe.inbound += b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
    listener.waiting.append(probe)
    server.turn()  # accepted, its head read (it was there), its answer made on a worker
    assert poller.woken.wait(10)  # the worker handed the answer over
    server.turn()
    assert probe.outbound.startswith(b"HTTP/1.0 200 OK\r\n") and probe.outbound.endswith(b"\r\n\r\nok\n")
    assert probe.write_shut and not probe.closed  # reads on (and drops) until the client closes
    clock.advance(10)
    server.turn()
    assert probe.closed


def test_accepting_pauses_on_the_clock_when_out_of_descriptors(
    parts: tuple[BoundedHttpServer, FakeListener, FakePoller, FakeClock],
) -> None:
    server, listener, poller, clock = parts
    listener.waiting += [OSError(errno.EMFILE, "Too many open files"), FakeSocket()]
    server.turn()
    assert listener not in poller.watched
    server.turn()
    assert poller.waits[-1] == pytest.approx(ACCEPT_PAUSE) and server.open_connections() == 0
    clock.advance(ACCEPT_PAUSE)
    server.turn()  # watched again; the newcomer accepted next turn
    server.turn()
    assert listener in poller.watched and server.open_connections() == 1


def test_a_newcomer_the_selector_refuses_is_closed_and_the_server_goes_on(
    parts: tuple[BoundedHttpServer, FakeListener, FakePoller, FakeClock],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """epoll_ctl failing for a newly accepted connection (ENOMEM, or ENOSPC past
    max_user_watches) raised out of the serving loop and ended its only thread: every probe after
    it went unanswered and the kubelet restarted the sidecar."""
    server, listener, poller, _ = parts
    poller.refuse = [OSError(errno.ENOSPC, "No space left on device")] * 2
    refused = [FakeSocket("10.0.0.2"), FakeSocket("10.0.0.3")]
    probe = FakeSocket()
    probe.inbound += b"GET /livez HTTP/1.0\r\n\r\n"
    listener.waiting += [*refused, probe]
    with caplog.at_level(logging.WARNING, logger="sidecar.telemetry"):
        server.turn()
    assert all(s.closed for s in refused) and server.unwatchable_connections == 2
    assert [r.getMessage() for r in caplog.records] == ["health port cannot watch a new connection"]
    assert server.open_connections() == 1
    assert poller.woken.wait(10)
    server.turn()
    assert probe.outbound.startswith(b"HTTP/1.0 200 OK\r\n")


def test_the_serving_loop_survives_its_own_errors(
    parts: tuple[BoundedHttpServer, FakeListener, FakePoller, FakeClock],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever fails in a turn is logged and the next turn runs (the thread is the port)."""
    server = parts[0]
    turns = []

    def turn() -> None:
        turns.append(1)
        if len(turns) in (1, 2, 3, 5):
            raise RuntimeError("a bug")
        server._stopping = len(turns) == 6

    monkeypatch.setattr(server, "turn", turn)
    with caplog.at_level(logging.ERROR, logger="sidecar.telemetry"):
        server._run()
    assert len(turns) == 6
    assert [r.getMessage() for r in caplog.records] == ["health port serving loop failed"] * 2  # once a spell


def test_the_health_port_reads_no_clock_but_the_injected_one() -> None:
    """The server read time.monotonic() itself, so its timeouts could be tested only by sleeping."""
    telemetry = Path(http_server.__file__).parent
    found = []
    for path in sorted(telemetry.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "time"
                and node.attr in {"monotonic", "time", "perf_counter", "monotonic_ns", "time_ns"}
            ):
                found.append(f"{path.name}:{node.lineno}")
    assert found == []


def test_while_every_place_is_being_answered_newcomers_wait_in_the_backlog() -> None:
    """They were accepted and closed unanswered; now the listener is not watched until a place can
    be made, and the newcomer is then accepted and answered."""
    listener, poller, clock, release = FakeListener(), FakePoller(), FakeClock(), threading.Event()
    answered: list[int] = []

    def slow(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        release.wait(10)
        answered.append(1)
        return ok(environ, start_response)

    server = BoundedHttpServer(
        listener,  # type: ignore[arg-type]
        slow,
        max_connections=2,
        max_connections_per_client=2,
        connection_timeout=10.0,
        clock=clock,
        poller=poller,
    )
    try:
        server._listen_if_room(clock.monotonic())
        probes = [FakeSocket(f"10.0.0.{n}") for n in (1, 2, 3)]
        for probe in probes:
            probe.inbound += b"GET /livez HTTP/1.0\r\n\r\n"
        listener.waiting += probes
        server.turn()  # two accepted, both being answered; the third waits
        assert listener not in poller.watched and listener.waiting == probes[2:]
        assert not any(p.closed for p in probes)
        release.set()
        for _ in range(100):
            server.turn()
            if probes[2].outbound:
                break
            poller.woken.wait(1)
            poller.woken.clear()
        assert all(p.outbound.startswith(b"HTTP/1.0 200 OK\r\n") for p in probes)
    finally:
        release.set()
        server.stop()
