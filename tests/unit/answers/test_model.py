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
