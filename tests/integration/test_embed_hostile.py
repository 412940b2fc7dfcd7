"""The embedding service against hostile upstreams and callers who leave: a malformed answer is the
provider's bad answer (the next deployment is tried), and a call its caller cancelled still ends in
the usage record and the metrics, charged nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sidecar.config.schema import HttpSettings
from sidecar.core.clock import Deadline, SystemClock
from sidecar.embeddings.service import EmbedRequest
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


async def test_a_call_its_caller_cancels_is_recorded_and_charged_nothing(
    http: HttpClient, upstream: Upstream
) -> None:
    """A caller that leaves while the upstream works: no usage record and no metric said the call
    had been made (every other ending wrote both)."""
    upstream.push(Reply(hang=True))
    rig = Rig(policy(remote(upstream, "primary")), http)
    req = EmbedRequest("r-cancel", "acme", "ann", ("first text",), Deadline.after(30, CLOCK), tier="free")
    task = asyncio.create_task(rig.service.embed(req))
    for _ in range(500):  # the upstream holds the request
        if upstream.seen:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (record,) = rig.ledger.records
    assert (record.request_id, record.outcome, record.cost_usd, record.tokens_in) == (
        "r-cancel",
        "CANCELLED",
        0,
        0,
    )
    assert (
        rig.metric("sidecar_embed_requests_total", route="remote", deployment="none", code="CANCELLED") == 1
    )
    used = await rig.used()
    assert (used["req"], used["tok"], used["usd"]) == (0, 0, 0)


async def test_a_cohere_answer_of_another_size_than_the_deployment_sets_is_a_bad_answer(
    http: HttpClient, upstream: Upstream
) -> None:
    """Titan, Gemini and OpenAI-compatible answers are checked against the deployment's
    `dimensions`; Cohere's (on Bedrock) were not: a 4-float answer to a deployment of 8 was served,
    and the route's vectors, cache and reply-size check all assumed 8."""
    from pydantic import SecretStr

    from sidecar.config.schema import DeploymentConfig
    from sidecar.core.clock import Deadline
    from sidecar.core.errors import ProviderMalformedError
    from sidecar.embeddings.bedrock import BedrockEmbedder

    upstream.push(Reply.json("bedrock/cohere_embeddings.json"), Reply.json("bedrock/cohere_embeddings.json"))
    d = DeploymentConfig.model_validate(
        {"provider": "bedrock", "model": "cohere.embed-english-v3", "base_url": upstream.url}
    )
    texts = ["first text", "second text"]
    wrong = BedrockEmbedder(d, http=http, api_key=SecretStr("ABSK-e"), dimensions=8)
    with pytest.raises(ProviderMalformedError):
        await wrong.embed(texts, deadline=Deadline.after(5, CLOCK))
    right = BedrockEmbedder(d, http=http, api_key=SecretStr("ABSK-e"), dimensions=4)
    assert (await right.embed(texts, deadline=Deadline.after(5, CLOCK))).dimensions == 4


async def test_an_embed_rpc_its_client_cancels_is_in_the_ledger(
    serve: Any, upstream: Upstream, tmp_path: Any
) -> None:
    """The same through the real server and a real gRPC client that cancels its call."""
    import sqlite3

    from sidecar._gen.orchestrator.v1 import embed_pb2
    from tests.conftest import echo_policy

    upstream.push(Reply(hang=True))
    running = await serve({"policy": echo_policy(embeddings=remote(upstream, "primary"))})
    call = running.stub.Embed(
        embed_pb2.EmbedRequest(tenant_id="acme", user_id="ann", texts=["first text"], request_id="rpc-cancel")
    )
    for _ in range(500):
        if upstream.seen:
            break
        await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    ledger = running.sidecar.deps.telemetry.ledger
    for _ in range(500):  # the server learns of the cancellation a moment later
        await ledger.flush()
        with sqlite3.connect(tmp_path / "usage.db") as conn:
            found = conn.execute(
                "SELECT outcome FROM usage_records WHERE request_id = 'rpc-cancel'"
            ).fetchall()
        if found:
            break
        await asyncio.sleep(0.01)
    assert found == [("CANCELLED",)]
