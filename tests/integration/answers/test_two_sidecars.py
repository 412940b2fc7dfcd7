"""Two sidecars on one Redis: an offer made by one is accepted through the other, and the agent's
day limit holds exactly when many acceptances race through both."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from tests.conftest import user
from tests.integration.answers.conftest import TOKENS, answers_config, bearer
from tests.support.api import generate_request

pytestmark = pytest.mark.integration
NOVEL = "How do I make a Georgian khachapuri with an Imeretian cheese blend?"


async def test_limits_hold_across_sidecars(serve: Any, redis_url: str) -> None:
    store = {"store": "redis", "redis_url": redis_url, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    cfg = answers_config(store, escalations_per_day=4, escalations_per_week=10)
    one, two = await serve(cfg, environ=TOKENS), await serve(cfg, environ=TOKENS)
    ids: list[tuple[str, str]] = []
    for i in range(12):
        req = generate_request(
            tenant_id="acme", user_id=f"u{i}", conversation_id="c", persona_id="maya", messages=[user(NOVEL)]
        )
        reply = await (one if i % 2 else two).stub.Generate(req, metadata=bearer("APP"))
        assert reply.summary.answer_decision.path == ans.ANSWER_PATH_OFFER_ESCALATION
        ids.append((f"u{i}", reply.summary.answer_decision.escalation_id))

    async def accept(i: int, who: str, escalation_id: str) -> str:
        req = esc.AcceptEscalationRequest(tenant_id="acme", user_id=who, escalation_id=escalation_id)
        try:
            await (one if i % 2 == 0 else two).stub.AcceptEscalation(req, metadata=bearer("APP"))
        except grpc.aio.AioRpcError as err:
            return str(err.code().name)
        return "OK"

    results = await asyncio.gather(*(accept(i, who, eid) for i, (who, eid) in enumerate(ids)))
    assert results.count("OK") == 4 and results.count("RESOURCE_EXHAUSTED") == 8
    listed = await two.stub.ListEscalations(
        esc.ListEscalationsRequest(tenant_id="acme", agent_id="maya"), metadata=bearer("MAYA")
    )
    assert len(listed.escalations) == 4


async def test_two_sidecars_sweeping_one_redis_count_each_expiry_once(serve: Any, redis_url: str) -> None:
    from sidecar.core.clock import FakeClock

    clock = FakeClock()  # both sidecars' sweepers wake at the same advance: their sweeps race
    store = {"store": "redis", "redis_url": redis_url, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    cfg = answers_config(store, escalations_per_day=20, escalations_per_week=20, offer_expiry_seconds=600)
    one, two = await serve(cfg, environ=TOKENS, clock=clock), await serve(cfg, environ=TOKENS, clock=clock)
    for i in range(16):
        req = generate_request(
            tenant_id="acme", user_id=f"u{i}", conversation_id="c", persona_id="maya", messages=[user(NOVEL)]
        )
        reply = await (one if i % 2 else two).stub.Generate(req, metadata=bearer("APP"))
        if i < 4:  # four accepted: they wait in the queue, the other twelve offers lapse
            accept = esc.AcceptEscalationRequest(
                tenant_id="acme", user_id=f"u{i}", escalation_id=reply.summary.answer_decision.escalation_id
            )
            await one.stub.AcceptEscalation(accept, metadata=bearer("APP"))
    sidecars = (one, two)

    def total(name: str, **labels: str) -> float:
        values = [
            s.sidecar.deps.telemetry.metrics.registry.get_sample_value(name, {"agent": "maya", **labels})
            for s in sidecars
        ]
        return sum(v or 0.0 for v in values)

    async def sweep(seconds: float) -> None:
        """Advance the clock (both sweepers wake) and wait until both sweeps have finished."""
        done = [s.sidecar.sweeper.rounds for s in sidecars]
        clock.advance(seconds)
        for _ in range(2000):
            if all(s.sidecar.sweeper.rounds > d for s, d in zip(sidecars, done, strict=True)):
                return
            await asyncio.sleep(0.005)
        raise AssertionError("the sweeps did not happen")

    await sweep(601)  # both sweepers wake together; the twelve offers are due
    for _ in range(3):  # more sweeps by both: nothing is expired, or counted, twice
        await sweep(30)
    assert total("sidecar_answer_escalations_total", state="expired_offer") == 12
    assert total("sidecar_answer_escalations_total", state="expired_queued") == 0
    backlog = [
        s.sidecar.deps.telemetry.metrics.registry.get_sample_value(
            "sidecar_answer_queue_backlog", {"agent": "maya"}
        )
        for s in sidecars
    ]
    assert backlog == [4.0, 4.0]  # each reports the store's figure


async def test_two_creators_answering_one_escalation_through_two_sidecars_make_one_answer(
    serve: Any, redis_url: str
) -> None:
    """Each sidecar reads QUEUED and embeds the question before its compare-and-set: one answer
    wins, the other is ESCALATION_WRONG_STATE, and one canonical answer is made, the winner's."""
    store = {"store": "redis", "redis_url": redis_url, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    cfg = answers_config(store)
    one, two = await serve(cfg, environ=TOKENS), await serve(cfg, environ=TOKENS)
    req = generate_request(
        tenant_id="acme", user_id="ann", conversation_id="c", persona_id="maya", messages=[user(NOVEL)]
    )
    eid = (await one.stub.Generate(req, metadata=bearer("APP"))).summary.answer_decision.escalation_id
    accept = esc.AcceptEscalationRequest(tenant_id="acme", user_id="ann", escalation_id=eid)
    await two.stub.AcceptEscalation(accept, metadata=bearer("APP"))

    async def answer(sidecar: Any, text: str) -> str:
        req = esc.AnswerEscalationRequest(tenant_id="acme", agent_id="maya", escalation_id=eid, answer=text)
        try:
            got = await sidecar.stub.AnswerEscalation(req, metadata=bearer("MAYA"))
        except grpc.aio.AioRpcError as err:
            return str(err.code().name)
        return f"OK {got.escalation.answer}"

    results = sorted(await asyncio.gather(answer(one, "from one"), answer(two, "from two")))
    assert results[0] == "FAILED_PRECONDITION" and results[1].startswith("OK from "), results
    winner = results[1].removeprefix("OK ")
    canonical = await one.sidecar.deps.answers.store.canonical("acme", "maya")
    made = [c.answer for c in canonical if c.source == "escalation"]
    assert made == [winner]


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_queued_escalations_outlive_a_restart_and_expire_by_the_clock(
    serve: Any, redis_url: str, tmp_path: Any, kind: str
) -> None:
    """A sidecar stopped with escalations queued: the next one on the same store lists them, answers
    one, and expires the other once its time has passed while no sidecar ran."""
    from sidecar.core.clock import FakeClock

    if kind == "sqlite":
        store = {"store": "sqlite", "sqlite_path": str(tmp_path / "restart.db")}
    else:
        store = {"store": "redis", "redis_url": redis_url, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}
    cfg = answers_config(store, escalation_expiry_seconds=3600)
    clock = FakeClock()
    first = await serve(cfg, environ=TOKENS, clock=clock)
    ids = []
    for who in ("ann", "bob"):
        req = generate_request(
            tenant_id="acme", user_id=who, conversation_id="c", persona_id="maya", messages=[user(NOVEL)]
        )
        eid = (await first.stub.Generate(req, metadata=bearer("APP"))).summary.answer_decision.escalation_id
        accept = esc.AcceptEscalationRequest(tenant_id="acme", user_id=who, escalation_id=eid)
        await first.stub.AcceptEscalation(accept, metadata=bearer("APP"))
        ids.append(eid)
        if who == "ann":
            clock.advance(1800)
    await first.sidecar.stop(0)
    second = await serve(cfg, environ=TOKENS, clock=clock)  # ann's is 1800 s old, bob's just queued
    listed = await second.stub.ListEscalations(
        esc.ListEscalationsRequest(tenant_id="acme", agent_id="maya"), metadata=bearer("MAYA")
    )
    assert [e.id for e in listed.escalations] == ids
    answered = await second.stub.AnswerEscalation(
        esc.AnswerEscalationRequest(tenant_id="acme", agent_id="maya", escalation_id=ids[1], answer="Yes."),
        metadata=bearer("MAYA"),
    )
    assert answered.escalation.state == esc.ESCALATION_STATE_ANSWERED
    clock.advance(1801)  # ann's is past its hour
    after = await second.stub.ListEscalations(
        esc.ListEscalationsRequest(tenant_id="acme", agent_id="maya", states=[esc.ESCALATION_STATE_EXPIRED]),
        metadata=bearer("MAYA"),
    )
    assert [e.id for e in after.escalations] == ids[:1]
