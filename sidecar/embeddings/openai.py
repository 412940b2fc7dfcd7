"""OpenAI-compatible `/v1/embeddings` (OpenAI, Azure-style gateways, vLLM, Ollama, llama.cpp, TEI)."""

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
from sidecar.providers.base import token_count

# texts per /embeddings request: OpenAI takes 2048, but 2048 vectors of 3072 floats (text-embedding-
# 3-large), one a line as OpenAI writes them, are about 140 MB of JSON, past the 32 MiB an answer may
# be (providers/_http.py); 256 of them are about 17 MB
BATCH = 256
CONCURRENCY = 4  # requests of one call at a time


def to_wire(texts: Sequence[str], model: str, dimensions: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": list(texts), "encoding_format": "float"}
    if dimensions is not None:
        body["dimensions"] = dimensions
    return body


def parse_response(data: Any, texts: Sequence[str], dimensions: int | None = None) -> Embeddings:
    """The embedding list (put back in input order by `index`), each `dimensions` long when asked
    for, and the prompt token count: the upstream's, or the sidecar's estimate when it reports none
    (a server without `usage` is not free)."""
    count = len(texts)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ProviderMalformedError("embeddings answer without a data list")
    items = data["data"]
    if not all(isinstance(i, dict) for i in items):
        raise ProviderMalformedError("embeddings data holds something other than objects")
    indexes = [i.get("index", n) for n, i in enumerate(items)]
    # integers only: null, a string or an object beside them made the sort raise TypeError (INTERNAL,
    # and the route's next deployment never tried)
    if not all(type(n) is int for n in indexes) or sorted(indexes) != list(range(len(items))):
        raise ProviderMalformedError("embedding indexes are not the integers 0..n-1")
    ordered = [item.get("embedding") for _, item in sorted(zip(indexes, items, strict=True))]
    vectors = checked_vectors(ordered, count, dimensions)
    usage = data.get("usage") or {}
    reported = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    prompt = sum(count_tokens(t) for t in texts) if reported is None else token_count(reported)
    return Embeddings(vectors, len(vectors[0]), is_normalized(vectors), Usage(prompt_tokens=prompt))


class OpenAIEmbedder:
    name: ClassVar[str] = "openai"

    def __init__(
        self, deployment: DeploymentConfig, *, http: HttpClient, api_key: SecretStr | None,
        dimensions: int | None = None,
    ) -> None:  # fmt: skip
        self._deployment, self._http, self._dimensions = deployment, http, dimensions
        self._url = f"{deployment.url()}/embeddings"
        self._headers = {"authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(url={self._url!r})"

    async def embed(self, texts: Sequence[str], *, deadline: Deadline) -> Embeddings:
        """BATCH texts a request at most, CONCURRENCY requests at a time."""
        calls = [functools.partial(self._batch, b, deadline) for b in batches(texts, BATCH)]
        parts = await each(calls, CONCURRENCY)
        vectors = checked_vectors([v for part in parts for v in part.vectors], len(texts), self._dimensions)
        usage = Usage(prompt_tokens=sum(part.usage.prompt_tokens for part in parts))
        return Embeddings(vectors, len(vectors[0]), is_normalized(vectors), usage)

    async def _batch(self, texts: Sequence[str], deadline: Deadline) -> Embeddings:
        body = to_wire(texts, self._deployment.model, self._dimensions)
        timeouts = Timeouts(self._deployment.read_timeout_seconds, deadline)
        data = await self._http.post_json(self._url, headers=self._headers, body=body, timeouts=timeouts)
        return parse_response(data, texts, self._dimensions)

    async def aclose(self) -> None:
        """The shared HTTP client is closed by its owner."""
