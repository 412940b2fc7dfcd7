"""Conversation memory: after a stream has ended with its final chunk, the caller's new user/assistant
messages and the answer are appended to the conversation's history. A failed, interrupted or
cancelled call stores nothing. The persona, the history put before the new messages and the
effective request are decided by the resolve step (sidecar/pipeline/resolve.py); this layer reads
the plan's `remember` and `exchange`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

from sidecar.core.errors import SidecarError
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.types import Call, Chunk, Message, Role
from sidecar.personas.service import PersonaService
from sidecar.sessions.store import ConversationKey

_log = logging.getLogger("sidecar.personas")


class PersonaLayer:
    def __init__(self, inner: Handler, *, personas: PersonaService) -> None:
        self._inner, self._personas = inner, personas

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        if call.plan is None or call.plan.remember is None:
            return self._inner(call)  # nothing to remember: no generator hop
        return self._remembering(call, call.plan.remember, call.plan.exchange)

    async def _remembering(
        self, call: Call, key: ConversationKey, exchange: tuple[Message, ...]
    ) -> AsyncGenerator[Chunk, None]:
        answer: list[str] = []
        finished = False
        async with inner_stream(self._inner, call) as chunks:
            async for chunk in chunks:
                answer.append(chunk.text)
                finished = finished or chunk.is_final
                yield chunk
        if not finished:
            return
        try:
            await self._personas.remember(key, (*exchange, Message(Role.ASSISTANT, "".join(answer))))
        except SidecarError as err:  # the answer was delivered; only the memory is lost
            _log.warning("history not stored", extra={"request_id": call.request_id, "reason": err.reason})
