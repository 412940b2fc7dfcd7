"""The quota part of the Policy: limits on requests, tokens, USD and in-flight calls; stores; signals.

A limit counts one metric (requests, tokens = input plus output, usd, or concurrency = calls in
flight) for one scope (each tenant, or each user of a tenant) over one window (minute, day, month;
day and month are calendar-aligned in `timezone`). A call is subject to: its tier's requests per
minute (per user), the tier's `limits`, the global `quota.limits`, and `quota.tenants[<tenant>]`
overrides (a limit of the same name replaces the inherited one; `enabled: false` removes it).
"""

from __future__ import annotations

import base64
import binascii
import zoneinfo
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sidecar.config.model import ConfigModel
from sidecar.config.redis import REDIS_URL, RedisConnectionConfig, check_redis
from sidecar.config.secrets import SecretRef

LIMIT_NAME = r"^[a-z][a-z0-9_-]{0,63}$"
DEFAULT_REQUESTS_PER_MINUTE = {"free": 5, "basic": 10, "professional": 100, "enterprise": 500}
TIER_RPM_LIMIT = "tier-requests-per-minute"
MAX_USD = 1e9  # counted in micro-dollars: 1e15, well inside a double's exact integers (2^53)
MAX_COUNT = 1e15

Metric = Literal["requests", "tokens", "usd", "concurrency"]
Window = Literal["minute", "day", "month"]
Scope = Literal["tenant", "user"]
StoreFailure = Literal["fail_open", "fail_closed"]


class LimitConfig(ConfigModel):
    """One limit. `concurrency` limits have no window (they count calls in flight)."""

    name: str = Field(pattern=LIMIT_NAME)
    metric: Metric
    scope: Scope = "user"
    window: Window | None = None
    limit: float = Field(ge=0, description="requests, tokens, US dollars or calls in flight")
    shadow: bool = Field(default=False, description="evaluated and reported, never refuses")
    on_store_error: StoreFailure | None = Field(default=None, description="default: quota.on_store_error")
    enabled: bool = Field(default=True, description="false removes an inherited limit of this name")

    @model_validator(mode="after")
    def _window_fits_metric(self) -> LimitConfig:
        if self.metric == "concurrency" and self.window is not None:
            raise ValueError(f"limit {self.name}: a concurrency limit has no window")
        if self.metric != "concurrency" and self.window is None:
            raise ValueError(f"limit {self.name}: set window (minute, day or month)")
        if self.metric != "usd" and self.limit != int(self.limit):
            raise ValueError(f"limit {self.name}: a {self.metric} limit is a whole number")
        largest = MAX_USD if self.metric == "usd" else MAX_COUNT  # exact integers in Redis Lua too
        if self.limit > largest:
            raise ValueError(f"limit {self.name}: at most {largest:g} {self.metric}")
        return self


def _unique(limits: list[LimitConfig], where: str) -> list[LimitConfig]:
    names = [limit.name for limit in limits]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"{where}: limit names must be unique; repeated: {', '.join(dupes)}")
    return limits


class TierConfig(ConfigModel):
    """A service level: its requests per minute per user, further limits, and the routes it may use."""

    description: str = ""
    requests_per_minute: int | None = Field(
        default=None,
        ge=0,
        le=10**12,
        description="per user; default free 5, basic 10, professional 100, enterprise 500",
    )
    limits: list[LimitConfig] = Field(default_factory=list)
    allowed_routes: list[str] | None = Field(default=None, description="None: every route")
    max_priority: Literal["LOW", "NORMAL", "HIGH", "URGENT", "CRITICAL"] | None = Field(
        default=None, description="the highest request priority its callers get; None: any"
    )

    @field_validator("limits")
    @classmethod
    def _unique_limits(cls, limits: list[LimitConfig]) -> list[LimitConfig]:
        return _unique(limits, "limits")


class TenantQuota(ConfigModel):
    """Per-tenant overrides: limits replacing (same name) or adding to the inherited ones."""

    limits: list[LimitConfig] = Field(default_factory=list)

    @field_validator("limits")
    @classmethod
    def _unique_limits(cls, limits: list[LimitConfig]) -> list[LimitConfig]:
        return _unique(limits, "limits")


class WebhookConfig(ConfigModel):
    """Near-limit events are POSTed here as JSON, off the request path, retried with backoff; with a
    `secret`, signed as the Standard Webhooks specification says (webhook-id, webhook-timestamp,
    webhook-signature)."""

    url: str = Field(pattern=r"^https?://\S+$")
    secret: SecretRef | None = Field(
        default=None, description="signing secret: whsec_ and base64 of 24 to 64 random bytes"
    )
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    max_attempts: int = Field(default=5, ge=1, le=100)
    backoff_seconds: float = Field(default=0.5, ge=0, le=600)
    max_backoff_seconds: float = Field(default=30.0, ge=0, le=3600)
    queue_size: int = Field(default=1000, ge=1, le=1_000_000)


