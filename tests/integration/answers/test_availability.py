"""Availability windows through the real server, on the injected clock: outside the creator's window no
offer is made (the model answers, or the message is refused, with the next window's start); inside it
the offer is made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar.core.clock import FakeClock
from tests.conftest import user
from tests.integration.answers.conftest import TOKENS, answers_config, bearer
from tests.support.api import generate_request

pytestmark = pytest.mark.integration
NOVEL = "How do I make a Georgian khachapuri with an Imeretian cheese blend?"
WINDOW = {
    "timezone": "Europe/Paris",
    "availability": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}],
}


def clock_at(iso: str) -> FakeClock:
    wall = datetime.fromisoformat(iso).timestamp()
    probe = FakeClock()
    return FakeClock(start=probe.now + wall - probe.wall())


async def decision(s: Any) -> Any:
    req = generate_request(tenant_id="acme", user_id="ann", persona_id="maya", messages=[user(NOVEL)])
    return (await s.stub.Generate(req, metadata=bearer("APP"))).summary.answer_decision


@pytest.mark.parametrize(("outside", "path"), [("auto_answer", "AUTO_ANSWER"), ("refuse", "REFUSE")])
async def test_no_offer_outside_the_window(serve: Any, outside: str, path: str) -> None:
    clock = clock_at("2025-11-29T12:00:00+01:00")  # a Saturday noon in Paris
    s = await serve(answers_config(**WINDOW, outside_availability=outside), environ=TOKENS, clock=clock)
    away = await decision(s)
    assert away.path == getattr(ans, f"ANSWER_PATH_{path}") and away.reason == "creator_unavailable"
    monday_nine = datetime(2025, 12, 1, 8, 0, tzinfo=UTC).timestamp()  # 09:00 in Paris
    assert away.available_time.seconds == monday_nine and not away.escalation_id
    clock.advance(monday_nine - clock.wall())
    back = await decision(s)
    assert back.path == ans.ANSWER_PATH_OFFER_ESCALATION and back.escalation_id
