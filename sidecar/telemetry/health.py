"""gRPC health with a shutdown that open Watch streams cannot hold up.

`enter_graceful_shutdown()` sends NOT_SERVING to every watcher (and Check answers it) while the
sidecar drains; `close_watches()` then ends the Watch streams, so stopping the server does not wait
its whole grace for clients that never hang up.
"""

from __future__ import annotations

import asyncio
from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer


class DrainingHealth(HealthServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self._watches: set[asyncio.Task[None]] = set()

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        watch = asyncio.ensure_future(super().Watch(request, context))
        self._watches.add(watch)
        try:
            await watch
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the RPC itself was cancelled
            # closed by close_watches(): the stream ends with OK
        finally:
            watch.cancel()
            self._watches.discard(watch)

    def close_watches(self) -> None:
        """End every open Watch stream (after they were told NOT_SERVING)."""
        for watch in list(self._watches):
            watch.cancel()
