"""The answer policy through the real server: the paths in the response, the escalation lifecycle
(offer, accept, list, answer -> canonical and conversation, decline, expiry on the injected clock),
authorization per creator, and bad input named by field that changes nothing."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from sidecar.core.clock import FakeClock
from tests.conftest import user
from tests.integration.answers.conftest import TOKENS, answers_config, bearer
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request, text_of

pytestmark = pytest.mark.integration
NOVEL = "How do I make a Georgian khachapuri with an Imeretian cheese blend?"


async def ask(s: Any, text: str, *, who: str = "ann", conversation: str = "c1", **fields: Any) -> Any:
    req = generate_request(
        tenant_id="acme", user_id=who, conversation_id=conversation, persona_id="maya",
        messages=[user(text)], **fields,
    )  # fmt: skip
    return await s.stub.Generate(req, metadata=bearer("APP"))


async def offered(s: Any, who: str = "ann", conversation: str = "c1") -> str:
    reply = await ask(s, NOVEL, who=who, conversation=conversation)
    d = reply.summary.answer_decision
    assert d.path == ans.ANSWER_PATH_OFFER_ESCALATION and d.reason == "novel", d
    return str(d.escalation_id)


async def accept(s: Any, escalation_id: str, who: str = "ann") -> Any:
    req = esc.AcceptEscalationRequest(tenant_id="acme", user_id=who, escalation_id=escalation_id)
    return await s.stub.AcceptEscalation(req, metadata=bearer("APP"))


async def pending(s: Any, creator: str = "MAYA", agent: str = "maya", **fields: Any) -> list[Any]:
    req = esc.ListEscalationsRequest(tenant_id="acme", agent_id=agent, **fields)
    return list((await s.stub.ListEscalations(req, metadata=bearer(creator))).escalations)


async def answer(s: Any, escalation_id: str, text: str, creator: str = "MAYA", agent: str = "maya") -> Any:
    req = esc.AnswerEscalationRequest(
        tenant_id="acme", agent_id=agent, escalation_id=escalation_id, answer=text
    )
    return await s.stub.AnswerEscalation(req, metadata=bearer(creator))


async def test_the_paths_in_the_response(s: Any) -> None:
    canonical = await ask(s, "Which flour do you use when you bake sourdough?")
    d = canonical.summary.answer_decision
    assert d.path == ans.ANSWER_PATH_CANONICAL and d.signals.similarity >= 0.85 and d.canonical_answer_id
    assert text_of(canonical) == "Strong white bread flour."
    assert canonical.summary.cost_micros == 0 and not canonical.summary.served_by.deployment  # no provider
    vague = await ask(s, "help?")
    assert vague.summary.answer_decision.path == ans.ANSWER_PATH_CLARIFY and "?" in text_of(vague)
    auto = await ask(s, "How much salt do you put in pasta water?")
    assert auto.summary.answer_decision.path == ans.ANSWER_PATH_AUTO_ANSWER
    assert auto.summary.served_by.deployment == "echo"
    blocked = await ask(s, "What do you think about politics?")
    d = blocked.summary.answer_decision
    assert (d.path, d.reason) == (ans.ANSWER_PATH_REFUSE, "blocked_topic") and list(d.alternatives)
    tier = await ask(s, "Can I freeze fresh basil?", who="eve")  # eve is enterprise: not allowed
    assert (tier.summary.answer_decision.path, tier.summary.answer_decision.reason) == (
        ans.ANSWER_PATH_REFUSE,
        "tier_not_allowed",
    )


async def test_layers_decide_what_a_caller_may_be_served(s: Any) -> None:
    public = await ask(s, "What did you cook at your wedding?")
    assert public.summary.answer_decision.path != ans.ANSWER_PATH_CANONICAL
    intimate = await ask(s, "What did you cook at your wedding?", audience_layer="intimate")
    assert intimate.summary.answer_decision.path == ans.ANSWER_PATH_CANONICAL
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await ask(s, "hello", audience_layer="secret")
    assert (await rich(err.value)).fields == ["input.audience_layer"]


async def test_the_escalation_lifecycle(s: Any) -> None:
    await ask(s, "Hi Maya, I love your recipes.", conversation="c9")  # context for the escalation
    escalation_id = await offered(s, conversation="c9")
    assert await pending(s) == []  # an offer is not in the creator's queue
    accepted = await accept(s, escalation_id)
    assert (
        accepted.path == ans.ANSWER_PATH_QUEUED and accepted.escalation.state == esc.ESCALATION_STATE_QUEUED
    )
    [queued] = await pending(s)
    assert queued.id == escalation_id and queued.question == NOVEL and queued.user_id == "ann"
    assert [m.role for m in queued.context] == ["user", "assistant"]  # the stored exchange before it
    assert queued.context[0].text == "Hi Maya, I love your recipes."
    done = await answer(s, escalation_id, "Mix sulguni and imeruli, and bake it in a very hot oven.")
    assert done.escalation.state == esc.ESCALATION_STATE_ANSWERED and done.canonical_answer_id
    assert await pending(s) == []
    again = await ask(s, "How can I make Georgian khachapuri with Imeretian cheese?", who="bob")
    d = again.summary.answer_decision
    assert d.path == ans.ANSWER_PATH_CANONICAL and d.canonical_answer_id == done.canonical_answer_id
    snapshot = await s.sidecar.deps.personas.store.snapshot(_key("ann", "c9"), history=True)
    assert "sulguni" in snapshot.history[-1].text  # the creator's answer reached the conversation
    answered = await pending(s, states=[esc.ESCALATION_STATE_ANSWERED])
    assert [e.id for e in answered] == [escalation_id]


def _key(who: str, conversation: str) -> Any:
    from sidecar.sessions.store import ConversationKey

    return ConversationKey("acme", who, conversation)


async def test_bad_input_is_named_and_changes_nothing(s: Any) -> None:
    escalation_id = await offered(s)
    await accept(s, escalation_id)
    code = grpc.StatusCode
    eid = "escalation_id"
    cases = [
        (answer(s, "esc_doesnotexist", "x"), code.NOT_FOUND, "ESCALATION_NOT_FOUND", eid),
        (
            answer(s, escalation_id, "x", "LEO", "maya"),
            code.PERMISSION_DENIED,
            "CREATOR_NOT_ALLOWED",
            "agent_id",
        ),
        (answer(s, escalation_id, "x", "LEO", "leo"), code.NOT_FOUND, "ESCALATION_NOT_FOUND", eid),
        (answer(s, escalation_id, "   "), code.INVALID_ARGUMENT, "INVALID_REQUEST", "answer"),
        # only invisible characters (zero-width spaces, a word joiner, a BOM): served word for word
        # as a canonical answer, it was an empty reply to every user who asked the same
        (answer(s, escalation_id, "\u200b \u2060\ufeff"), code.INVALID_ARGUMENT, "INVALID_REQUEST", "answer"),
        (accept(s, escalation_id), code.FAILED_PRECONDITION, "ESCALATION_WRONG_STATE", eid),
        (accept(s, "nonsense"), code.INVALID_ARGUMENT, "INVALID_REQUEST", eid),
    ]
    for call, code, reason, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        r = await rich(err.value)
        assert (r.code, r.reason, r.fields) == (code, reason, [field]), r.message
    [still] = await pending(s)
    assert still.id == escalation_id and still.state == esc.ESCALATION_STATE_QUEUED and not still.answer
    await answer(s, escalation_id, "First answer.")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await answer(s, escalation_id, "Second answer.")
    r = await rich(err.value)
    assert (r.reason, r.fields) == ("ESCALATION_WRONG_STATE", ["escalation_id"]) and "answered" in r.message
    [done] = await pending(s, states=[esc.ESCALATION_STATE_ANSWERED])
    assert done.answer == "First answer."


async def test_someone_else_s_offer_cannot_be_accepted(s: Any) -> None:
    escalation_id = await offered(s, who="ann")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accept(s, escalation_id, who="bob")
    assert (await rich(err.value)).reason == "ESCALATION_NOT_FOUND"
    await accept(s, escalation_id, who="ann")


async def test_decline_and_the_day_limit(s: Any) -> None:
    ids = [await offered(s, who=f"u{i}") for i in range(4)]
    for i in ids[:3]:
        await accept(s, i, who=f"u{ids.index(i)}")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accept(s, ids[3], who="u3")
    r = await rich(err.value)
    assert (r.code, r.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "ESCALATION_LIMIT_REACHED")
    over = await ask(s, NOVEL, who="u9")  # the limit is reached: no offer any more
    assert (over.summary.answer_decision.path, over.summary.answer_decision.reason) == (
        ans.ANSWER_PATH_REFUSE,
        "escalation_limit",
    )
    req = esc.DeclineEscalationRequest(
        tenant_id="acme", agent_id="maya", escalation_id=ids[0], reason="off topic"
    )
    declined = await s.stub.DeclineEscalation(req, metadata=bearer("MAYA"))
    assert declined.escalation.state == esc.ESCALATION_STATE_DECLINED
    assert len(await pending(s)) == 2


async def test_offers_and_queued_escalations_expire_on_the_clock(s: Any, clock: FakeClock) -> None:
    lapsed = await offered(s, who="ann")
    waiting = await offered(s, who="bob")
    await accept(s, waiting, who="bob")
    from tests.integration.answers.test_sweeper import swept

    await swept(s, clock, 601)  # the offer expiry is 600 s: the sweep expires the offer and deletes it
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await accept(s, lapsed, who="ann")
    assert (await rich(err.value)).reason == "ESCALATION_NOT_FOUND"  # never accepted: not kept
    assert [e.id for e in await pending(s)] == [waiting]
    clock.advance(3600)  # the queued expiry is 3600 s
    assert await pending(s) == []
    gone = await pending(s, states=[esc.ESCALATION_STATE_EXPIRED])
    assert [e.id for e in gone] == [waiting]  # the user sent it: kept for the retention
    registry = s.sidecar.deps.telemetry.metrics.registry
    for state in ("expired_offer", "expired_queued"):
        labels = {"agent": "maya", "state": state}
        assert registry.get_sample_value("sidecar_answer_escalations_total", labels) == 1.0


async def test_the_report(s: Any) -> None:
    await ask(s, "Which flour do you use when you bake sourdough?")
    await ask(s, "How much salt do you put in pasta water?", who="bob")
    escalation_id = await offered(s, who="cat")
    await accept(s, escalation_id, who="cat")
    await answer(s, escalation_id, "Bake it hot.")
    req = esc.GetAnswerReportRequest(tenant_id="acme", agent_id="maya")
    r = await s.stub.GetAnswerReport(req, metadata=bearer("MAYA"))
    assert r.messages == 3 and dict(r.paths) == {"A": 1, "C": 1, "D": 1} and r.users == 3
    assert r.auto_answer_rate == pytest.approx(1 / 3, abs=1e-3) and r.reuse_rate == pytest.approx(
        1 / 3, abs=1e-3
    )
    assert r.escalations_per_100_users == pytest.approx(33.33) and r.queue_backlog == 0
    assert r.canonical_answers == 4 and r.canonical_reuses == 1
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await s.stub.GetAnswerReport(req, metadata=bearer("LEO"))
    assert (await rich(err.value)).reason == "CREATOR_NOT_ALLOWED"


async def test_the_decision_in_the_usage_record_and_the_metrics(s: Any, tmp_path: Any) -> None:
    import json
    import sqlite3

    await ask(s, "Which flour do you use when you bake sourdough?", request_id="r-canonical")
    await ask(s, "help?", request_id="r-vague")
    await ask(s, "What do you think about politics?", request_id="r-blocked", metadata={"answer": "spoof"})
    ledger = s.sidecar.deps.telemetry.ledger
    await ledger.flush()
    with sqlite3.connect(tmp_path / "usage.db") as conn:
        rows = dict(conn.execute("SELECT request_id, metadata FROM usage_records").fetchall())
    labels = {rid: json.loads(meta) for rid, meta in rows.items()}
    assert labels["r-canonical"] == {"answer:path": "C", "answer:reason": "canonical_match"}
    assert labels["r-vague"]["answer:path"] == "B"
    assert labels["r-blocked"] == {"answer": "spoof", "answer:path": "F", "answer:reason": "blocked_topic"}
    registry = s.sidecar.deps.telemetry.metrics.registry
    for path, reason in (("C", "canonical_match"), ("B", "vague"), ("F", "blocked_topic")):
        labels_ = {"agent": "maya", "path": path, "reason": reason}
        assert registry.get_sample_value("sidecar_answer_paths_total", labels_) == 1.0
    escalation_id = await offered(s)
    await accept(s, escalation_id)
    await answer(s, escalation_id, "Done.")
    for state in ("offered", "queued", "answered"):
        got = registry.get_sample_value("sidecar_answer_escalations_total", {"agent": "maya", "state": state})
        assert got == 1.0
    assert registry.get_sample_value("sidecar_answer_time_to_answer_seconds_count", {"agent": "maya"}) == 1.0


async def test_list_pages_and_filters(s: Any, clock: FakeClock) -> None:
    ids = []
    for who in ("ann", "bob", "cat"):
        ids.append(await offered(s, who=who))
        clock.advance(1)
    for i, who in zip(ids, ("ann", "bob", "cat"), strict=True):
        await accept(s, i, who=who)
    req = esc.ListEscalationsRequest(tenant_id="acme", agent_id="maya", page_size=2)
    first = await s.stub.ListEscalations(req, metadata=bearer("MAYA"))
    assert [e.id for e in first.escalations] == ids[:2] and first.next_page_token
    req.page_token = first.next_page_token
    second = await s.stub.ListEscalations(req, metadata=bearer("MAYA"))
    assert [e.id for e in second.escalations] == ids[2:] and not second.next_page_token
    assert [e.id for e in await pending(s, user_id="bob")] == [ids[1]]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pending(s, page_token="forged")
    assert (await rich(err.value)).fields == ["page_token"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pending(s, agent="nobody")
    assert (await rich(err.value)).reason == "AGENT_NOT_FOUND"


async def test_the_creator_never_reads_an_offer_the_user_did_not_accept(s: Any, clock: FakeClock) -> None:
    """An offer asks the user whether to send the message to the creator. Listed OFFERED (or EXPIRED
    before it was accepted), it handed the creator the question, the conversation's last messages and
    who asked; now only its state and times. Once accepted it is the user's message, listed whole."""
    for who, conversation in (("ann", "c1"), ("bob", "c2"), ("cat", "c3")):  # something before it
        await ask(s, "How much salt do you put in pasta water?", who=who, conversation=conversation)
    kept = await offered(s, who="ann")
    lapsed = await offered(s, who="bob", conversation="c2")
    sent = await offered(s, who="cat", conversation="c3")
    await accept(s, sent, who="cat")
    states = [esc.ESCALATION_STATE_OFFERED, esc.ESCALATION_STATE_QUEUED]
    listed = {e.id: e for e in await pending(s, states=states)}
    assert set(listed) == {kept, lapsed, sent}
    for unsent in (listed[kept], listed[lapsed]):
        assert unsent.state == esc.ESCALATION_STATE_OFFERED and unsent.HasField("offer_expire_time")
        withheld = (unsent.question, unsent.user_id, unsent.conversation_id, list(unsent.context))
        assert withheld == ("", "", "", [])
    assert listed[sent].question == NOVEL and listed[sent].user_id == "cat" and listed[sent].context
    assert await pending(s, states=states, user_id="ann") == []  # nor found by who asked
    from tests.integration.answers.test_sweeper import swept

    await swept(s, clock, 900)  # the offers lapse (600 s here); the queued one stays queued (3600 s)
    assert await pending(s, states=[esc.ESCALATION_STATE_EXPIRED]) == []  # deleted as they expire
    assert [e.id for e in await pending(s, states=states)] == [sent]


