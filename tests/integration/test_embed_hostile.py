"""The embedding service against hostile upstreams: a malformed answer is the provider's bad answer
(the next deployment is tried)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sidecar.config.schema import HttpSettings
from sidecar.core.clock import SystemClock
from sidecar.providers._http import HttpClient
from tests.integration.test_embed_service import Rig, policy, remote
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
CLOCK = SystemClock()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(HttpSettings(), CLOCK)
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    "indexes",
    [
        '{"index":0,"embedding":[0.6,0.8]},{"index":null,"embedding":[0.8,0.6]}',
        '{"index":0,"embedding":[0.6,0.8]},{"index":"1","embedding":[0.8,0.6]}',
        '{"index":{"n":1},"embedding":[0.6,0.8]},{"index":0,"embedding":[0.8,0.6]}',
    ],
)
async def test_an_answer_with_indexes_that_are_not_integers_is_a_bad_answer(
    http: HttpClient, upstream: Upstream, indexes: str
) -> None:
    """`index` null, a string or an object beside integers made sorting them raise TypeError: the
    call failed INTERNAL and the route's next deployment was never tried."""
    upstream.push(Reply(body=f'{{"data":[{indexes}]}}'.encode()), Reply.json("openai/embeddings.json"))
    rig = Rig(policy(remote(upstream, "primary", "secondary")), http)
    result = await rig.embed(["first text", "second text"])
    assert result.deployment == "secondary" and len(upstream.seen) == 2
    assert rig.metric("sidecar_embed_requests_total", route="remote", deployment="secondary", code="OK") == 1
