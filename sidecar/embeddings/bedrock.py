"""Bedrock embeddings through InvokeModel: Amazon Titan Text Embeddings and Cohere Embed bodies.

Titan takes one text per request, so a batch is that many requests, a few at a time; Cohere takes
up to 96 texts in one. The model id says which body applies (`amazon.titan-embed-*`, `cohere.embed-*`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import SecretStr
from yarl import URL

from sidecar.config.providers import BedrockOptions
from sidecar.config.schema import DeploymentConfig
from sidecar.core.clock import Deadline
from sidecar.core.errors import ProviderMalformedError
from sidecar.core.tokens import count_tokens
from sidecar.core.types import Usage
from sidecar.embeddings.base import Embeddings, batches, checked_vectors, each, is_normalized
from sidecar.providers._http import HttpClient, Timeouts
from sidecar.providers.aws_auth import AwsSigner
from sidecar.providers.base import token_count

TITAN_CONCURRENCY = 4  # requests of one call at a time
COHERE_BATCH = 96  # texts a Cohere Embed request takes at most
COHERE_CHARS = 2048  # characters of one text it takes at most ("expected maxLength: 2048")


def is_cohere(model: str) -> bool:
    return "cohere.embed" in model


def titan_body(text: str, dimensions: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"inputText": text, "normalize": True}
    if dimensions is not None:
        body["dimensions"] = dimensions
    return body


def cohere_body(texts: Sequence[str], input_type: str = "search_document") -> dict[str, Any]:
    """Texts cut to COHERE_CHARS, as `truncate: END` asks (Bedrock refuses a longer one whatever it says)."""
    cut = [t[:COHERE_CHARS] for t in texts]
    return {"texts": cut, "input_type": input_type, "truncate": "END", "embedding_types": ["float"]}


def parse_titan(data: Any) -> tuple[list[Any], int]:
    """One Titan answer: its vector and its input token count."""
    if not isinstance(data, dict) or not isinstance(data.get("embedding"), list):
        raise ProviderMalformedError("Titan answer without an embedding")
    return data["embedding"], token_count(data.get("inputTextTokenCount"))


def parse_cohere(data: Any, count: int) -> tuple[tuple[float, ...], ...]:
    """Cohere's `embeddings_by_type` answer (or the older `embeddings_floats`)."""
    embeddings = data.get("embeddings") if isinstance(data, dict) else None
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    return checked_vectors(embeddings, count)


class BedrockEmbedder:
    name: ClassVar[str] = "bedrock"

    def __init__(
        self, deployment: DeploymentConfig, *, http: HttpClient, api_key: SecretStr | None,
        signer: AwsSigner | None = None, dimensions: int | None = None,
    ) -> None:  # fmt: skip
        options = deployment.bedrock or BedrockOptions()
        self._deployment, self._http, self._key, self._dimensions = deployment, http, api_key, dimensions
        if signer is None and api_key is None:
            signer = AwsSigner(service="bedrock", region=options.region, profile=options.profile)
        self._signer = signer
        self._url = f"{deployment.url()}/model/{quote(deployment.model, safe='')}/invoke"

    def __repr__(self) -> str:
        return f"BedrockEmbedder(url={self._url!r})"

    async def embed(self, texts: Sequence[str], *, deadline: Deadline) -> Embeddings:
        if is_cohere(self._deployment.model):  # COHERE_BATCH texts a request, at most 96
            calls = [
                functools.partial(self._cohere, batch, deadline) for batch in batches(texts, COHERE_BATCH)
            ]
            rows = [row for part in await each(calls, TITAN_CONCURRENCY) for row in part]
            vectors = checked_vectors(rows, len(texts), self._dimensions)  # as long as the deployment says
            embedded = (t[:COHERE_CHARS] for t in texts)  # Cohere's body has no count: the sidecar's
            usage = Usage(prompt_tokens=sum(count_tokens(t) for t in embedded))
            return Embeddings(vectors, len(vectors[0]), is_normalized(vectors), usage)
        titan = [functools.partial(self._titan, text, deadline) for text in texts]  # one text a request
        answers = await each(titan, TITAN_CONCURRENCY)
        vectors = checked_vectors([a[0] for a in answers], len(texts), self._dimensions)
        usage = Usage(prompt_tokens=sum(a[1] for a in answers))
        return Embeddings(vectors, len(vectors[0]), is_normalized(vectors), usage)

    async def _cohere(self, texts: Sequence[str], deadline: Deadline) -> tuple[tuple[float, ...], ...]:
        return parse_cohere(await self._invoke(cohere_body(texts), deadline), len(texts))

    async def _titan(self, text: str, deadline: Deadline) -> tuple[list[Any], int]:
        return parse_titan(await self._invoke(titan_body(text, self._dimensions), deadline))

    async def _invoke(self, body: dict[str, Any], deadline: Deadline) -> Any:
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self._key is not None:
            headers["authorization"] = f"Bearer {self._key.get_secret_value()}"
        else:
            assert self._signer is not None
            headers = await self._signer.sign("POST", self._url, headers, raw, deadline)
        timeouts = Timeouts(self._deployment.read_timeout_seconds, deadline)
        target = URL(self._url, encoded=True)
        return await self._http.post_json(target, headers=headers, body=raw, timeouts=timeouts)

    async def aclose(self) -> None:
        """The shared HTTP client is closed by its owner."""
