"""Admission control: how many calls a sidecar serves at once and how many may wait for a slot."""

from __future__ import annotations

from pydantic import Field, model_validator

from sidecar.config.model import ConfigModel


class AdmissionPolicy(ConfigModel):
    """`capacity` calls run at once; up to `queue_size` more wait in priority order (then the tenants
    in turn, then arrival), each at most until its deadline (and `max_wait_seconds`, when set). A full
    queue sheds the lowest priority (then the tenant holding the most of it) with
    UNAVAILABLE/OVERLOADED and a RetryInfo of `retry_after_seconds`.

    `deployments` caps single deployments the same way (each with its own queue of `queue_size`):
    the route skips a full deployment for the next one and waits by priority only when every
    deployment it could use was full or failed."""

    capacity: int | None = Field(default=None, ge=1, le=1_000_000, description="None: no sidecar-wide cap")
    deployments: dict[str, int] = Field(
        default_factory=dict, description="deployment name -> calls it serves at once (1 to 1000000)"
    )
    queue_size: int = Field(default=0, ge=0, le=1_000_000, description="0: no waiting, shed at once")
    max_wait_seconds: float | None = Field(default=None, gt=0, le=3600)
    retry_after_seconds: float = Field(default=1.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _bounds(self) -> AdmissionPolicy:
        bad = [name for name, n in self.deployments.items() if not 1 <= n <= 1_000_000]
        if bad:
            raise ValueError(f"deployments: a capacity is 1 to 1000000 (not for {', '.join(sorted(bad))})")
        if self.capacity is None and not self.deployments:
            raise ValueError("set capacity, deployments, or both")
        return self

    def problems(self, deployments: set[str]) -> list[str]:
        """Deployments named here that the policy lacks."""
        return [
            f"admission.deployments: unknown deployment {name!r}"
            for name in self.deployments
            if name not in deployments
        ]
