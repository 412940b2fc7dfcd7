"""What the health port's serving thread waits on: the OS's selector (epoll on Linux) over its
sockets, and a wake-up any thread can send (an answer made on a worker, `stop`). The server takes
one as a collaborator, so a test can hand it another (a selector that fails to register, or one
driven by hand) and its clock, not the OS's, decides every timeout."""

from __future__ import annotations

import contextlib
import selectors
import socket
from typing import Any, Protocol


class Poller(Protocol):
    def watch(self, sock: socket.socket, events: int, data: Any = None) -> None:
        """Watch `sock` for `events` (replacing what it was watched for); 0: no longer watch it.
        OSError when the OS refuses (epoll out of memory or past max_user_watches)."""

    def forget(self, sock: socket.socket) -> None:
        """No longer watch `sock`, if it was (never raises: it may be closed already)."""

    def select(self, timeout: float | None) -> list[tuple[socket.socket, Any, int]]:
        """(socket, its data, ready events) of the watched sockets that are ready, waiting up to
        `timeout` seconds (None: until one is, or a wake-up)."""

    def wake(self) -> None:
        """From any thread: end the current (or next) `select` now."""

    def close(self) -> None: ...


class SelectorPoller:
    """The OS's selector and a socket pair for wake-ups."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake = socket.socketpair()
        for end in self._wake:
            end.setblocking(False)
        self._selector.register(self._wake[0], selectors.EVENT_READ)

    def watch(self, sock: socket.socket, events: int, data: Any = None) -> None:
        watched = sock in self._selector.get_map()
        if not events:
            self.forget(sock)
        elif watched:
            self._selector.modify(sock, events, data)
        else:
            self._selector.register(sock, events, data)

    def forget(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):  # not watched (or its descriptor is gone)
            self._selector.unregister(sock)

    def select(self, timeout: float | None) -> list[tuple[socket.socket, Any, int]]:
        ready = []
        for key, mask in self._selector.select(timeout):
            if key.fileobj is self._wake[0]:
                with contextlib.suppress(OSError):
                    self._wake[0].recv(4096)
            else:
                ready.append((key.fileobj, key.data, mask))
        return ready  # type: ignore[return-value]  # every fileobj watched is a socket

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            self._wake[1].send(b"x")

    def close(self) -> None:
        self._selector.close()
        for end in self._wake:
            end.close()
