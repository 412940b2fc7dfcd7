"""The base of every configuration model: immutable once loaded, unknown keys refused (a typo is an
error, not a silently ignored setting), and no NaN or infinity where a number is expected."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)
