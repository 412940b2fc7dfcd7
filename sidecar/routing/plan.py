"""Which deployments a call may try, in which order: strategy, context fit, probe health.

The circuit breaker is not consulted here: admitting a call through a half-open breaker uses up a
trial permit, so the route layer asks the breaker only when it is about to make the attempt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.context.tokenizer import Tokenizers
from sidecar.core.errors import Code, ContextTooLongError, FieldViolation, SidecarError
from sidecar.core.tokens import MESSAGE_OVERHEAD, REPLY_PRIMING
from sidecar.core.types import Call, Target
from sidecar.providers.base import max_tokens_sent
from sidecar.providers.fit import missing, needs
from sidecar.providers.registry import capabilities
from sidecar.routing.breaker import Breakers
from sidecar.routing.key_pause import KeyPauses
from sidecar.routing.retry import RetryBudgets
from sidecar.routing.stats import Stats
from sidecar.routing.strategy import (
    CallShape,
    Candidate,
    ComplexityPolicy,
    LatencyPolicy,
    complexity_score,
    order,
)
from sidecar.routing.table import Route, RouteTable
from sidecar.telemetry.tracing import Tracing


class HealthView(Protocol):
    """What the active probes say of a deployment."""

    def healthy(self, deployment: str) -> bool: ...


class AlwaysHealthy:
    """The health view when probes are disabled."""

    def healthy(self, deployment: str) -> bool:
        return True


@dataclass(frozen=True)
class Routing:
    """The routing collaborators, built once by the composition root."""

    table: RouteTable
    breakers: Breakers
    budgets: RetryBudgets
    stats: Stats
    health: HealthView = field(default_factory=AlwaysHealthy)
    complexity: ComplexityPolicy = field(default_factory=ComplexityPolicy)
    latency: LatencyPolicy = field(default_factory=LatencyPolicy)
    rng: random.Random = field(default_factory=random.Random)
    tracing: Tracing = field(default_factory=Tracing.disabled)  # a child span per upstream attempt
    tokens: Tokenizers = field(default_factory=lambda: Tokenizers({}))  # the one counting service
    key_pauses: KeyPauses | None = None  # users' own keys told to wait by a 429's Retry-After


def plan(routing: Routing, route: Route, call: Call) -> list[Target]:
    """The route's deployments for this call, best first.

    Only the plan's candidates (the pinned key's provider's deployments, sidecar/core/plan.py) and,
    when the quota layer names one, the budget's deployment are candidates. Deployments whose context
    window the prompt does not fit are left out (so a long prompt goes to a larger window); deployments
    the probes call unhealthy are left out unless every one is (then the probes are not trusted over
    real traffic, and all are tried).
    """
    prompt_tokens = _prompt_tokens(call, route, routing.tokens)
    shape = CallShape(
        prompt_tokens=prompt_tokens,
        max_tokens=call.params.max_tokens or 0,
        complexity=complexity_score(call.messages) if route.config.strategy == "complexity" else 0.0,
        budget_usd=None,
    )
    usable = _usable(route, call, needs(call.params, call.messages))
    candidates = [_candidate(routing, route, i, call) for i in usable]
    ranked = order(route.config.strategy, candidates, shape, routing.rng, routing.complexity, routing.latency)
    ordered = [c.target for c in ranked]
    if not ordered:
        raise ContextTooLongError(prompt_tokens, max(c.context_window for c in candidates))
    healthy = [t for t in ordered if routing.health.healthy(t.deployment)]
    return healthy or ordered


class NoCapableDeploymentError(SidecarError):
    """The call needs features (tools, a JSON schema, images, reasoning) no deployment of the route has."""

    code = Code.FAILED_PRECONDITION
    reason = "NO_CAPABLE_DEPLOYMENT"


def _usable(route: Route, call: Call, need: frozenset[str]) -> list[int]:
    """Positions of the route's deployments the call may use and that can serve it: the plan's
    candidates (a brought key's provider) and the quota's budget deployment, when it names one,
    among those with what the call needs. None is an error naming what each one lacks."""
    allowed = {t.deployment for t in call.plan.candidates} if call.plan is not None else None
    budget = call.budget_deployment
    may = [
        i
        for i in range(len(route.targets))
        if (not budget or route.targets[i].deployment == budget)
        and (allowed is None or route.targets[i].deployment in allowed)
    ]
    lacks = {i: missing(capabilities(route.deployments[i]), need, call.messages) for i in may} if need else {}
    usable = [i for i in may if not lacks.get(i)]
    if usable:
        return usable
    key = call.plan.key_provider if call.plan is not None else ""
    narrowed = [f"the budget's deployment {budget!r}"] * bool(budget) + [f"{key} deployments"] * bool(key)
    metadata = {"model": route.alias, "needs": ",".join(sorted(need))}
    if not may:
        message = f"route {route.alias!r} has no deployment that is {' and one of its '.join(narrowed)}"
        raise NoCapableDeploymentError(message, metadata=metadata)
    among = f" this call may use ({' and '.join(narrowed)})" if narrowed else ""
    reasons = [f"{route.targets[i].deployment} {lacks[i]}" for i in may]
    metadata["missing"] = "; ".join(reasons)
    violations = [  # an image no deployment can take: the caller may send another
        FieldViolation("messages", f"image {n} of the prompt: {name} cannot take it ({why})")
        for i, name in ((i, route.targets[i].deployment) for i in may)
        for n, why in lacks[i].images
    ]
    raise NoCapableDeploymentError(
        f"no deployment of route {route.alias!r}{among} can serve this call: {'; '.join(reasons)}",
        metadata=metadata,
        violations=violations,
    )


def _prompt_tokens(call: Call, route: Route, tokens: Tokenizers) -> int:
    """Exact count only when it can matter: a token is at least one character, so a prompt with
    fewer characters than the smallest room (a window less the answer it is sent for: max_tokens,
    else the deployment's default) fits everywhere with its answer, and ~4 characters a token is
    estimate enough for cost ordering. Counting a long prompt is the expensive part of planning.
    (Compared with the window alone, a dense prompt, a token a character, went to a window it and
    its max_tokens overflow.)"""
    room = min(d.context_window - max_tokens_sent(call.params, d) for d in route.deployments)
    own = [t.deployment for t in route.targets]  # counted as trimming counts for this route
    if any(m.images or m.tool_calls for m in call.messages) or call.params.tools:
        return tokens.prompt_max(call.messages, call.params, deployments=own)
    chars = sum(len(m.text) + (len(m.name) + 1 if m.name else 0) for m in call.messages)
    if chars + REPLY_PRIMING + MESSAGE_OVERHEAD * len(call.messages) < room:
        return chars // 4 + REPLY_PRIMING + MESSAGE_OVERHEAD * len(call.messages)
    return tokens.prompt_max(call.messages, call.params, deployments=own)


def _candidate(routing: Routing, route: Route, i: int, call: Call) -> Candidate:
    target, deployment = route.targets[i], route.deployments[i]
    stats = routing.stats.get(target.deployment)
    return Candidate(
        target=target,
        position=i,
        weight=deployment.weight,
        priority=deployment.priority,
        tags=frozenset(deployment.tags),
        context_window=deployment.context_window,
        in_flight=stats.in_flight,
        ewma_ttft=stats.ewma_ttft,
        ewma_total=stats.ewma_total,
        default_max_tokens=deployment.default_max_tokens,
        answer_tokens=max_tokens_sent(call.params, deployment),
    )
