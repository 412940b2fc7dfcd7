"""A call's plan: what the resolve step decided once, right after authentication, for every later
layer to read instead of deciding it again.

The persona (and the effective messages, model and parameters, which are on the Call the resolve
step passes on), the route, that the caller's tier may use it, the provider a brought key pins the
call to, and the deployments that leaves. Immutable: a layer that narrows the choice further (the
quota layer's budget deployment) says so on the Call, never here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sidecar.core.types import Call, Message, Target

if TYPE_CHECKING:
    from sidecar.routing.table import Route, RouteTable
    from sidecar.sessions.store import ConversationKey


@dataclass(frozen=True, slots=True)
class CallPlan:
    route: Route
    candidates: tuple[Target, ...]  # the route's deployments this call may use, in configured order
    persona: str = ""  # the persona serving the call ("" = none)
    key_provider: str = ""  # the provider of the key the caller brought ("" = none brought, or unpinned)
    remember: ConversationKey | None = None  # with memory: where the exchange is stored after success
    exchange: tuple[Message, ...] = ()  # the caller's new user/assistant messages, stored with the answer
    epoch: int | None = None  # the conversation's clears when its snapshot was read: the memory and
    # summary writes of this call are dropped if it was cleared since (None: no snapshot read)


def plan_of(call: Call, table: RouteTable) -> CallPlan:
    """The call's plan; a call that did not pass the resolve step (a layer tested on its own, a
    summary call) gets the plan resolution would give it without persona or key pin."""
    if call.plan is not None:
        return call.plan
    route = table.resolve(call.model)
    return CallPlan(route=route, candidates=route.targets)
