"""Admission: after the resolve step, before context, quota and cache work, a call takes a slot of
the sidecar's capacity (waiting in priority order when it is full, the tenants, or for calls that
name none their credentials, taking turns: sidecar/authz/scope.py) and gives it back when its
stream ends, however it ends. The caller's priority is capped by its tier's `max_priority`."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Mapping

from sidecar.admission.queue import AdmissionQueue
from sidecar.authz.scope import caller_scope
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.priority import Priority, capped
from sidecar.core.types import Call, Chunk


class AdmissionLayer:
    def __init__(
        self, inner: Handler, *, queue: AdmissionQueue | None, caps: Mapping[str, Priority | None]
    ) -> None:
        """`caps`: tier name -> the highest priority its callers may ask for (None: any)."""
        self._inner, self._queue, self._caps = inner, queue, caps

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        priority = capped(call.priority, self._caps.get(call.tier))
        if priority is not call.priority:
            call = dataclasses.replace(call, priority=priority)
        if self._queue is None:
            return self._inner(call)  # no admission control configured: no hop of its own
        return self._admitted(call, self._queue)

    async def _admitted(self, call: Call, queue: AdmissionQueue) -> AsyncGenerator[Chunk, None]:
        await queue.acquire(call.priority, call.deadline, caller_scope(call.tenant_id, call.caller))
        try:
            async with inner_stream(self._inner, call) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            queue.release()