async def test_an_offer_keeps_a_bounded_question_and_context(s: Any) -> None:
    """Offers cost the user nothing, and each stored the question and the last messages whole: an
    offer made after a 150,000-character message kept all of it (and so did every other offer)."""
    from sidecar.answers.model import MAX_CONTEXT_MESSAGE_CHARS, MAX_QUESTION_CHARS

    await ask(s, "How much salt do you put in pasta water? " + "Really, " * 20_000, conversation="big")
    long_novel = NOVEL + " " + "Tell me everything about the cheese. " * 1_000
    reply = await ask(s, long_novel, conversation="big")
    d = reply.summary.answer_decision
    assert d.path == ans.ANSWER_PATH_OFFER_ESCALATION, d
    await accept(s, d.escalation_id)
    (e,) = await pending(s)
    assert e.question.startswith(NOVEL) and len(e.question) < MAX_QUESTION_CHARS + 60 < len(long_novel)
    assert e.context and all(len(m.text) < MAX_CONTEXT_MESSAGE_CHARS + 60 for m in e.context)
    assert any("more characters not kept" in m.text for m in e.context)


async def test_paths_b_c_d_f_never_reach_a_provider_and_stream_too(s: Any) -> None:
    """Served without any attempt, cost 0; StreamGenerate carries the decision in its result."""
    for text in ("help?", "Can I freeze fresh basil?", NOVEL, "politics again?"):
        reply = await ask(s, text)
        assert not reply.summary.attempts and reply.summary.cost_micros == 0, text
        assert reply.summary.answer_decision.path != ans.ANSWER_PATH_AUTO_ANSWER
    req = stream_request(
        tenant_id="acme", user_id="ann", conversation_id="s1", persona_id="maya",
        messages=[user("Can fresh basil be frozen?")],
    )  # fmt: skip
    events = [e async for e in s.stub.StreamGenerate(req, metadata=bearer("APP"))]
    assert (
        "".join(e.delta.text for e in events if e.HasField("delta"))
        == "Blend it with oil and freeze it in cubes."
    )
    result = events[-1].result
    assert result.summary.answer_decision.path == ans.ANSWER_PATH_CANONICAL and not result.summary.attempts


