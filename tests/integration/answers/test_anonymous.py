"""A message to an agent from a caller that names no user: an escalation is accepted by the user it
was offered to, so such a caller is never offered one it could not accept."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from tests.integration.answers.conftest import bearer
from tests.integration.answers.test_lifecycle import NOVEL, ask, pending
from tests.integration.helpers import rich

pytestmark = pytest.mark.integration


async def test_a_caller_without_a_user_is_not_offered_an_escalation(s: Any) -> None:
    """The offer was made with user "" and its escalation id, but AcceptEscalation requires a
    user_id and finds the offer only for the user it was made to: the user was asked "Would you like
    me to send it to them?" and no answer could ever say yes (the offer only lapsed)."""
    reply = await ask(s, NOVEL, who="")
    d = reply.summary.answer_decision
    assert d.path != ans.ANSWER_PATH_OFFER_ESCALATION and not d.escalation_id, d
    assert (d.path, d.reason) == (ans.ANSWER_PATH_REFUSE, "escalations_disabled")
    assert await pending(s, states=[esc.ESCALATION_STATE_OFFERED]) == []
    named = await ask(s, NOVEL, who="ann")  # the same message from a named user is offered
    assert named.summary.answer_decision.path == ans.ANSWER_PATH_OFFER_ESCALATION
    eid = named.summary.answer_decision.escalation_id
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # what the anonymous caller would have met
        await s.stub.AcceptEscalation(
            esc.AcceptEscalationRequest(tenant_id="acme", user_id="", escalation_id=eid),
            metadata=bearer("APP"),
        )
    assert (await rich(refused.value)).fields == ["user_id"]
