"""Resolve each call once, right after authentication: persona, effective request, route, tier
access, the pinned key's provider, the candidate deployments.

What is decided goes on the Call the later layers get: the effective messages (persona prompt, the
caller's leading system messages, the stored history, the caller's other messages), model (a request
that names none takes the persona's default route) and parameters (each unset one takes the
persona's default), and an immutable `CallPlan` (sidecar/core/plan.py) that the context, quota,
cache, route and memory layers read instead of resolving the route again. A tier that may not use
the route is refused here (MODEL_NOT_ALLOWED), before any context, summary or quota work; so is a
brought key of a provider the route has no deployment of (KEY_CONTEXT_MISMATCH). A call without
persona, memory or brought key is resolved without a generator hop of this layer's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Mapping

from sidecar.config.quota import TierConfig
from sidecar.context.trim import unanswered
from sidecar.core.errors import (
    FieldViolation,
    InvalidRequestError,
    KeyContextMismatchError,
    ModelNotAllowedError,
    ResourceRef,
)
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.plan import CallPlan
from sidecar.core.types import Call, Chunk, GenerationParams, Message, Role
from sidecar.keys.service import KeyService
from sidecar.personas.registry import Persona
from sidecar.personas.service import PersonaService, Plan
from sidecar.routing.table import Route, RouteTable
from sidecar.sessions.records import replayable
from sidecar.telemetry import logging as logs

UserKeyMode = str  # "never" | "preferred" | "required" (config/routing.py)
NO_PERSONA = Plan(None)


class ResolveLayer:
    def __init__(
        self,
        inner: Handler,
        *,
        personas: PersonaService,
        table: RouteTable,
        tiers: Mapping[str, TierConfig],
        keys: KeyService | None,
        modes: Mapping[str, UserKeyMode],
    ) -> None:
        self._inner, self._personas, self._table = inner, personas, table
        self._tiers, self._keys, self._modes = tiers, keys, modes

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        if not self._personas.involved(call) and not self._pins(call):
            _check_answered(call.messages, 0)
            if not self._looks_up(call):
                return self._inner(self._planned(call, NO_PERSONA, ""))
        return self._resolved(call)

    async def _resolved(self, call: Call) -> AsyncGenerator[Chunk, None]:
        persona = await self._personas.plan(call) if self._personas.involved(call) else NO_PERSONA
        exchange = tuple(m for m in split_leading_system(call.messages)[1] if m.role is not Role.SYSTEM)
        before, own = len(call.messages), len(split_leading_system(call.messages)[1])
        call = _with_persona(call, persona)
        logs.mask_texts(logs.message_texts(persona.history))  # prompt text too: never in a log line
        _check_answered(call.messages, len(call.messages) - before, own)
        route = self._table.resolve(call.model)
        provider = await self._pinned_provider(call, route)
        providers = None if provider else await self._providers_with_keys(call, route)
        planned = self._planned(call, persona, provider, exchange, providers)
        async with inner_stream(self._inner, planned) as chunks:
            async for chunk in chunks:
                yield chunk

    def _planned(
        self,
        call: Call,
        persona: Plan,
        key_provider: str,
        exchange: tuple[Message, ...] = (),
        providers: frozenset[str] | None = None,
    ) -> Call:
        """The call with its plan; raises for an unknown route or a tier that may not use it.
        `providers`: those the user has keys for on a `required` route (None: any)."""
        route = self._table.resolve(call.model)
        self._check_tier(call, route)
        candidates = tuple(
            t
            for t in route.targets
            if (not key_provider or t.provider == key_provider)
            and (providers is None or t.provider in providers)
        )
        persona_id = persona.persona.id if persona.persona is not None else ""
        call.record.route_chosen(route.alias)
        call.record.persona_applied(persona_id, len(persona.history))
        plan = CallPlan(
            route, candidates, persona_id, key_provider, persona.remember, exchange, persona.epoch
        )
        return dataclasses.replace(call, plan=plan)

    def _check_tier(self, call: Call, route: Route) -> None:
        tier = self._tiers.get(call.tier)
        allowed = tier.allowed_routes if tier is not None else None
        if allowed is not None and route.alias not in allowed:
            names = ", ".join(allowed) or "none"
            raise ModelNotAllowedError(
                f"tier {call.tier} may not use route {route.alias}; it may use: {names}",
                metadata={"model": route.alias, "tier": call.tier},
                resource=ResourceRef("orchestrator.v1.ModelRoute", route.alias, "not allowed for the tier"),
            )

    def _pins(self, call: Call) -> bool:
        """Whether the call brings a key whose provider must be looked up (the key layer refuses a
        key on a `never` route, and says there is no backend)."""
        return call.key_source is not None and self._keys is not None

    async def _pinned_provider(self, call: Call, route: Route) -> str:
        """A brought key belongs to one provider: only that provider's deployments are candidates, so
        a failure of one of them is reported as itself, never hidden behind a fallback to a
        deployment the key cannot open."""
        if call.key_source is None or self._keys is None or self._modes.get(route.alias, "never") == "never":
            return ""
        provider = await self._keys.pinned_provider(call.tenant_id, call.user_id, call.key_source)
        if provider is None:
            return ""  # not theirs or unreadable: the key layer reports why
        if provider not in {t.provider for t in route.targets}:
            raise KeyContextMismatchError(
                f"the key is a {provider} key; route {route.alias!r} has no {provider} deployment",
                metadata={"fields": "provider"},
            )
        return provider

    def _looks_up(self, call: Call) -> bool:
        """Whether the call's key is looked up on a `required` route (no key brought)."""
        if self._keys is None or call.key_source is not None or not (call.tenant_id and call.user_id):
            return False
        return self._modes.get(self._table.resolve(call.model).alias, "never") == "required"

    async def _providers_with_keys(self, call: Call, route: Route) -> frozenset[str] | None:
        """A `required` route without a brought key may use only the deployments of providers the user
        has registered keys for (read from the records, nothing decrypted): one of another provider
        would refuse the call for want of a key (USER_KEY_REQUIRED) before a deployment the user can
        use was tried, or hide that deployment's failure behind it. None when the route has none of
        them: the key layer reports USER_KEY_REQUIRED."""
        if self._keys is None or not self._looks_up(call):
            return None
        usable = {t.provider for t in route.targets} & await self._keys.providers_of(
            call.tenant_id, call.user_id
        )
        return frozenset(usable) or None


