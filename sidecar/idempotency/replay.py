"""The edge's use of the store: run a unary Generate (or an Embed) once per (tenant, request_id,
window).

`answer(...)` returns the first call's answer to every repeat of it (waiting for it while it runs),
runs the call when it is the first, and refuses a different request under the same id. Only calls
that set request_id take part; a generated id is new by construction. Each method keeps its own
keys (`scoped`): an Embed and a Generate may carry the same request_id.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable

from sidecar.idempotency.store import (
    IdempotencyKeyReusedError,
    IdempotencyStore,
    IdempotencyStoreUnavailableError,
)

_log = logging.getLogger("sidecar.idempotency")


class Replays:
    """Runs `produce` at most once per key and fingerprint; serializes answers as bytes."""

    def __init__(
        self, store: IdempotencyStore, *, max_answer_bytes: int, field: str, scope: str = ""
    ) -> None:
        """`field`: the request_id's path, named when a key is reused; `scope`: the method's part of
        the key ("" is Generate's, as before scopes existed)."""
        self._store, self._max, self._field = store, max_answer_bytes, field
        self._scope = f"{scope}:" if scope else ""

    def scoped(self, scope: str, *, field: str) -> Replays:
        """The same store and bounds for another method's keys."""
        return Replays(self._store, max_answer_bytes=self._max, field=field, scope=scope)

    async def answer(
        self, tenant: str, request_id: str, request: bytes, produce: Callable[[], Awaitable[bytes]]
    ) -> tuple[bytes, bool]:
        """(answer, replayed): the stored answer of an earlier identical call, or a fresh one."""
        key = f"{self._scope}{len(tenant)}:{tenant}:{request_id}"
        fingerprint = hashlib.sha256(request).digest()
        while True:
            held = await self._store.claim(key, fingerprint)
            if held is None:
                return await self._first(key, fingerprint, produce), False
            if held.fingerprint != fingerprint:
                raise IdempotencyKeyReusedError(self._field)
            if held.answer is not None:
                return held.answer, True
            done = await self._store.wait(key)
            if done is not None and done.answer is not None:
                if done.fingerprint != fingerprint:
                    raise IdempotencyKeyReusedError(self._field)
                return done.answer, True
            # the first call failed (or was evicted): this one claims the key and runs itself

    async def _first(self, key: str, fingerprint: bytes, produce: Callable[[], Awaitable[bytes]]) -> bytes:
        try:
            answer = await produce()
        except BaseException:
            await self._forget(key)
            raise
        try:
            if len(answer) > self._max:
                _log.info("answer too large to keep for retries", extra={"bytes": len(answer)})
                await self._store.release(key)
            else:
                await self._store.finish(key, fingerprint, answer)
        except IdempotencyStoreUnavailableError:
            # the answer exists and was charged: deliver it; the Redis store keeps it once Redis answers
            _log.warning("could not keep an answer for retries yet", extra={"reason": "store unavailable"})
        return answer

    async def _forget(self, key: str) -> None:
        """Release the key of a first call that failed. A store failure now must not replace the
        call's own error (or its cancellation): the key is then freed when its claim expires."""
        try:
            await self._store.release(key)
        except IdempotencyStoreUnavailableError:
            _log.warning("could not release a failed call's key", extra={"reason": "store unavailable"})
