"""The experiment layer: the variant's deployments, prompt and parameters; the outcome reports it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

from sidecar.config.schema import Policy
from sidecar.core.clock import FakeClock
from sidecar.core.layer import collect
from sidecar.core.plan import plan_of
from sidecar.core.types import Call, Chunk, FinishReason, Role
from sidecar.experiments.book import ExperimentBook
from sidecar.pipeline.experiment import ExperimentLayer
from sidecar.routing.table import RouteTable
from tests.support.calls import make_call

POLICY = Policy.model_validate(
    {
        "default_route": "chat",
        "deployments": {
            "one": {"provider": "echo", "model": "m1"},
            "two": {"provider": "echo", "model": "m2"},
        },
        "routes": {"chat": {"deployments": ["one", "two"]}, "other": {"deployments": ["one"]}},
        "personas": {"personas": [{"id": "pirate", "name": "Pirate", "system_prompt": "Arr."}]},
        "experiments": {
            "tone": {
                "route": "chat",
                "control": "a",
                "variants": {
                    "a": {},
                    "b": {
                        "deployments": ["two"],
                        "persona": "pirate",
                        "system_prompt": "Be brief.",
                        "params": {"max_tokens": 9, "temperature": 0.1},
                    },
                },
            }
        },
    }
)
TABLE = RouteTable.from_policy(POLICY)


class Seen:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls.append(call)
        yield Chunk("ok", FinishReason.STOP)


def layer(seen: Seen) -> ExperimentLayer:
    book = ExperimentBook(POLICY.experiments, {"pirate": "Arr."})
    return ExperimentLayer(seen, book=book)


def planned(model: str, **metadata: str) -> Call:
    call = make_call(FakeClock(), model=model)
    call = dataclasses.replace(call, metadata=metadata)
    return dataclasses.replace(call, plan=plan_of(call, TABLE))


async def test_variant_b_narrows_deployments_and_leads_with_its_prompts() -> None:
    seen = Seen()
    call = planned("chat", experiment_variant="b")
    await collect(layer(seen), call)
    served = seen.calls[0]
    assert served.plan is not None and [t.deployment for t in served.plan.candidates] == ["two"]
    assert [(m.role, m.text) for m in served.messages[:2]] == [
        (Role.SYSTEM, "Arr."),
        (Role.SYSTEM, "Be brief."),
    ]
    assert served.messages[2:] == call.messages
    assert (served.params.max_tokens, served.params.temperature) == (9, 0.1)
    assert (call.record.experiment, call.record.variant) == ("tone", "b")


async def test_control_keeps_the_call_as_it_is() -> None:
    seen = Seen()
    call = planned("chat", experiment_variant="a")
    await collect(layer(seen), call)
    served = seen.calls[0]
    assert served.messages == call.messages and served.plan == call.plan
    assert call.record.variant == "a"


async def test_a_route_without_experiment_is_untouched() -> None:
    seen = Seen()
    call = planned("other")
    await collect(layer(seen), call)
    assert seen.calls[0] is call and call.record.experiment == ""


async def test_a_reloaded_book_applies_to_the_next_call() -> None:
    seen = Seen()
    book = ExperimentBook(POLICY.experiments, {})
    lay = ExperimentLayer(seen, book=book)
    promoted = POLICY.experiments["tone"].model_copy(update={"promoted": "b"})
    book.replace({"tone": promoted}, {})
    call = planned("chat")
    await collect(lay, call)
    assert call.record.variant == "b"


async def test_a_variant_keeps_the_requests_tools_format_and_reasoning() -> None:
    """A variant sets its own max_tokens and temperature; everything it has no say in is the
    request's. The variant dropped tools, tool choice, parallel tool calls, the response format and
    reasoning, so an agent loop or a structured-output call in an experiment went out as plain text."""
    from sidecar.core.types import Reasoning, ResponseFormat, ToolChoice, ToolSpec

    seen = Seen()
    call = planned("chat", experiment_variant="b")
    own = dataclasses.replace(
        call.params,
        stop=("END",),
        seed=7,
        tools=(ToolSpec("weather", "the weather", '{"type":"object"}'),),
        tool_choice=ToolChoice(name="weather"),
        parallel_tool_calls=False,
        response_format=ResponseFormat("json_schema", "w", '{"type":"object"}', strict=True),
        reasoning=Reasoning(effort="low"),
    )
    await collect(layer(seen), dataclasses.replace(call, params=own))
    served = seen.calls[0].params
    assert served == dataclasses.replace(own, max_tokens=9, temperature=0.1)
