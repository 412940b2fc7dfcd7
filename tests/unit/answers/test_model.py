"""The escalation's stored form: what a newer sidecar wrote (fields this one does not know, on a
shared Redis) and what an older one wrote (fields it did not have yet) both decode."""

from __future__ import annotations

import json

from sidecar.answers.model import Escalation, State


def escalation() -> Escalation:
    return Escalation(
        "esc_model_0001", "acme", "maya", "ann", "c1", "why?", "public", State.QUEUED, 10.0, 20.0,
        context=(("user", "hi"),), queued_at=15.0, expires_at=99.0,
    )  # fmt: skip


def test_a_round_trip_keeps_everything() -> None:
    e = escalation()
    assert Escalation.decode(e.encode()) == e
    assert e.deadline == 99.0 and e.expired(100.0).deadline is None


def test_fields_a_newer_sidecar_wrote_are_ignored() -> None:
    doc = json.loads(escalation().encode())
    doc["a_field_from_the_future"] = 1
    assert Escalation.decode(json.dumps(doc)) == escalation()


def test_fields_an_older_sidecar_did_not_write_take_their_defaults() -> None:
    doc = json.loads(escalation().encode())
    for name in ("context_kind", "context_summary", "tier"):
        del doc[name]
    old = Escalation.decode(json.dumps(doc))
    assert (old.context_kind, old.context_summary, old.tier) == ("verbatim", "", "")


def test_an_escalation_keeps_a_bounded_context_newest_first() -> None:
    from sidecar.answers.model import MAX_CONTEXT_CHARS, MAX_CONTEXT_MESSAGE_CHARS, clipped, kept_context

    assert clipped("short", 10) == "short"
    assert clipped("x" * 25, 10) == "x" * 10 + " [... 15 more characters not kept]"
    huge = tuple(("user" if i % 2 else "assistant", f"{i}:" + "w" * 200_000) for i in range(50))
    kept = kept_context(huge, 50)
    assert sum(len(t) for _, t in kept) <= MAX_CONTEXT_CHARS + 60 * len(kept)  # with the markers
    assert all(len(t) <= MAX_CONTEXT_MESSAGE_CHARS + 60 for _, t in kept)
    assert kept[-1][1].startswith("49:") and len(kept) == MAX_CONTEXT_CHARS // MAX_CONTEXT_MESSAGE_CHARS
    small = (("user", "hi"), ("assistant", "hello"), ("user", "and?"))
    assert kept_context(small, 2) == small[1:] and kept_context(small, 0) == ()
