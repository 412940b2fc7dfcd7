"""A TCP relay on loopback that can be frozen: a network partition between the sidecar and a store.

    relay = await Relay(port).start()   # 127.0.0.1:relay.port forwards to 127.0.0.1:port
    relay.freeze()                      # bytes stop flowing both ways; connections stay open
    relay.thaw()
    await relay.close()                 # the store is down: connections reset, new ones refused
    await relay.start(relay.port)       # and back on the same port

Frozen, the relay keeps every connection open and forwards nothing (new connections are accepted
and wait too): what a client sees when the network drops packets rather than refusing them, the
case a timeout must bound.
"""

from __future__ import annotations

import asyncio
import contextlib


class Relay:
    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, port: int = 0) -> Relay:
        """Listen on `port` (0: a free one); after `close()`, `start(relay.port)` is the store back."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        await self._flowing.wait()
        try:
            target_in, target_out = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            client_out.close()
            return
        for source, sink in ((client_in, target_out), (target_in, client_out)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.close()
