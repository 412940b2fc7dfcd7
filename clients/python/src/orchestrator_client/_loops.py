"""One grpc.aio channel per event loop, for an `AsyncClient` used from several loops in turn.

grpc.aio binds a channel to the event loop running when it is made; a call from another loop fails
with RuntimeError "Event loop is closed" (the first loop ended) or a Future attached to a different
loop, no SidecarError. A client made once (a module-level one, a session-scoped test fixture) and
used from successive `asyncio.run` calls, pytest-asyncio's function-scoped loops or a loop per
thread gets a channel of its own in each loop, made there on first use; a channel whose loop has
closed is dropped the next time the client looks (grpc closes its connection when it is collected;
nothing can be awaited on a closed loop).

The stubs a client exposes (`LoopStub`) pick the running loop's channel at each call, so one read
where no loop runs (`stub = client.generation` at import time) or in another loop works in every
loop; a call made with no loop running is a RuntimeError saying so, never a channel bound to a loop
grpc picked that nobody runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import Callable
from typing import Any

import grpc.aio

Loop = asyncio.AbstractEventLoop


class Connection:
    """One loop's channel and the generated stubs made over it."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self._stubs: dict[type, Any] = {}

    def stub(self, kind: type) -> Any:
        if kind not in self._stubs:
            self._stubs[kind] = kind(self.channel)
        return self._stubs[kind]


class LoopChannels:
    """The connection of the running loop, made by `make` on first use in it; after `close()`,
    `refused()` is raised instead (no channel is made again)."""

    def __init__(self, make: Callable[[], grpc.aio.Channel], refused: Callable[[], Exception]) -> None:
        self._make, self._refused = make, refused
        self._lock = threading.Lock()  # loops in other threads may share the client
        self._connections: dict[Loop, Connection] = {}
        self._closed = False

    def current(self) -> Connection:
        """The running loop's connection; RuntimeError when no loop runs (grpc.aio would bind the
        channel to a loop nobody runs, and every call of it would fail)."""
        loop = running_loop()
        with self._lock:
            if self._closed:
                raise self._refused()
            if loop is None:
                raise RuntimeError(
                    "an AsyncClient call needs a running event loop: make it inside a coroutine "
                    "(asyncio.run), or use the blocking orchestrator_client.Client"
                )
            for gone in [lp for lp in self._connections if lp.is_closed()]:
                del self._connections[gone]
            connection = self._connections.get(loop)
            if connection is None:
                connection = self._connections[loop] = Connection(self._make())
        return connection

    async def close(self) -> None:
        """Close every channel: this loop's awaited, one of a loop running in another thread closed
        there (not waited for), the others (their loop idle or closed) dropped for grpc to close."""
        with self._lock:
            taken, self._connections, self._closed = self._connections, {}, True
        here = running_loop()
        for loop, connection in taken.items():
            if loop is here:
                await connection.channel.close(None)
            elif loop.is_running():
                with contextlib.suppress(RuntimeError):  # that loop closed meanwhile: dropped
                    asyncio.run_coroutine_threadsafe(connection.channel.close(None), loop)


class LoopStub:
    """A generated stub of one service whose methods run over the channel of the loop running when
    each is called: the same object serves every loop (`client.generation.Generate(...)`)."""

    def __init__(self, channels: LoopChannels, kind: type) -> None:
        self._channels, self._kind = channels, kind
        module = importlib.import_module(kind.__module__.removesuffix("_grpc"))  # the service's *_pb2
        service = module.DESCRIPTOR.services_by_name[kind.__name__.removesuffix("Stub")]
        self._methods = {m.name: _LoopMethod(channels, kind, m.name) for m in service.methods}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_methods"][name]
        except KeyError:
            raise AttributeError(f"{self._kind.__name__} has no method {name!r}") from None

    def __repr__(self) -> str:
        return f"<{self._kind.__name__} over the running loop's channel>"


class _LoopMethod:
    """One RPC of a `LoopStub`: called, it is the running loop's stub's method, called."""

    def __init__(self, channels: LoopChannels, kind: type, name: str) -> None:
        self._channels, self._kind, self._name = channels, kind, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._channels.current().stub(self._kind), self._name)(*args, **kwargs)


def running_loop() -> Loop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
