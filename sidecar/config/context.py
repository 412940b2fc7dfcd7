"""The context part of the Policy: token counting (local tiktoken files), trimming, summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TokenizerName = Literal["auto", "cl100k_base", "o200k_base", "estimate"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


DEFAULT_SUMMARY_PROMPT = (
    "Summarize the earlier part of this conversation in a few sentences. Keep names, facts, "
    "decisions and open questions; leave out pleasantries."
)


class SummaryConfig(_Model):
    """Replace the messages trimming dropped with one summary, made through a (cheap) route."""

    route: str = Field(min_length=1, description="the route alias that writes summaries")
    max_tokens: int = Field(default=256, ge=1, le=8192, description="the longest summary")
    prompt: str = Field(default=DEFAULT_SUMMARY_PROMPT, min_length=1, max_length=4000)
    max_input_chars: int = Field(
        default=32_000, ge=100, description="the dropped messages sent to summarize, newest kept"
    )
    cache_ttl_seconds: float = Field(default=3600.0, gt=0, le=30 * 86_400)
    timeout_seconds: float = Field(default=10.0, gt=0, le=600, description="then go on without one")


class ContextPolicy(_Model):
    """Fit each call into the smallest context window of its route's deployments, minus max_tokens."""

    enabled: bool = True
    encodings_dir: Path | None = Field(
        default=None,
        description="directory with cl100k_base.tiktoken and o200k_base.tiktoken (`make encodings`); "
        "unset or missing: the documented estimate (sidecar/core/tokens.py) counts every provider",
    )
    max_recent_messages: int = Field(
        default=10, ge=1, le=10_000, description="keep at most this many messages after the system ones"
    )
    summary: SummaryConfig | None = None
