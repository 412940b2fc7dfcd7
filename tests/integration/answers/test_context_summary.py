"""Escalation context written by a model, through the real server and a loopback upstream speaking
the OpenAI wire format: the summary replaces the verbatim messages when the escalation is queued,
accounted like any call (metrics, usage ledger, the user's quota); when the route fails, times out
(on the injected clock), answers too long or the quota refuses it, the verbatim messages are kept;
the escalation says which kind of context it carries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.core.clock import FakeClock
from sidecar.ledger.record import GroupBy, UsageQuery
from tests.conftest import user
from tests.integration.answers.conftest import TOKENS, answers_config, bearer
from tests.integration.answers.test_lifecycle import NOVEL, pending
from tests.support.api import generate_request
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
SUMMARY = "Ann runs a bakery in Lyon and wants a khachapuri recipe for her Saturday menu."
BEFORE = [
    ("user", "Hi, I run a small bakery in Lyon."),
    ("assistant", "Lovely! How can I help?"),
    ("user", "I want something Georgian for Saturday."),
    ("assistant", "Khachapuri would be a good fit."),
]


def completion(text: str, prompt_tokens: int = 41, completion_tokens: int = 17) -> Reply:
    body = {
        "id": "chatcmpl-ctx1", "object": "chat.completion", "created": 1763700000, "model": "gpt-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }  # fmt: skip
    return Reply(body=json.dumps(body).encode())


def config(upstream: Upstream, tmp_path: Any, **summary: Any) -> dict[str, Any]:
    raw = answers_config(
        {"store": "sqlite", "sqlite_path": str(tmp_path / "answers.db")},
        context_summary={"route": "summ", "timeout_seconds": 3, "max_chars": 200, **summary},
    )
    policy = raw["policy"]
    policy["deployments"]["summ"] = {
        "provider": "openai",
        "model": "gpt-mini",
        "base_url": f"{upstream.url}/v1",
    }
    policy["routes"]["summ"] = {"deployments": ["summ"], "retry": {"max_attempts": 1}}  # no backoff to wait
    return raw


async def offer_after_a_chat(s: Any, who: str = "ann") -> str:
    history = [gen.Message(role=gen.ROLE_USER if r == "user" else gen.ROLE_ASSISTANT,
                           content=[gen.ContentPart(text=t)]) for r, t in BEFORE]  # fmt: skip
    req = generate_request(
        tenant_id="acme", user_id=who, conversation_id="c1", persona_id="maya",
        messages=[*history, user(NOVEL)],
    )  # fmt: skip
    reply = await s.stub.Generate(req, metadata=bearer("APP"))
    escalation_id = reply.summary.answer_decision.escalation_id
    assert escalation_id, reply.summary.answer_decision
    return str(escalation_id)


def accept_request(escalation_id: str, who: str = "ann") -> esc.AcceptEscalationRequest:
    return esc.AcceptEscalationRequest(tenant_id="acme", user_id=who, escalation_id=escalation_id)


def outcomes(s: Any, outcome: str) -> float | None:
    registry = s.sidecar.deps.telemetry.metrics.registry
    labels = {"agent": "maya", "outcome": outcome}
    value: float | None = registry.get_sample_value("sidecar_answer_context_summaries_total", labels)
    return value


async def test_a_queued_escalation_carries_the_models_summary_accounted_as_a_call(
    serve: Any, upstream: Upstream, tmp_path: Any
) -> None:
    s = await serve(config(upstream, tmp_path), environ=TOKENS, clock=FakeClock())
    escalation_id = await offer_after_a_chat(s)
    assert upstream.seen == []  # the offer costs nothing: the summary is made when it is queued
    upstream.push(completion(SUMMARY))
    queued = (await s.stub.AcceptEscalation(accept_request(escalation_id), metadata=bearer("APP"))).escalation
    assert queued.context_kind == esc.ESCALATION_CONTEXT_KIND_SUMMARY and queued.context_summary == SUMMARY
    assert list(queued.context) == []
    [listed] = await pending(s)
    assert (listed.context_kind, listed.context_summary) == (esc.ESCALATION_CONTEXT_KIND_SUMMARY, SUMMARY)
    [sent] = upstream.seen
    assert sent.body["model"] == "gpt-mini" and sent.body["max_tokens"] == 160
    transcript = sent.body["messages"][-1]["content"]
    assert "user: Hi, I run a small bakery in Lyon." in transcript and NOVEL in transcript
    registry = s.sidecar.deps.telemetry.metrics.registry
    labels = {"route": "summ", "provider": "openai", "model": "gpt-mini", "stream": "false", "code": "OK"}
    assert registry.get_sample_value("sidecar_requests_total", labels) == 1.0
    assert outcomes(s, "summarized") == 1.0
    ledger = s.sidecar.deps.telemetry.ledger
    await ledger.flush()
    routes = {g.key: g for g in await ledger.usage(UsageQuery("acme", 0, 4e9, GroupBy.ROUTE, user="ann"))}
    summ = routes["summ"]  # beside the offer's own record (no provider, nothing spent)
    assert (summ.requests, summ.tokens_in, summ.tokens_out) == (1, 41, 17)


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        (Reply(status=500, body=b'{"error":{"message":"boom"}}'), "failed"),
        ("too long", "too_long"),
        (completion("   "), "empty"),
    ],
    ids=["upstream-500", "too-long", "empty"],
)
async def test_a_failing_summary_keeps_the_verbatim_messages(
    serve: Any, upstream: Upstream, tmp_path: Any, reply: Any, outcome: str
) -> None:
    s = await serve(config(upstream, tmp_path), environ=TOKENS, clock=FakeClock())
    escalation_id = await offer_after_a_chat(s)
    upstream.push(completion("x" * 201) if reply == "too long" else reply)
    queued = (await s.stub.AcceptEscalation(accept_request(escalation_id), metadata=bearer("APP"))).escalation
    assert queued.state == esc.ESCALATION_STATE_QUEUED  # the acceptance itself never fails for it
    assert queued.context_kind == esc.ESCALATION_CONTEXT_KIND_VERBATIM and queued.context_summary == ""
    assert [(m.role, m.text) for m in queued.context] == BEFORE
    [listed] = await pending(s)
    assert listed.context_kind == esc.ESCALATION_CONTEXT_KIND_VERBATIM and len(listed.context) == 4
    assert outcomes(s, outcome) == 1.0


async def test_a_summary_that_times_out_on_the_clock_keeps_the_verbatim_messages(
    serve: Any, upstream: Upstream, tmp_path: Any
) -> None:
    clock = FakeClock()
    s = await serve(config(upstream, tmp_path), environ=TOKENS, clock=clock)
    escalation_id = await offer_after_a_chat(s)
    upstream.push(Reply(hang=True))
    accepted = asyncio.ensure_future(
        s.stub.AcceptEscalation(accept_request(escalation_id), metadata=bearer("APP"))
    )
    for _ in range(2000):  # until the summary request reached the upstream (real I/O, bounded)
        if upstream.seen:
            break
        await asyncio.sleep(0.005)
    assert upstream.seen, "the summary request never reached the upstream"
    clock.advance(3.5)  # timeout_seconds is 3
    queued = (await asyncio.wait_for(accepted, timeout=10)).escalation
    assert queued.context_kind == esc.ESCALATION_CONTEXT_KIND_VERBATIM and len(queued.context) == 4
    assert outcomes(s, "timeout") == 1.0


async def test_a_summary_the_users_quota_refuses_keeps_the_verbatim_messages(
    serve: Any, upstream: Upstream, tmp_path: Any
) -> None:
    raw = config(upstream, tmp_path)
    raw["policy"]["quota"] = {}
    raw["policy"]["tiers"] = {"free": {"requests_per_minute": 0}, "basic": {}, "enterprise": {}}  # ann: free
    s = await serve(raw, environ=TOKENS, clock=FakeClock())
    escalation_id = await offer_after_a_chat(s)
    upstream.push(completion(SUMMARY))
    queued = (await s.stub.AcceptEscalation(accept_request(escalation_id), metadata=bearer("APP"))).escalation
    assert queued.context_kind == esc.ESCALATION_CONTEXT_KIND_VERBATIM and len(queued.context) == 4
    assert upstream.seen == [] and outcomes(s, "refused") == 1.0


async def test_a_summary_route_the_users_tier_may_not_use_keeps_the_verbatim_messages(
    serve: Any, upstream: Upstream, tmp_path: Any
) -> None:
    raw = config(upstream, tmp_path)
    raw["policy"]["tiers"] = {
        "free": {"allowed_routes": ["echo"]},
        "basic": {},
        "enterprise": {},
    }  # ann: free
    s = await serve(raw, environ=TOKENS, clock=FakeClock())
    escalation_id = await offer_after_a_chat(s)
    upstream.push(completion(SUMMARY))
    queued = (await s.stub.AcceptEscalation(accept_request(escalation_id), metadata=bearer("APP"))).escalation
    assert queued.context_kind == esc.ESCALATION_CONTEXT_KIND_VERBATIM and len(queued.context) == 4
    assert upstream.seen == [] and outcomes(s, "refused") == 1.0