WEBHOOK_SECRET_PREFIX = "whsec_"


def webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: "whsec_" (optional) and the base64 of 24 to 64
    bytes. A ValueError says what is wrong with it, never what it is."""
    encoded = secret.removeprefix(WEBHOOK_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64 (whsec_ followed by the base64 of the key)") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"{len(key)} bytes once decoded; a signing key has 24 to 64 random bytes")
    return key


class QuotaPolicy(ConfigModel):
    enabled: bool = True
    store: Literal["memory", "redis"] = "memory"
    redis_url: str | None = Field(default=None, pattern=REDIS_URL)
    redis: RedisConnectionConfig = RedisConnectionConfig()
    key_prefix: str = Field(default="orch:quota", pattern=r"^[A-Za-z0-9:_.-]{1,64}$")
    timezone: str = "UTC"
    on_store_error: StoreFailure = "fail_open"
    output_tokens_estimate: int = Field(
        default=1024, ge=1, le=10_000_000, description="output reserved up front: min(max_tokens, this)"
    )
    extension_tokens: int = Field(
        default=256, ge=1, le=10_000_000, description="reserved again when a stream outgrows"
    )
    reservation_ttl_seconds: float = Field(
        default=900.0, gt=0, le=86_400, description="a reservation not settled by then is dropped"
    )
    store_timeout_seconds: float = Field(default=0.5, gt=0, le=60)
    near_limit_levels: list[int] = Field(default_factory=lambda: [80, 90, 100])
    webhook: WebhookConfig | None = None
    limits: list[LimitConfig] = Field(default_factory=list)
    tenants: dict[str, TenantQuota] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as Europe/Berlin)") from None
        return zone

    @field_validator("near_limit_levels")
    @classmethod
    def _levels(cls, levels: list[int]) -> list[int]:
        if any(not 0 < level <= 100 for level in levels) or levels != sorted(set(levels)):
            raise ValueError("near_limit_levels: ascending distinct percentages in 1..100")
        return levels

    @field_validator("limits")
    @classmethod
    def _unique_limits(cls, limits: list[LimitConfig]) -> list[LimitConfig]:
        return _unique(limits, "limits")

    @model_validator(mode="after")
    def _redis_needs_url(self) -> QuotaPolicy:
        if self.store == "redis" and self.redis_url is None:
            raise ValueError("store: redis needs redis_url")
        check_redis(self.redis_url, self.redis)
        return self


def limit_shape_problems(quota: QuotaPolicy, tiers: Mapping[str, TierConfig]) -> list[str]:
    """Limit names that count two different ways among the global limits and the tiers' limits.

    A limit's counter is keyed by its name, scope and owner, so two limits of one name and scope that
    differ in metric or window would add tokens to requests, or a minute's counts to a day's, whenever one
    caller meets both (a tenant-scope limit of two tiers, a user whose tier comes from metadata). A
    tenant override may reshape a limit: the tenant's every call then counts it the override's way.
    """
    shapes: dict[tuple[str, str], tuple[str, tuple[str, str | None, str]]] = {}
    places = [("quota.limits", quota.limits)]
    places += [(f"tiers.{name}.limits", tier.limits) for name, tier in tiers.items()]
    implied = ("requests", "minute", "user")
    if any(requests_per_minute(name, tier) is not None for name, tier in tiers.items()):
        shapes[(TIER_RPM_LIMIT, "user")] = ("the tiers' requests_per_minute", implied)
    problems = []
    for where, limits in places:
        for lim in limits:
            if not lim.enabled:
                continue
            shape = (lim.metric, lim.window, lim.scope)
            first, seen = shapes.setdefault((lim.name, lim.scope), (where, shape))
            if seen != shape:
                problems.append(
                    f"{where}: limit {lim.name} counts {_shape(shape)} but {_shape(seen)} in {first}; "
                    "one name is one counter, so give limits that count differently different names"
                )
    return problems


def _shape(shape: tuple[str, str | None, str]) -> str:
    metric, window, scope = shape
    return f"{metric} in flight per {scope}" if window is None else f"{metric} per {window} per {scope}"


def requests_per_minute(tier_name: str, tier: TierConfig) -> int | None:
    """The tier's per-user requests per minute: configured, else the default of its name, else none."""
    if tier.requests_per_minute is not None:
        return tier.requests_per_minute
    return DEFAULT_REQUESTS_PER_MINUTE.get(tier_name)
