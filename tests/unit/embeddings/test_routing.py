"""Embedding deployments built once, routes and their references checked when the policy loads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from sidecar.config.embeddings import EmbeddingsPolicy
from sidecar.config.schema import HttpSettings, Policy
from sidecar.core.errors import InvalidRequestError
from sidecar.embeddings.routing import EmbeddingDeployments, EmbeddingRouter
from sidecar.providers._http import HttpClient
from sidecar.routing.breaker import BreakerPolicy, Breakers
from tests.conftest import FakeClock


class Slow(EmbeddingDeployments):
    """Builds take until `release` is set; counts them."""

    def __init__(self, policy: EmbeddingsPolicy, clock: FakeClock) -> None:
        super().__init__(policy, http=HttpClient(HttpSettings(), clock), secret=lambda _: None)
        self.builds = 0
        self.release = asyncio.Event()

    async def _build(self, d: Any) -> Any:
        self.builds += 1
        await self.release.wait()
        return object()


async def test_a_caller_that_gives_up_leaves_the_build_for_the_next(clock: FakeClock) -> None:
    deployments = Slow(EmbeddingsPolicy(), clock)
    first = asyncio.ensure_future(deployments.get("local"))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    second = asyncio.ensure_future(deployments.get("local"))
    await asyncio.sleep(0)
    deployments.release.set()
    built = await second
    assert built is await deployments.get("local") and deployments.builds == 1


def test_an_unknown_route_is_a_field_error(clock: FakeClock) -> None:
    policy = EmbeddingsPolicy()
    router = EmbeddingRouter(policy, EmbeddingDeployments(policy, http=None, secret=lambda _: None),  # type: ignore[arg-type]
                             Breakers(BreakerPolicy(), clock))  # fmt: skip
    assert router.alias("") == "local"
    with pytest.raises(InvalidRequestError) as info:
        router.alias("nope")
    assert info.value.violations[0].field == "route"


def base(**extra: Any) -> dict[str, Any]:
    return {
        "default_route": "m",
        "deployments": {"d": {"provider": "echo", "model": "e"}},
        "routes": {
            "m": {"deployments": ["d"], "cache": {"semantic": {"enabled": True, "embedding_route": "x"}}}
        },
        **extra,
    }


def test_references_are_checked_when_the_policy_loads() -> None:
    with pytest.raises(ValidationError, match="embedding_route: unknown embedding route 'x'"):
        Policy.model_validate(base())
    ok = Policy.model_validate(
        base(embeddings={"routes": {"x": {"deployments": ["local"]}}, "default_route": "x"})
    )
    assert ok.embeddings.routes["x"].deployments == ["local"]
    with pytest.raises(ValidationError, match="unknown deployment 'nope'"):
        EmbeddingsPolicy.model_validate({"routes": {"local": {"deployments": ["nope"]}}})
    with pytest.raises(ValidationError, match="kind local serves all-MiniLM-L6-v2 only"):
        EmbeddingsPolicy.model_validate({"deployments": {"local": {"kind": "local", "model": "other"}}})


def test_a_local_deployment_cannot_ask_for_another_size() -> None:
    """The local model answers 384 floats whatever `dimensions` says: a deployment of 64 was
    accepted, then served 384 while the reply-size check and the cache's model identity said 64."""
    with pytest.raises(ValidationError, match="all-MiniLM-L6-v2 makes 384 dimensions"):
        EmbeddingsPolicy.model_validate({"deployments": {"local": {"kind": "local", "dimensions": 64}}})
    ok = EmbeddingsPolicy.model_validate({"deployments": {"local": {"kind": "local", "dimensions": 384}}})
    assert ok.deployments["local"].dimensions == 384
