"""Experiments: a call on a route that holds one is served by its variant (sticky per tenant and
user): the variant may narrow the candidates to its deployments, lead with its system prompt, and
set parameters. The assignment is reported on the call's outcome (summary, usage record).

It comes after the resolve step (it reads the route from the plan), before admission (a request
naming a variant the experiment lacks is refused at once, not after a wait for a slot) and before
context and quota work (a variant's prompt and max_tokens count). A variant's deployments that a
brought key's pin leaves no room for give way to the pin: the call keeps the plan's candidates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

from sidecar.core.errors import FieldViolation, InvalidRequestError
from sidecar.core.layer import Handler
from sidecar.core.types import Call, Chunk, Message, Role
from sidecar.experiments.assign import REQUESTED_FIELD, Assignment, assign
from sidecar.experiments.book import ExperimentBook


class ExperimentLayer:
    def __init__(self, inner: Handler, *, book: ExperimentBook) -> None:
        self._inner, self._book = inner, book

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        found = self._book.for_route(call.plan.route.alias) if call.plan is not None else None
        if found is None:
            if call.experiment_variant:  # the metadata label alone is ignored, as it always was
                raise InvalidRequestError([FieldViolation(REQUESTED_FIELD, "the route holds no experiment")])
            return self._inner(call)  # no hop of its own
        name, exp = found
        chosen = assign(
            name,
            exp,
            tenant=call.tenant_id,
            user=call.user_id,
            metadata=call.metadata,
            requested=call.experiment_variant,
        )
        call.record.experiment_assigned(chosen.experiment, chosen.variant, overridden=chosen.overridden)
        return self._inner(self._applied(call, chosen))

    def _applied(self, call: Call, chosen: Assignment) -> Call:
        v = chosen.config
        plan = call.plan
        assert plan is not None
        if v.deployments and (narrowed := tuple(t for t in plan.candidates if t.deployment in v.deployments)):
            plan = dataclasses.replace(plan, candidates=narrowed)
        prompts = [p for p in (self._book.persona_prompt(v.persona or ""), v.system_prompt or "") if p]
        messages = (*(Message(Role.SYSTEM, p) for p in prompts), *call.messages)
        own = call.params  # the request's tools, tool choice, response format and reasoning stay
        params = dataclasses.replace(
            own,
            max_tokens=v.params.max_tokens if v.params.max_tokens is not None else own.max_tokens,
            temperature=v.params.temperature if v.params.temperature is not None else own.temperature,
            top_p=v.params.top_p if v.params.top_p is not None else own.top_p,
        )
        return dataclasses.replace(call, plan=plan, messages=messages, params=params)
