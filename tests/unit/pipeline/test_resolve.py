"""The resolve step: one place decides route, tier access, key pin and candidates, before any
context, summary or quota work; later layers read the plan it makes."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

import pytest

from sidecar.config.quota import TierConfig
from sidecar.config.schema import Policy
from sidecar.core.errors import ModelNotAllowedError, RouteNotFoundError
from sidecar.core.layer import collect
from sidecar.core.types import (
    Call,
    Chunk,
    FinishReason,
    GenerationParams,
    Reasoning,
    ResponseFormat,
    ToolChoice,
    ToolSpec,
    Usage,
)
from sidecar.personas.registry import Persona, PersonaRegistry
from sidecar.personas.service import PersonaService
from sidecar.pipeline.resolve import ResolveLayer
from sidecar.routing.table import RouteTable
from sidecar.sessions.store import MemoryConversationStore
from tests.conftest import FakeClock
from tests.support.calls import make_call
from tests.support.personas import POLICY as STORE_POLICY

POLICY = Policy.model_validate(
    {
        "default_route": "main",
        "deployments": {n: {"provider": "echo", "model": n} for n in ("a", "b")},
        "routes": {"main": {"deployments": ["a", "b"]}, "other": {"deployments": ["b"]}},
    }
)
TIERS = {"free": TierConfig(allowed_routes=["other"]), "pro": TierConfig()}


class Inner:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls.append(call)
        yield Chunk(text="ok", finish_reason=FinishReason.STOP, usage=Usage(1, 1))


def resolve(clock: FakeClock, inner: Inner) -> ResolveLayer:
    personas = PersonaService(
        PersonaRegistry(()), MemoryConversationStore(STORE_POLICY, clock), clock=clock, memory_default=False
    )
    return ResolveLayer(
        inner, personas=personas, table=RouteTable.from_policy(POLICY), tiers=TIERS, keys=None, modes={}
    )


async def test_the_plan_carries_route_and_candidates_and_the_outcome_the_route(clock: FakeClock) -> None:
    inner = Inner()
    call = dataclasses.replace(make_call(clock), tier="pro")
    await collect(resolve(clock, inner), call)
    plan = inner.calls[0].plan
    assert plan is not None and plan.route.alias == "main"
    assert [t.deployment for t in plan.candidates] == ["a", "b"]
    assert call.record.route == "main"


async def test_a_tier_that_may_not_use_the_route_is_refused_before_any_stream(clock: FakeClock) -> None:
    """MODEL_NOT_ALLOWED is decided here, synchronously: no context trimming, summary or quota
    reservation (all inside) can have happened."""
    inner = Inner()
    layer = resolve(clock, inner)
    with pytest.raises(ModelNotAllowedError) as info:
        layer(dataclasses.replace(make_call(clock, model="main"), tier="free"))
    assert info.value.metadata == {"model": "main", "tier": "free"}
    assert inner.calls == []
    await collect(layer, dataclasses.replace(make_call(clock, model="other"), tier="free"))
    await collect(layer, dataclasses.replace(make_call(clock, model="main"), tier="pro"))
    assert len(inner.calls) == 2


async def test_an_unknown_route_is_refused_here(clock: FakeClock) -> None:
    with pytest.raises(RouteNotFoundError):
        resolve(clock, Inner())(make_call(clock, model="nope"))


async def test_a_persona_fills_unset_parameters_and_keeps_the_requests_tools_format_and_reasoning(
    clock: FakeClock,
) -> None:
    """A persona's defaults fill only the parameters it has; the request's tools, tool choice,
    parallel tool calls, response format and reasoning go upstream as they came (they were dropped
    whenever a persona applied, so an agent or a structured call with a persona got plain text)."""
    inner = Inner()
    persona = Persona(
        "p1",
        "P One",
        (),
        "general",
        frozenset(),
        "You are p1.",
        4,
        None,
        GenerationParams(max_tokens=300, temperature=0.2),
    )
    personas = PersonaService(
        PersonaRegistry((persona,)),
        MemoryConversationStore(STORE_POLICY, clock),
        clock=clock,
        memory_default=False,
    )
    layer = ResolveLayer(
        inner, personas=personas, table=RouteTable.from_policy(POLICY), tiers=TIERS, keys=None, modes={}
    )
    params = GenerationParams(
        temperature=0.9,
        tools=(ToolSpec("get_weather", "the weather", '{"type":"object"}'),),
        tool_choice=ToolChoice(name="get_weather"),
        parallel_tool_calls=False,
        response_format=ResponseFormat("json_object"),
        reasoning=Reasoning(effort="low"),
    )
    call = dataclasses.replace(make_call(clock), tier="pro", persona_id="p1", params=params)
    await collect(layer, call)
    sent = inner.calls[0].params
    assert sent == dataclasses.replace(params, max_tokens=300)
