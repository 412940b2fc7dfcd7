"""One health-port connection: its phases and the non-blocking reads and writes that move it on.

    READING ──head──▶ ANSWERING ──answer──▶ SENDING ──all sent──▶ DRAINING ──client closes──▶ closed
       └──────────── refused (400/414/431/503…) ─────▶ SENDING

In READING, SENDING and DRAINING the connection waits on its client (its request, its reading of
the answer, its close); in ANSWERING on the server (an app makes the answer on a worker thread).
The server (http_server.py) watches its socket for `events`, calls `read` or `write` when it is
ready, and closes it on CLOSE or at its deadline; this module owns no selector and no bookkeeping.
"""

from __future__ import annotations

import enum
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.telemetry.http_head import HeadReader

HEAD_READ = 4096  # bytes read at a time while the head arrives (the head limit may be passed by one)
DRAIN_READ = 65536


class Phase(enum.Enum):
    READING = "reading"
    ANSWERING = "answering"
    SENDING = "sending"
    DRAINING = "draining"


class Step(enum.Enum):
    WAIT = "wait"  # nothing more to do until the socket is ready again
    CLOSE = "close"  # the client went away (or the exchange is over): close the connection


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    client: str
    deadline: float  # on the server's clock: the connection ends then, whatever it is doing
    now: Callable[[], float]  # the server's clock
    moved: float = 0.0  # when its client last moved it on (connected, sent bytes, took bytes)
    phase: Phase = Phase.READING
    scrape: bool = False  # its answer is a scrape's (the scrapes' own workers and places)
    reader: HeadReader = field(default_factory=HeadReader)
    out: memoryview | None = None

    @property
    def events(self) -> int:
        """What the server watches its socket for (0: nothing, its answer is being made)."""
        if self.phase is Phase.ANSWERING:
            return 0
        return selectors.EVENT_WRITE if self.phase is Phase.SENDING else selectors.EVENT_READ

    def __post_init__(self) -> None:
        self.moved = self.now()

    @property
    def waits_on_client(self) -> bool:
        return self.phase is not Phase.ANSWERING

    def read(self) -> bytes | Step:
        """The request head once it has all arrived; BadRequest (http_head) when it cannot be
        served; in DRAINING, what arrives is dropped."""
        try:
            data = self.sock.recv(DRAIN_READ if self.phase is Phase.DRAINING else HEAD_READ)
        except (BlockingIOError, InterruptedError):
            return Step.WAIT
        except OSError:  # reset by the client
            return Step.CLOSE
        if not data:
            return Step.CLOSE
        self.moved = self.now()
        if self.phase is Phase.DRAINING:
            return Step.WAIT
        head = self.reader.feed(data)
        if head is None:
            return Step.WAIT
        self.phase = Phase.ANSWERING
        return head

    def answer(self, answer: bytes) -> Step:
        """Send `answer` (as much as the socket takes now; the rest when it is writable)."""
        self.out, self.phase = memoryview(answer), Phase.SENDING
        return self.write()

    def write(self) -> Step:
        assert self.out is not None
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return Step.WAIT
        except OSError:  # the client went away
            return Step.CLOSE
        self.out, self.moved = self.out[sent:], self.now()
        return self._drain() if not self.out else Step.WAIT

    def _drain(self) -> Step:
        """The whole answer is with the kernel: end the sending (FIN), but read on until the client
        closes (or its deadline, or a newcomer needs its place). Closing with the client's further
        bytes (a body, pipelined requests) unread would make the kernel reset the connection and drop
        the answer's tail it has not yet sent."""
        self.out, self.phase = None, Phase.DRAINING
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:  # the client went away
            return Step.CLOSE
        return Step.WAIT
