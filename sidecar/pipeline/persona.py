"""Conversation memory: after a stream has ended with its final chunk, the caller's new user, assistant
and tool messages and the answer (its text and the tool calls it asked for, assembled from the
streamed deltas) are appended to the conversation's history, so an agent loop's tool calls and
results are replayed on the next turn (what is kept of images: sidecar/sessions/records.py). A
failed, interrupted or cancelled call stores nothing, nor does a call whose conversation was cleared
while it ran (the clear wins: sidecar/sessions/store.py); an answer with no text and no tool call (a
content filter, a refusal) is not stored, the caller's messages are. A tool call is kept as the
provider sent it, also when its arguments are not a JSON object (malformed, cut at max_tokens): the
application may answer it with an error result, and the wires send it back in a shape their
upstream takes (sidecar/providers/tool_arguments.py). The persona, the history put
before the new messages and the effective request are decided by the resolve step
(sidecar/pipeline/resolve.py); this layer reads the plan's `remember` and `exchange`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator

from sidecar.core.errors import SidecarError
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.types import Call, Chunk, Message, Role, ThinkingBlock, ToolCall
from sidecar.personas.service import PersonaService
from sidecar.sessions.store import ConversationKey

_log = logging.getLogger("sidecar.personas")


class PersonaLayer:
    def __init__(self, inner: Handler, *, personas: PersonaService) -> None:
        self._inner, self._personas = inner, personas

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        if call.plan is None or call.plan.remember is None:
            return self._inner(call)  # nothing to remember: no generator hop
        return self._remembering(call, call.plan.remember, call.plan.exchange, call.plan.epoch)

    async def _remembering(
        self, call: Call, key: ConversationKey, exchange: tuple[Message, ...], epoch: int | None
    ) -> AsyncGenerator[Chunk, None]:
        answer = _Answer()
        finished = False
        async with inner_stream(self._inner, call) as chunks:
            async for chunk in chunks:
                answer.add(chunk)
                finished = finished or chunk.is_final
                yield chunk
        if not finished:
            return
        said = answer.message()
        # an empty answer is not kept: replayed, it is a message the edge and providers refuse
        kept = (*exchange, said) if said.text or said.tool_calls else exchange
        try:
            if not await self._personas.remember(key, kept, epoch=epoch):
                _log.info(
                    "history not stored: the conversation was cleared during the call",
                    extra={"request_id": call.request_id},
                )
        except SidecarError as err:  # the answer was delivered; only the memory is lost
            _log.warning("history not stored", extra={"request_id": call.request_id, "reason": err.reason})


class _Answer:
    """The answer as a message: its text, and its tool calls assembled from the deltas by index
    (id and name from the first delta of a call, argument text appended)."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, list[str]] = {}
        self._thinking: list[ThinkingBlock] = []  # signed blocks: the provider wants them back

    def add(self, chunk: Chunk) -> None:
        self._text.append(chunk.text)
        self._thinking += chunk.thinking_blocks
        for d in chunk.tool_calls:
            call = self._calls.setdefault(d.index, ["", "", ""])
            call[0], call[1] = call[0] or d.id, call[1] or d.name
            call[2] += d.arguments

    def message(self) -> Message:
        """The answer as memory keeps it: its tool calls as the provider sent them, arguments
        included whatever they are (an application answers a malformed call with an error result,
        which must find the call), those without an id or a name left out (nothing can answer or
        replay them). Its signed thinking only with tool calls: the provider wants it back with
        them, and drops the thinking of any other earlier turn."""
        calls = tuple(c for c in (ToolCall(*self._calls[i]) for i in sorted(self._calls)) if c.id and c.name)
        thinking = tuple(self._thinking) if calls else ()
        return Message(Role.ASSISTANT, "".join(self._text), tool_calls=calls, thinking=thinking)
