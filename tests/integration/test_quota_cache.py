"""The budget and the response caches: an answer the quota refused is not one the caches give back.

The caches sit inside the quota layer (a hit costs one request), and each stored a complete answer
as soon as its final chunk arrived, before the quota layer outside saw it. A unary answer the
budget could not cover was refused (only its prompt charged), but it was in the cache by then: the
same request again, its small reservation fitting, was a hit, and the whole answer came back for one
request, no tokens and no dollars. Any number of answers past the budget, a prompt's price each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request
from tests.support.upstream import Reply, Upstream, fixture

pytestmark = pytest.mark.integration
LIMIT = 200


def config(upstream: Upstream, tmp_path: Path, semantic: bool) -> dict[str, Any]:
    limits = [{"name": "tokens", "metric": "tokens", "scope": "tenant", "window": "day", "limit": LIMIT}]
    route: dict[str, Any] = {"deployments": ["d"], "retry": {"max_attempts": 1}}
    if semantic:
        route["cache"] = {"semantic": {"enabled": True}}
    return {
        "policy": {
            "default_route": "r",
            "deployments": {"d": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"}},
            "routes": {"r": route},
            "routing": {"probes": {"enabled": False}},
            "tier_assignment": {"default": "enterprise"},
            "quota": {"limits": limits, "output_tokens_estimate": 16},
        },
        "settings": {"cache": {"enabled": not semantic}},
    }


def long_answer() -> Reply:
    body = json.loads(fixture("openai/chat_completion.json"))
    body["choices"][0]["message"]["content"] = "word " * 300
    body["usage"] = {"prompt_tokens": 12, "completion_tokens": 300, "total_tokens": 312}
    return Reply(body=json.dumps(body).encode())


def ask() -> gen.GenerateRequest:
    config = gen.GenerationConfig(temperature=0)
    return generate_request(
        messages=[user("Tell me a long story.")], tenant_id="acme", user_id="u", config=config
    )


@pytest.mark.parametrize("semantic", [False, True], ids=["response cache", "semantic cache"])
async def test_an_answer_the_budget_refused_is_not_given_back_by_the_cache(
    serve: Any, upstream: Upstream, tmp_path: Path, semantic: bool
) -> None:
    s = await serve(config(upstream, tmp_path, semantic))
    upstream.push(long_answer(), long_answer())
    for attempt in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.stub.Generate(ask())
        assert (await rich(info.value)).reason == "TOKEN_QUOTA_EXCEEDED", attempt
    assert len(upstream.seen) == 2  # asked again: nothing of the refused answer was kept
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
    assert next(limit.used for limit in got.limits if limit.name == "tokens") <= LIMIT
