"""Personas for tests: a small catalogue (config dicts), a registry and service over either store.

`conversation_store` is parametrized over the in-memory store (with the test's FakeClock) and a
real Redis (the session `redis_url`, a fresh key prefix per test), so one suite covers both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sidecar.config.personas import PersonasConfig
from sidecar.core.clock import Clock
from sidecar.personas.registry import PersonaRegistry
from sidecar.personas.service import PersonaService
from sidecar.sessions.store import ConversationStore, MemoryConversationStore, StorePolicy

TIERS = ("free", "basic", "professional", "enterprise")

CATALOGUE: list[dict[str, Any]] = [
    {
        "id": "mr-blue",
        "name": "Mr Blue",
        "aliases": ["blue"],
        "category": "assistant",
        "system_prompt": "You are Mr Blue, calm and precise.",
    },
    {
        "id": "dashboard-architect",
        "name": "Dashboard Architect",
        "aliases": ["architect", "dash"],
        "category": "analytics",
        "tiers": ["professional", "enterprise"],
        "system_prompt": "You design dashboards.",
        "default_route": "echo",
        "default_params": {"temperature": 0.2, "max_tokens": 300},
    },
    {
        "id": "agent-79",
        "name": "Agent #79",
        "category": "agents",
        "system_prompt": "You are agent 79.",
    },
    {
        "id": "agent-80",
        "name": "Agent #80",
        "category": "agents",
        "tiers": ["enterprise"],
        "system_prompt": "You are agent 80.",
    },
]

POLICY = StorePolicy(ttl_seconds=60.0, max_history_messages=6, max_switch_history=50, max_conversations=1000)


def personas_config(**extra: Any) -> PersonasConfig:
    return PersonasConfig.model_validate({"personas": CATALOGUE, **extra})


def registry(**extra: Any) -> PersonaRegistry:
    return PersonaRegistry.from_config(personas_config(**extra), tiers=TIERS, routes=("echo",))


def service(store: ConversationStore, clock: Clock, *, memory: bool = False) -> PersonaService:
    return PersonaService(registry(), store, clock=clock, memory_default=memory)


@pytest.fixture(params=["memory", "redis"])
async def conversation_store(
    request: pytest.FixtureRequest, clock: Clock
) -> AsyncIterator[ConversationStore]:
    """The same contract over both implementations (Redis: real redis-server, fresh prefix)."""
    store: ConversationStore
    if request.param == "memory":
        store = MemoryConversationStore(POLICY, clock)
    else:
        from sidecar.sessions.redis import RedisConversationStore

        url = request.getfixturevalue("redis_url")
        store = RedisConversationStore.from_url(url, POLICY, prefix=f"t{uuid.uuid4().hex[:12]}")
    yield store
    await store.aclose()
