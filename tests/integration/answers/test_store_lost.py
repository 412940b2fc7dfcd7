"""The answer store's Redis lost its data (restarted without persistence, FLUSHALL, failover to an
empty replica) while the sidecars ran: the configured canonical answers come back at the next sweep,
without a restart. Before, they were seeded only at start: until every sidecar was restarted, a
question the agent answers in its configuration was treated as novel (offered to the creator)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar.core.clock import FakeClock
from tests.conftest import user
from tests.integration.answers.conftest import TOKENS, answers_config, bearer
from tests.integration.answers.test_sweeper import swept
from tests.support.api import generate_request

pytestmark = pytest.mark.integration


async def test_canonical_answers_come_back_after_redis_lost_its_data(
    serve: Any, redis_url: str, clock: FakeClock
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    store = {"store": "redis", "redis_url": redis_url, "key_prefix": prefix}
    s = await serve(answers_config(store), environ=TOKENS, clock=clock)

    async def path() -> int:
        req = generate_request(
            tenant_id="acme", user_id="ann", conversation_id="c", persona_id="maya",
            messages=[user("Can I freeze fresh basil?")],
        )  # fmt: skip
        return (await s.stub.Generate(req, metadata=bearer("APP"))).summary.answer_decision.path

    assert await path() == ans.ANSWER_PATH_CANONICAL
    client = aioredis.from_url(redis_url)
    try:
        lost = [k async for k in client.scan_iter(f"{prefix}:*")]
        assert lost and await client.delete(*lost) == len(lost)  # as a FLUSHALL would
    finally:
        await client.aclose()
    await swept(s, clock, 30)
    assert await path() == ans.ANSWER_PATH_CANONICAL
    await swept(s, clock, 30)  # nothing lost since: nothing is stored again
    assert await path() == ans.ANSWER_PATH_CANONICAL