async def test_working_through_the_queue_page_by_page_skips_nothing(s: Any, clock: FakeClock) -> None:
    # a creator lists the pending escalations, answers that page, then asks for the next one: the
    # answered ones have left the pending list meanwhile, and the next page must still start at
    # the first escalation not yet shown (an offset into the shorter list skipped the rest)
    ids = []
    for who in ("ann", "bob", "cat"):  # the day's limit
        ids.append(await offered(s, who=who))
        clock.advance(1)
        await accept(s, ids[-1], who=who)
    req = esc.ListEscalationsRequest(tenant_id="acme", agent_id="maya", page_size=2)
    seen = []
    while True:
        page = await s.stub.ListEscalations(req, metadata=bearer("MAYA"))
        for e in page.escalations:
            seen.append(e.id)
            await answer(s, e.id, f"Answer to {e.user_id}.")
        if not page.next_page_token:
            break
        req.page_token = page.next_page_token
    assert seen == ids
    assert await pending(s) == []


async def test_open_offers_are_bounded_per_user_and_per_tenant(
    serve: Any, clock: FakeClock, store: dict[str, Any]
) -> None:
    """Offers cost the user nothing (paths B-F come before the quota), and each was stored: one
    caller could make thousands and fill the store, every list and report reading them all. Past
    `max_open_offers_per_user`, or the tenant's `max_open_offers`, a message that would be offered
    is refused (F offer_limit) and nothing is stored; an accepted or lapsed offer frees its place."""
    raw = answers_config(store, max_open_offers_per_user=2, max_open_offers=3, escalations_per_day=None)
    raw["policy"]["answers"]["agents"]["maya"]["escalations_per_week"] = None
    s = await serve(raw, environ=TOKENS, clock=clock)
    first = [await offered(s, who="ann", conversation=f"c{i}") for i in range(2)]
    refused = (await ask(s, NOVEL, who="ann", conversation="c9")).summary.answer_decision
    assert (refused.path, refused.reason, refused.escalation_id) == (
        ans.ANSWER_PATH_REFUSE,
        "offer_limit",
        "",
    )
    await offered(s, who="bob")
    assert (await ask(s, NOVEL, who="cat")).summary.answer_decision.reason == "offer_limit"  # the tenant's 3
    await accept(s, first[0], who="ann")  # accepted: no longer an open offer
    await offered(s, who="cat")
    listed = await pending(s, states=[esc.ESCALATION_STATE_OFFERED, esc.ESCALATION_STATE_QUEUED])
    assert len(listed) == 4  # three open offers and the accepted one: nothing else was stored
    clock.advance(601)  # the offers lapse (600 s): room again
    assert [await offered(s, who=who) for who in ("ann", "ann", "dan")]
