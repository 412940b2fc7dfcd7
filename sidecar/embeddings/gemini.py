"""Gemini embeddings: `embedContent` for one text, `batchEmbedContents` for several."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import SecretStr

from sidecar.config.schema import DeploymentConfig
from sidecar.core.clock import Deadline
from sidecar.core.errors import ProviderMalformedError
from sidecar.core.tokens import count_tokens
from sidecar.core.types import Usage
from sidecar.embeddings.base import Embeddings, batches, checked_vectors, each, is_normalized
from sidecar.providers._http import HttpClient, Timeouts
from sidecar.providers.tokens import TokenSource

BATCH = 100  # requests a batchEmbedContents takes at most ("at most 100 requests can be in one batch")
CONCURRENCY = 4  # requests of one call at a time


def _request(text: str, model: str, dimensions: int | None) -> dict[str, Any]:
    item: dict[str, Any] = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
    if dimensions is not None:
        item["outputDimensionality"] = dimensions
    return item


def to_wire(texts: Sequence[str], model: str, dimensions: int | None) -> dict[str, Any]:
    """An EmbedContentRequest for one text, a BatchEmbedContentsRequest for more."""
    if len(texts) == 1:
        return _request(texts[0], model, dimensions)
    return {"requests": [_request(t, model, dimensions) for t in texts]}


def parse_response(data: Any, texts: Sequence[str], dimensions: int | None = None) -> Embeddings:
    """Gemini reports no token counts for embeddings: usage is the sidecar's estimate. Each vector
    is `dimensions` long when asked for (outputDimensionality)."""
    if not isinstance(data, dict):
        raise ProviderMalformedError("embeddings answer is not an object")
    items = [data.get("embedding")] if len(texts) == 1 else data.get("embeddings")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ProviderMalformedError("embeddings answer without embedding values")
    vectors = checked_vectors([i.get("values") for i in items], len(texts), dimensions)
    usage = Usage(prompt_tokens=sum(count_tokens(t) for t in texts))
    return Embeddings(vectors, len(vectors[0]), is_normalized(vectors), usage)


class GeminiEmbedder:
    name: ClassVar[str] = "gemini"

    def __init__(
        self, deployment: DeploymentConfig, *, http: HttpClient, api_key: SecretStr | None,
        token_source: TokenSource | None = None, dimensions: int | None = None,
    ) -> None:  # fmt: skip
        self._deployment, self._http, self._dimensions = deployment, http, dimensions
        self._model = f"{deployment.url()}/models/{deployment.model}"
        self._key, self._tokens = api_key, token_source

    def __repr__(self) -> str:
        return f"GeminiEmbedder(model={self._model!r})"

    async def embed(self, texts: Sequence[str], *, deadline: Deadline) -> Embeddings:
        """BATCH texts a request at most (batchEmbedContents refuses more), CONCURRENCY at a time."""
        headers = await self._headers(deadline)
        calls = [functools.partial(self._batch, b, headers, deadline) for b in batches(texts, BATCH)]
        parts = await each(calls, CONCURRENCY)
        vectors = checked_vectors([v for part in parts for v in part.vectors], len(texts), self._dimensions)
        usage = Usage(prompt_tokens=sum(part.usage.prompt_tokens for part in parts))
        return Embeddings(vectors, len(vectors[0]), is_normalized(vectors), usage)

    async def _batch(self, texts: Sequence[str], headers: dict[str, str], deadline: Deadline) -> Embeddings:
        method = "embedContent" if len(texts) == 1 else "batchEmbedContents"
        timeouts = Timeouts(self._deployment.read_timeout_seconds, deadline)
        body = to_wire(texts, self._deployment.model, self._dimensions)
        data = await self._http.post_json(
            f"{self._model}:{method}", headers=headers, body=body, timeouts=timeouts
        )
        return parse_response(data, texts, self._dimensions)

    async def _headers(self, deadline: Deadline) -> dict[str, str]:
        if self._tokens is not None:
            return {"authorization": f"Bearer {await self._tokens.token(deadline)}"}
        return {"x-goog-api-key": self._key.get_secret_value()} if self._key is not None else {}

    async def aclose(self) -> None:
        """The shared HTTP client is closed by its owner."""
