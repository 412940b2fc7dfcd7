"""The response cache key: a compact hash of everything that determines an answer.

blake2b (20 bytes, hex) over a canonical JSON list of: a format version, the tenant, the scope
(the user id when answers are per user, empty when the tenant shares them), the persona, the
resolved route alias, the deployments the call is narrowed to (an experiment variant's, a brought
key's provider's, the budget fallback; empty when any of the route's may answer), the normalized
parameters (with tools, tool choice, response format and reasoning) and every message (role, name,
text, tool calls, the call a result answers, a digest of each image). The tenant and scope are also
stored in the entry and compared on read, so even a hash collision cannot serve one tenant's answer
to another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.core.plan import CallPlan
from sidecar.core.types import GenerationParams, Message

KEY_VERSION = 3


@dataclass(frozen=True, slots=True)
class CacheScope:
    """Who may share an answer: a tenant, and a user within it ("" when the tenant shares)."""

    tenant: str
    user: str


def cache_scope(tenant: str, user: str, *, scope: str, user_key: str) -> CacheScope:
    """Who may share a call's answer: the tenant's users when the scope is `tenant`, except on a
    route that takes the user's own provider key (`user_key: required` or `preferred`): an answer
    made on one user's key is that user's, paid for by them, never served to another (who may have
    no key at all). On a `preferred` route whether the user's key made the answer is known only
    once the call ran (a registered key is looked up per deployment, inside routing), and the
    lookup must be keyed before it, so all of the route's answers are per user."""
    per_user = scope == "user" or user_key in ("required", "preferred")
    return CacheScope(tenant, user if per_user else "")


def normalized_params(params: GenerationParams) -> list[object]:
    """Parameters as they affect the answer; equal requests normalize equal (0 == 0.0, stop order kept)."""
    return [
        params.max_tokens,
        None if params.temperature is None else float(params.temperature),
        None if params.top_p is None else float(params.top_p),
        list(params.stop),
        params.seed,
        [[t.name, t.description, t.parameters_json] for t in params.tools],
        None if params.tool_choice is None else [params.tool_choice.mode, params.tool_choice.name],
        params.parallel_tool_calls,
        None if (f := params.response_format) is None else [f.kind, f.name, f.schema_json, f.strict],
        None if (r := params.reasoning) is None else [r.effort, r.budget_tokens, r.include_thinking],
    ]


def message_material(m: Message) -> list[object]:
    """Everything of a message that the answer depends on (the semantic cache's partition uses it too)."""
    material: list[object] = [m.role.value, m.name, m.text]
    if m.tool_calls or m.tool_call_id or m.images:
        material += [
            [[c.id, c.name, c.arguments] for c in m.tool_calls],
            m.tool_call_id,
            [[i.url, hashlib.blake2b(i.data, digest_size=16).hexdigest(), i.mime_type] for i in m.images],
        ]
    return material


def narrowed_deployments(plan: CallPlan, budget_deployment: str = "") -> tuple[str, ...]:
    """The deployments that may serve the call when they are fewer than the route's (an experiment
    variant's, a brought key's provider's, the budget fallback), else (): another model's answer is
    another answer."""
    names = tuple(
        t.deployment for t in plan.candidates if not budget_deployment or t.deployment == budget_deployment
    )
    return () if names == tuple(t.deployment for t in plan.route.targets) else names


def answer_key(
    scope: CacheScope,
    *,
    persona: str,
    route: str,
    params: GenerationParams,
    messages: Sequence[Message],
    deployments: Sequence[str] = (),
) -> str:
    material = [
        KEY_VERSION,
        scope.tenant,
        scope.user,
        persona,
        route,
        list(deployments),
        normalized_params(params),
        [message_material(m) for m in messages],
    ]
    encoded = json.dumps(material, ensure_ascii=False, separators=(",", ":")).encode()
    return "answer:" + hashlib.blake2b(encoded, digest_size=20).hexdigest()
