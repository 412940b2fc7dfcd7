"""Persona and session: the call's one persona (prompt, route, parameters) and, with memory, its history.

Messages sent upstream: the persona's system prompt, then the caller's leading system messages,
then the stored history, then the caller's other messages. A request that names no model takes
the persona's default route; each generation parameter the request leaves unset takes the
persona's default. With memory, after the stream has ended with its final chunk, the caller's
user/assistant messages and the answer are appended to the history; a failed, interrupted or
cancelled call stores nothing.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncGenerator

from sidecar.core.errors import SidecarError
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.types import Call, Chunk, GenerationParams, Message, Role
from sidecar.personas.registry import Persona
from sidecar.personas.service import PersonaService, Plan

_log = logging.getLogger("sidecar.personas")


class PersonaLayer:
    def __init__(self, inner: Handler, *, personas: PersonaService) -> None:
        self._inner, self._personas = inner, personas

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        if not self._personas.involved(call):
            return self._inner(call)  # no personas configured and no memory: no generator hop
        return self._serve(call)

    async def _serve(self, call: Call) -> AsyncGenerator[Chunk, None]:
        plan = await self._personas.plan(call)
        call.record.persona_applied(plan.persona.id if plan.persona is not None else "", len(plan.history))
        leading, new = _split(call.messages)
        upstream = _apply(call, plan, leading, new)
        if plan.remember is None:
            async with inner_stream(self._inner, upstream) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        answer: list[str] = []
        finished = False
        async with inner_stream(self._inner, upstream) as chunks:
            async for chunk in chunks:
                answer.append(chunk.text)
                finished = finished or chunk.is_final
                yield chunk
        if finished:
            exchange = (
                *(m for m in new if m.role is not Role.SYSTEM),
                Message(Role.ASSISTANT, "".join(answer)),
            )
            try:
                await self._personas.remember(plan.remember, exchange)
            except SidecarError as err:  # the answer was delivered; only the memory is lost
                _log.warning(
                    "history not stored", extra={"request_id": call.request_id, "reason": err.reason}
                )


def _split(messages: tuple[Message, ...]) -> tuple[tuple[Message, ...], tuple[Message, ...]]:
    """The caller's leading system messages, and the rest."""
    n = 0
    while n < len(messages) and messages[n].role is Role.SYSTEM:
        n += 1
    return messages[:n], messages[n:]


def _apply(call: Call, plan: Plan, leading: tuple[Message, ...], new: tuple[Message, ...]) -> Call:
    persona = plan.persona
    prompt = (Message(Role.SYSTEM, persona.system_prompt),) if persona is not None else ()
    messages = (*prompt, *leading, *plan.history, *new)
    if persona is None:
        return dataclasses.replace(call, messages=messages)
    return dataclasses.replace(
        call,
        messages=messages,
        model=call.model or persona.default_route or "",
        params=_params(call.params, persona),
    )


def _params(own: GenerationParams, persona: Persona) -> GenerationParams:
    d = persona.default_params
    return GenerationParams(
        max_tokens=own.max_tokens if own.max_tokens is not None else d.max_tokens,
        temperature=own.temperature if own.temperature is not None else d.temperature,
        top_p=own.top_p if own.top_p is not None else d.top_p,
        stop=own.stop or d.stop,
        seed=own.seed if own.seed is not None else d.seed,
    )
