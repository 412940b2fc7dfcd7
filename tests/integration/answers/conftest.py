"""A served sidecar with the answer policy: agent `maya` (creator credential `maya-creator`) and agent
`leo` (creator `leo-creator`), canonical answers seeded for tenant `acme`, on the local embedding model."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from sidecar.core.clock import FakeClock
from tests.conftest import echo_policy

TOKENS = {"APP": "app-token", "MAYA": "maya-token", "LEO": "leo-token"}
PERSONAS = [
    {"id": "maya", "name": "Maya", "system_prompt": "You are Chef Maya's assistant."},
    {"id": "leo", "name": "Leo", "system_prompt": "You are Leo's assistant."},
]
CANONICAL = [
    {"question": "What flour do you use for sourdough bread?", "answer": "Strong white bread flour."},
    {"question": "Can I freeze fresh basil?", "answer": "Blend it with oil and freeze it in cubes."},
    {"question": "What did you cook at your wedding?", "answer": "Saffron risotto.", "layer": "intimate"},
]


def bearer(name: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {TOKENS[name]}")]


def answers_config(store: dict[str, Any] | None = None, **maya: Any) -> dict[str, Any]:
    creds = [
        {
            "name": "maya-creator",
            "token": {"env": "MAYA"},
            "allow": ["EscalationService"],
            "tenants": ["acme"],
        },
        {"name": "leo-creator", "token": {"env": "LEO"}, "allow": ["EscalationService"], "tenants": ["acme"]},
    ]
    agents = {
        "maya": {
            "creators": ["maya-creator"],
            "canonical": CANONICAL,
            "blocked_topics": ["politics"],
            "allowed_tiers": ["free", "basic"],
            "escalations_per_day": 3,
            "escalations_per_week": 5,
            "offer_expiry_seconds": 600,
            "escalation_expiry_seconds": 3600,
            **maya,
        },
        "leo": {"creators": ["leo-creator"]},
    }
    answers = {"agents": agents, "seed_tenants": ["acme"], **(store or {})}
    policy = echo_policy(
        personas={"personas": PERSONAS, "sessions": {"memory": True}},
        answers=answers,
        tier_assignment={"users": {"acme/eve": "enterprise"}},
    )
    return {"policy": policy, "settings": {"auth": {"token": {"env": "APP"}, "credentials": creds}}}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> dict[str, Any]:
    """The answer store of the served sidecar: the embedded SQLite file, or a real Redis."""
    if request.param == "sqlite":
        return {"store": "sqlite", "sqlite_path": str(tmp_path / "answers.db")}
    url = request.getfixturevalue("redis_url")
    return {"store": "redis", "redis_url": url, "key_prefix": f"t{uuid.uuid4().hex[:10]}"}


@pytest.fixture
async def s(serve: Any, clock: FakeClock, store: dict[str, Any]) -> Any:
    return await serve(answers_config(store), environ=TOKENS, clock=clock)
