"""Admission control: how many calls a sidecar serves at once and how many may wait for a slot."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class AdmissionPolicy(_Model):
    """`capacity` calls run at once; up to `queue_size` more wait in priority order (then arrival),
    each at most until its deadline (and `max_wait_seconds`, when set). A full queue sheds the lowest
    priority with UNAVAILABLE/OVERLOADED and a RetryInfo of `retry_after_seconds`."""

    capacity: int = Field(ge=1, le=1_000_000)
    queue_size: int = Field(default=0, ge=0, le=1_000_000, description="0: no waiting, shed at once")
    max_wait_seconds: float | None = Field(default=None, gt=0, le=3600)
    retry_after_seconds: float = Field(default=1.0, gt=0, le=3600)
