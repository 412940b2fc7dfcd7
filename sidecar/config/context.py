"""The context part of the Policy: token counting (local tiktoken files), trimming, summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from sidecar.config.model import ConfigModel

TokenizerName = Literal["auto", "cl100k_base", "o200k_base", "estimate"]


class ChatTemplateConfig(ConfigModel):
    """How a served model's chat template frames a prompt, in that model's tokens: for a local
    model (llama.cpp, vLLM, Ollama) whose server applies a template the OpenAI framing does not
    describe. Measure once against the server (scripts/record_template_usage.py, docs/context.md):
    ChatML templates add `<|im_start|>role\\n` and `<|im_end|>\\n` around each message (5 tokens when
    the role is one token), `role_tokens` more for a role its tokenizer splits (SmolLM2: "assistant"
    is 2 tokens, so `{assistant: 1}`), and `<|im_start|>assistant\\n` to prime the reply (SmolLM2: 4);
    some add a default system message, framing included, when the prompt has none (SmolLM2: 21)."""

    per_message: int = Field(default=5, ge=0, le=1000, description="framing tokens a message, role included")
    priming: int = Field(default=3, ge=0, le=1000, description="tokens that open the reply")
    default_system_tokens: int = Field(
        default=0, ge=0, le=100_000, description="the system message the template adds when there is none"
    )
    role_tokens: dict[Literal["system", "user", "assistant", "tool"], int] = Field(
        default_factory=dict, description="framing tokens a message of this role takes beyond per_message"
    )
    tokenizer_gguf: Path | None = Field(
        default=None,
        description="the served model's GGUF file: count text with the model's own tokenizer "
        "(byte-level BPE, sidecar/context/gguf.py); unset: the deployment's `tokenizer`",
    )


DEFAULT_SUMMARY_PROMPT = (
    "Summarize the earlier part of this conversation in a few sentences. Keep names, facts, "
    "decisions and open questions; leave out pleasantries."
)


class SummaryConfig(ConfigModel):
    """A rolling summary per conversation, written through a (cheap) route: the prompt keeps the
    pinned system messages, the summary and every message it does not cover yet; the summary is
    refreshed (previous summary + the uncovered messages older than the newest
    `keep_recent_messages`) once those reach `refresh_tokens`. See docs/context.md."""

    route: str = Field(min_length=1, description="the route alias that writes summaries")
    max_tokens: int = Field(default=128, ge=1, le=8192, description="the longest summary")
    prompt: str = Field(default=DEFAULT_SUMMARY_PROMPT, min_length=1, max_length=4000)
    keep_recent_messages: int = Field(
        default=1, ge=1, le=10_000, description="the newest messages a refresh never folds in"
    )
    refresh_tokens: int = Field(
        default=192, ge=1, description="refresh once the foldable uncovered messages reach this many tokens"
    )
    max_input_chars: int = Field(
        default=32_000, ge=100, description="the dropped messages sent to summarize, newest kept"
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=600, description="then go on without one")


class ContextPolicy(ConfigModel):
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
