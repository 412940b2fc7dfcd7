"""Experiments: a route's traffic split between named variants, and the gates a report judges by.

A variant may narrow the route to some of its deployments, put a persona's or its own system prompt
in front of the caller's messages, and set generation parameters. `status` and `promoted` change
without a restart (`sidecar experiments promote|stop`, or SIGHUP after editing the file): a stopped
experiment sends everyone to its `control`; a promoted variant gets every call."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sidecar.config.model import MAX_OUTPUT_TOKENS, ConfigModel

NAME = r"^[a-z][a-z0-9_-]{0,31}$"


class VariantParams(ConfigModel):
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_OUTPUT_TOKENS)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)


class VariantConfig(ConfigModel):
    weight: float = Field(default=1.0, ge=0, le=1_000_000)
    deployments: list[str] = Field(default_factory=list, description="empty: every deployment of the route")
    persona: str | None = Field(default=None, description="a persona id whose system prompt leads")
    system_prompt: str | None = Field(default=None, max_length=20_000)
    params: VariantParams = VariantParams()


class Gates(ConfigModel):
    """What a variant must show to be recommended over the control."""

    min_feedback_mean: float | None = Field(default=None, description="e.g. accuracy > 0.85")
    max_error_rate: float = Field(default=0.05, ge=0, le=1)
    max_cost_increase: float = Field(default=0.20, ge=0, description="relative to the control: 0.2 = +20 %")
    metric: Literal["feedback", "latency"] = Field(default="feedback", description="what the tests compare")


class ExperimentConfig(ConfigModel):
    route: str
    control: str
    variants: dict[str, VariantConfig] = Field(min_length=2)
    status: Literal["running", "stopped"] = "running"
    promoted: str | None = None
    min_samples: int = Field(default=100, ge=2, le=10_000_000, description="per variant, before any verdict")
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    gates: Gates = Gates()

    @model_validator(mode="after")
    def _names(self) -> ExperimentConfig:
        for name in (self.control, self.promoted):
            if name is not None and name not in self.variants:
                raise ValueError(f"variant {name!r} is not one of {', '.join(self.variants)}")
        if sum(v.weight for v in self.variants.values()) <= 0:
            raise ValueError("variants: at least one weight must be above 0")
        return self

    def problems(self, name: str, routes: dict[str, list[str]], personas: set[str]) -> list[str]:
        """References to the rest of the policy: the route, its deployments, personas."""
        where = f"experiments.{name}"
        if self.route not in routes:
            return [f"{where}.route: unknown route {self.route!r}"]
        out = [
            f"{where}.variants.{v}.deployments: {d!r} is not a deployment of route {self.route!r}"
            for v, cfg in self.variants.items()
            for d in cfg.deployments
            if d not in routes[self.route]
        ]
        return out + [
            f"{where}.variants.{v}.persona: unknown persona {cfg.persona!r}"
            for v, cfg in self.variants.items()
            if cfg.persona is not None and cfg.persona not in personas
        ]
