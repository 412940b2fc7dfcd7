"""The response cache part of Settings, and the per-route cache options."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sidecar.config.model import ConfigModel
from sidecar.config.redis import REDIS_URL, RedisConnectionConfig, check_redis

CacheScope = Literal["user", "tenant"]


class CacheSettings(ConfigModel):
    """Where cached answers live, and the response cache's defaults.

    The response cache is off unless `enabled` (conversation summaries live with the conversation,
    in the personas.sessions store). A call is cached only when its temperature is 0 (explicitly:
    unset means the provider's default, which samples), unless its route says
    `cache.even_when_sampling`.
    """

    enabled: bool = False
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = Field(default=None, pattern=REDIS_URL)
    redis: RedisConnectionConfig = RedisConnectionConfig()
    namespace: str = Field(default="sidecar", pattern=r"^[A-Za-z0-9_.\-]{1,64}$")
    ttl_seconds: float = Field(default=3600.0, gt=0, le=30 * 86_400)
    scope: CacheScope = Field(default="user", description="share answers between a tenant's users, or not")
    max_entries: int = Field(default=10_000, ge=1, description="memory backend: the oldest go first")
    max_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="memory backend: the answers' bytes together"
    )
    max_entry_bytes: int = Field(default=256 * 1024, ge=256, description="larger answers are not stored")
    timeout_seconds: float = Field(default=0.25, gt=0, le=60, description="a slower lookup is a miss")
    semantic: SemanticStoreSettings = Field(default_factory=lambda: SemanticStoreSettings())

    @model_validator(mode="after")
    def _redis_needs_url(self) -> CacheSettings:
        if self.backend == "redis" and self.redis_url is None:
            raise ValueError("backend: redis needs redis_url")
        check_redis(self.redis_url, self.redis)
        return self


class SemanticStoreSettings(ConfigModel):
    """Where the semantic cache keeps its vectors: in this process, or Redis shared by sidecars.

    Redis keeps each partition (tenant, scope, persona, route, parameters, earlier messages) under a
    key of its own, bounded by the route's `max_entries`, searched by brute force in the sidecar.
    """

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = Field(default=None, pattern=REDIS_URL)
    redis: RedisConnectionConfig = RedisConnectionConfig()
    max_entries: int = Field(default=50_000, ge=1, description="memory backend, all partitions together")
    max_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="memory backend, all partitions together: answers, and vectors counted twice",
    )
    near_miss_margin: float = Field(default=0.05, ge=0, le=1, description="counted as near-miss below")
    timeout_seconds: float = Field(default=0.5, gt=0, le=60, description="a slower store is a miss")
    embed_timeout_seconds: float = Field(
        default=2.0, gt=0, le=60, description="a slower prompt embedding is a miss (the call goes on)"
    )

    @model_validator(mode="after")
    def _redis_needs_url(self) -> SemanticStoreSettings:
        if self.backend == "redis" and self.redis_url is None:
            raise ValueError("semantic backend: redis needs redis_url")
        check_redis(self.redis_url, self.redis)
        return self


class SemanticCacheOptions(ConfigModel):
    """A route's semantic cache: answer a paraphrase of a question answered before.

    Opt-in. The last user message is embedded; the earlier messages must match exactly (a digest of
    them is part of the partition), as must tenant, scope, persona, route and parameters.
    """

    enabled: bool = False
    threshold: float = Field(default=0.9, gt=0, le=1, description="cosine similarity at least this")
    embedding_route: str | None = Field(default=None, description="default: embeddings.default_route")
    max_entries: int = Field(
        default=1_000, ge=1, le=10_000, description="per partition; each lookup compares them all"
    )


class RouteCacheOptions(ConfigModel):
    """A route's cache options; unset ones take settings.cache's."""

    enabled: bool = True
    scope: CacheScope | None = None
    ttl_seconds: float | None = Field(default=None, gt=0, le=30 * 86_400)
    even_when_sampling: bool = Field(
        default=False, description="cache calls with temperature > 0 (or unset) on this route too"
    )
    semantic: SemanticCacheOptions | None = None
