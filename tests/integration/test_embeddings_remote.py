"""Remote embedding adapters against loopback upstreams replaying each provider's recorded answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr

from sidecar.config.schema import DeploymentConfig, HttpSettings
from sidecar.core.clock import Deadline, SystemClock
from sidecar.core.errors import ProviderMalformedError, ProviderRateLimitedError
from sidecar.embeddings.bedrock import BedrockEmbedder
from sidecar.embeddings.gemini import GeminiEmbedder
from sidecar.embeddings.openai import OpenAIEmbedder
from sidecar.providers._http import HttpClient
from tests.integration.test_cloud_providers import aws_credentials  # noqa: F401  (autouse fixture)
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
CLOCK = SystemClock()
TEXTS = ["first text", "second text"]


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(HttpSettings(), CLOCK)
    yield client
    await client.aclose()


def deployment(kind: str, base_url: str, model: str) -> DeploymentConfig:
    return DeploymentConfig.model_validate({"provider": kind, "model": model, "base_url": base_url})


async def embed(embedder: Any, texts: list[str]) -> Any:
    return await embedder.embed(texts, deadline=Deadline.after(5, CLOCK))


async def test_openai_compatible(http: HttpClient, upstream: Upstream) -> None:
    upstream.push(Reply.json("openai/embeddings.json"))
    d = deployment("openai", f"{upstream.url}/v1", "text-embedding-3-small")
    result = await embed(OpenAIEmbedder(d, http=http, api_key=SecretStr("sk-e"), dimensions=4), TEXTS)
    assert result.vectors[0][0] == pytest.approx(0.187272)  # index 0 first, whatever the order sent
    assert (result.dimensions, result.normalized, result.usage.prompt_tokens) == (4, True, 9)
    seen = upstream.seen[0]
    assert seen.path == "/v1/embeddings" and seen.headers["Authorization"] == "Bearer sk-e"
    assert seen.body == {
        "model": "text-embedding-3-small",
        "input": TEXTS,
        "encoding_format": "float",
        "dimensions": 4,
    }


async def test_gemini_one_and_many(http: HttpClient, upstream: Upstream) -> None:
    upstream.push(Reply.json("gemini/embed_content.json"), Reply.json("gemini/batch_embed_contents.json"))
    d = deployment("gemini", f"{upstream.url}/v1beta", "gemini-embedding-001")
    embedder = GeminiEmbedder(d, http=http, api_key=SecretStr("AIza-e"), dimensions=4)
    one, many = await embed(embedder, TEXTS[:1]), await embed(embedder, TEXTS)
    assert len(one.vectors) == 1 and len(many.vectors) == 2 and many.dimensions == 4
    assert many.usage.prompt_tokens > 0  # estimated: Gemini reports none
    single, batch = upstream.seen
    assert single.path == "/v1beta/models/gemini-embedding-001:embedContent"
    assert single.body == {
        "model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first text"}]},
        "outputDimensionality": 4,
    }  # fmt: skip
    assert batch.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [r["content"]["parts"][0]["text"] for r in batch.body["requests"]] == TEXTS
    assert batch.headers["x-goog-api-key"] == "AIza-e"


async def test_bedrock_titan_one_signed_request_per_text(http: HttpClient, upstream: Upstream) -> None:
    upstream.push(Reply.json("bedrock/titan_embedding.json"), Reply.json("bedrock/titan_embedding.json"))
    d = deployment("bedrock", upstream.url, "amazon.titan-embed-text-v2:0")
    # the recorded answer is cut to 4 floats: it is asked for 4 (a real Titan v2 takes 256, 512, 1024)
    result = await embed(BedrockEmbedder(d, http=http, api_key=None, dimensions=4), TEXTS)
    assert len(result.vectors) == 2 and result.usage.prompt_tokens == 10 and result.normalized
    for seen in upstream.seen:
        assert seen.raw_path == "/model/amazon.titan-embed-text-v2%3A0/invoke"
        assert seen.headers["Authorization"].startswith("AWS4-HMAC-SHA256 ") and seen.headers["X-Amz-Date"]
    assert sorted(s.body["inputText"] for s in upstream.seen) == TEXTS
    assert upstream.seen[0].body["dimensions"] == 4 and upstream.seen[0].body["normalize"] is True


async def test_bedrock_cohere_one_request_for_the_batch(http: HttpClient, upstream: Upstream) -> None:
    upstream.push(Reply.json("bedrock/cohere_embeddings.json"))
    d = deployment("bedrock", upstream.url, "cohere.embed-english-v3")
    result = await embed(BedrockEmbedder(d, http=http, api_key=SecretStr("ABSK-e")), TEXTS)
    assert len(result.vectors) == 2
    seen = upstream.seen[0]
    assert seen.headers["Authorization"] == "Bearer ABSK-e"
    assert seen.body == {
        "texts": TEXTS, "input_type": "search_document", "truncate": "END", "embedding_types": ["float"],
    }  # fmt: skip


async def test_errors_and_wrong_answers_are_classified(http: HttpClient, upstream: Upstream) -> None:
    upstream.push(
        Reply.json("openai/error_429.json", 429, headers={"retry-after": "2"}),
        Reply.json("gemini/embed_content.json"),  # one vector for two texts
        Reply(body=b'{"data":[{"index":0,"embedding":[1.0,"x"]}]}'),
    )
    d = deployment("openai", f"{upstream.url}/v1", "m")
    embedder = OpenAIEmbedder(d, http=http, api_key=None)
    with pytest.raises(ProviderRateLimitedError) as info:
        await embed(embedder, TEXTS)
    assert info.value.retry_after == 2
    gemini = GeminiEmbedder(deployment("gemini", f"{upstream.url}/v1beta", "m"), http=http, api_key=None)
    with pytest.raises(ProviderMalformedError):
        await embed(gemini, TEXTS)
    with pytest.raises(ProviderMalformedError):
        await embed(embedder, ["one"])
