"""The routing part of the Policy: strategies, retries, breakers, probes, retry budgets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sidecar.config.cache import RouteCacheOptions
from sidecar.config.model import ConfigModel

StrategyName = Literal["priority", "weighted", "latency", "cost", "least_busy", "complexity"]


class RetryConfig(ConfigModel):
    """Attempts per deployment before the route falls back to the next one."""

    max_attempts: int = Field(default=2, ge=1, le=10)
    base_delay_seconds: float = Field(default=0.1, ge=0, le=60)
    max_delay_seconds: float = Field(default=2.0, ge=0, le=600)

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.max_delay_seconds < self.base_delay_seconds:
            raise ValueError("max_delay_seconds must be at least base_delay_seconds")
        return self


class HedgingConfig(ConfigModel):
    """Start the next deployment too when the first is slower than its observed p95 to first token."""

    enabled: bool = False
    min_delay_seconds: float = Field(default=0.05, ge=0, le=600, description="never hedge sooner")
    default_delay_seconds: float = Field(default=2.0, gt=0, le=600, description="until a p95 is known")


class SchemaRetryConfig(ConfigModel):
    """An answer that fails its JSON Schema (or JSON object) check is retried once on another
    deployment of the route, before anything reached the caller (docs/structured-output.md)."""

    enabled: bool = False
    hold_streams: bool = Field(
        default=False,
        description="streams: hold a schema-checked stream's deltas until its answer validated, so it "
        "can be retried too (the first delta then arrives with the whole answer); off: streams pass "
        "deltas through and are never retried",
    )


class RouteConfig(ConfigModel):
    deployments: list[str] = Field(min_length=1, description="candidates, in configured order")
    strategy: StrategyName = "priority"
    retry: RetryConfig = RetryConfig()
    first_token_timeout_seconds: float | None = Field(
        default=None, gt=0, le=3600, description="no first chunk by then: fall back (streams and unary)"
    )
    hedging: HedgingConfig = HedgingConfig()
    user_key: Literal["never", "preferred", "required"] = Field(
        default="never", description="use the caller's own provider key: never, if there is one, or always"
    )
    cache: RouteCacheOptions = RouteCacheOptions()
    schema_retry: SchemaRetryConfig = SchemaRetryConfig()
    budget_fallback: str | None = Field(
        default=None, description="a cheaper deployment for callers whose USD budget can't cover the route"
    )


class BreakerConfig(ConfigModel):
    window_seconds: float = Field(default=30.0, gt=0, le=3600)
    min_requests: int = Field(default=10, ge=1)
    failure_ratio: float = Field(default=0.5, gt=0, le=1)
    cooldown_seconds: float = Field(default=30.0, gt=0, le=3600)
    half_open_trials: int = Field(default=3, ge=1, le=100)


class ProbeConfig(ConfigModel):
    enabled: bool = True
    interval_seconds: float = Field(default=15.0, gt=0, le=3600)
    jitter_ratio: float = Field(default=0.2, ge=0, lt=1)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    unhealthy_after: int = Field(default=2, ge=1, le=100)
    healthy_after: int = Field(default=3, ge=1, le=100)


class RetryBudgetConfig(ConfigModel):
    ratio: float = Field(default=0.2, ge=0, le=10)
    min_retries_per_second: float = Field(default=1.0, ge=0)
    window_seconds: float = Field(default=10.0, gt=0, le=3600)


class ComplexityConfig(ConfigModel):
    simple_below: float = Field(default=0.35, ge=0, le=1)
    complex_above: float = Field(default=0.7, ge=0, le=1)
    cheap_tag: str = Field(default="cheap", min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> ComplexityConfig:
        if self.simple_below > self.complex_above:
            raise ValueError("simple_below must not exceed complex_above")
        return self


class LatencyConfig(ConfigModel):
    explore_ratio: float = Field(
        default=0.05, ge=0, le=1, description="share of calls a never-timed deployment goes first on"
    )


class RoutingPolicy(ConfigModel):
    breaker: BreakerConfig = BreakerConfig()
    probes: ProbeConfig = ProbeConfig()
    retry_budget: RetryBudgetConfig = RetryBudgetConfig()
    complexity: ComplexityConfig = ComplexityConfig()
    latency: LatencyConfig = LatencyConfig()