def _check_answered(messages: tuple[Message, ...], added: int, own: int = 0) -> None:
    """A tool result must answer a call of an earlier assistant message, in the request or in the
    stored history (the edge let results at the start of a conversation's request through), and
    come once, right after that message (a second result for a call, or one for a call of an older
    message, is refused by the providers); `added` is how many messages the persona and history put
    before the request's own, `own` how many of the request's come after them (the last ones: its
    leading system messages go first), the only ones whose results are checked for their place
    (0: no history, the edge checked them)."""
    orphans = unanswered(messages)
    late = {i for i in _misplaced(messages) if i >= len(messages) - own} - set(orphans)
    if not (orphans or late):
        return
    orphan = "answers no tool call of an earlier assistant message or of the history"
    misplaced = (
        "answers a call already answered or of an earlier assistant message: each result comes "
        "once, after the assistant message that made the call, before any other"
    )
    raise InvalidRequestError(
        [
            FieldViolation(f"input.messages[{i - added}].tool_call_id", orphan if i in orphans else misplaced)
            for i in sorted({*orphans, *late})
        ]
    )


def _misplaced(messages: tuple[Message, ...]) -> list[int]:
    """Positions of tool results that answer no call still waiting of the assistant message before
    them (a call answered already, or one of an older assistant message)."""
    waiting: set[str] = set()
    out: list[int] = []
    for i, m in enumerate(messages):
        if m.role is Role.TOOL:
            if m.tool_call_id not in waiting:
                out.append(i)
            waiting.discard(m.tool_call_id)
        else:
            waiting = {c.id for c in m.tool_calls} if m.role is Role.ASSISTANT else set()
    return out


def _with_persona(call: Call, plan: Plan) -> Call:
    """Messages sent upstream: the persona's system prompt, the caller's leading system messages, the
    stored history, the caller's other messages; model and parameters default to the persona's."""
    leading, new = split_leading_system(call.messages)
    persona = plan.persona
    prompt = (Message(Role.SYSTEM, persona.system_prompt),) if persona is not None else ()
    messages = (*prompt, *leading, *replayable(plan.history, new), *new)
    if persona is None:
        return dataclasses.replace(call, messages=messages)
    return dataclasses.replace(
        call,
        messages=messages,
        model=call.model or persona.default_route or "",
        params=_params(call.params, persona),
    )


def split_leading_system(messages: tuple[Message, ...]) -> tuple[tuple[Message, ...], tuple[Message, ...]]:
    """The caller's leading system messages, and the rest."""
    n = 0
    while n < len(messages) and messages[n].role is Role.SYSTEM:
        n += 1
    return messages[:n], messages[n:]


def _params(own: GenerationParams, persona: Persona) -> GenerationParams:
    """The request's parameters, each of the persona's defaults filling one the request left unset;
    everything a persona has no default for (tools, tool choice, response format, reasoning) is
    the request's own."""
    d = persona.default_params
    return dataclasses.replace(
        own,
        max_tokens=own.max_tokens if own.max_tokens is not None else d.max_tokens,
        temperature=own.temperature if own.temperature is not None else d.temperature,
        top_p=own.top_p if own.top_p is not None else d.top_p,
        stop=own.stop or d.stop,
        seed=own.seed if own.seed is not None else d.seed,
    )
