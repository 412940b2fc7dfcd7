"""The response cache part of Settings, and the per-route cache options."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sidecar.config.redis import REDIS_URL, RedisConnectionConfig, check_redis

CacheScope = Literal["user", "tenant"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class CacheSettings(_Model):
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
    max_entry_bytes: int = Field(default=256 * 1024, ge=256, description="larger answers are not stored")
    timeout_seconds: float = Field(default=0.25, gt=0, le=60, description="a slower lookup is a miss")

    @model_validator(mode="after")
    def _redis_needs_url(self) -> CacheSettings:
        if self.backend == "redis" and self.redis_url is None:
            raise ValueError("backend: redis needs redis_url")
        check_redis(self.redis_url, self.redis)
        return self


class RouteCacheOptions(_Model):
    """A route's cache options; unset ones take settings.cache's."""

    enabled: bool = True
    scope: CacheScope | None = None
    ttl_seconds: float | None = Field(default=None, gt=0, le=30 * 86_400)
    even_when_sampling: bool = Field(
        default=False, description="cache calls with temperature > 0 (or unset) on this route too"
    )
