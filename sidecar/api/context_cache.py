"""The edge of the context and cache features: the request's cache_mode in, the summary fields out."""

from __future__ import annotations

from collections.abc import Callable

from sidecar._gen.orchestrator.v1 import cache_pb2
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.core.outcome import Outcome

_MODES: dict[int, bool] = {cache_pb2.CACHE_MODE_UNSPECIFIED: False, cache_pb2.CACHE_MODE_BYPASS: True}


def cache_bypass(mode: int, bad: Callable[[str, str], None]) -> bool:
    """Whether the call skips the response cache; an unknown mode is a violation of `cache_mode`."""
    if mode not in _MODES:
        bad("cache_mode", "CACHE_MODE_UNSPECIFIED or CACHE_MODE_BYPASS")
        return False
    return _MODES[mode]


def add_summary_fields(summary: gen.GenerationSummary, record: Outcome) -> None:
    summary.cache_hit = record.cache_hit
    if record.cache_hit:
        similarity = record.semantic_similarity
        semantic = similarity is not None
        summary.cache_hit_kind = (
            cache_pb2.CACHE_HIT_KIND_SEMANTIC if semantic else cache_pb2.CACHE_HIT_KIND_EXACT
        )
        summary.cache_similarity = similarity or 0.0
        age = record.cache_age_seconds
        if age is not None:
            summary.cache_entry_age.FromNanoseconds(round(age * 1e9))
    summary.context_tokens_removed = record.context_tokens_removed
    summary.context_messages_removed = record.context_messages_removed
    summary.context_summarized = record.context_summarized
