"""Quota fixtures: one store suite over the in-memory store and a real Redis, driven by a FakeClock.

`quota_store` is parametrized: "memory" builds a MemoryQuotaStore, "redis" a RedisQuotaStore on the
session's redis-server (tests/support/redis.py) with a unique key prefix and `server_time=False`,
so both stores read the test's FakeClock (production Redis stores use Redis TIME instead).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sidecar.quota.store import MemoryQuotaStore, QuotaStore


@pytest.fixture(params=["memory", "redis"])
async def quota_store(request: pytest.FixtureRequest, clock: Any) -> AsyncIterator[QuotaStore]:
    store: QuotaStore
    if request.param == "memory":
        store = MemoryQuotaStore(clock)
    else:
        from sidecar.quota.redis_store import RedisQuotaStore

        url = request.getfixturevalue("redis_url")
        prefix = f"test:{uuid.uuid4().hex[:12]}"
        store = RedisQuotaStore.from_url(url, clock, prefix=prefix, timeout=2.0, server_time=False)
    yield store
    await store.aclose()
