"""Hostile upstream answers for the provider parsers: valid answers with a few values replaced by
values of the wrong type, huge or negative numbers, NaN, lone surrogates, deep nesting, or removed;
and the invariants every parsed answer must hold, whatever the upstream sent."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st

from sidecar.core.types import Chunk, ToolCallDelta, Usage
from sidecar.providers.base import MAX_TOKEN_COUNT

Path = tuple[str | int, ...]

_SURROGATES = st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([-1, 0, 2**31, 2**32, 2**32 + 1, 2**63, 2**64, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    _SURROGATES,
    st.sampled_from(["", "STOP", "OTHER", "MAX_TOKENS", "tool_use", "SAFETY", "x" * 70, "c1", "t1"]),
)
HOSTILE = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["text", "a", "id", "name"]), inner, max_size=3),
    ),
    max_leaves=6,
)


def deep(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


def paths(doc: Any, here: Path = ()) -> Iterator[Path]:
    """Every place in a JSON document down to 12 levels, the document itself first."""
    yield here
    if len(here) >= 12:
        return
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from paths(value, (*here, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from paths(value, (*here, i))


def _parent(doc: Any, path: Path) -> Any:
    for step in path[:-1]:
        doc = doc[step]
    return doc


@st.composite
def mutated(draw: st.DrawFn, valid: Any, max_changes: int = 3) -> Any:
    """`valid` with 1..max_changes values replaced, removed, or (in lists) repeated."""
    doc = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, max_changes))):
        places = [p for p in paths(doc) if p]
        if not places:
            return draw(HOSTILE)
        path = draw(st.sampled_from(places))
        parent, key = _parent(doc, path), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "remove", "repeat", "deep"]))
        if action == "remove":
            del parent[key]
        elif action == "repeat" and isinstance(parent, list):
            parent.insert(int(key), parent[int(key)])  # the same value twice (never too deep to copy)
        elif action == "deep":
            parent[key] = deep(draw(st.sampled_from([10, 300, 5000])))
        else:
            parent[key] = draw(HOSTILE)
    return doc


def wire_text(doc: Any) -> str:
    """As an upstream would write it: NaN and Infinity as bare words, lone surrogates as escapes;
    nested past Python's encoder, a body no parser takes."""
    try:
        return json.dumps(doc)
    except RecursionError:
        return "[" * 100_000


def check_usage(usage: Usage | None) -> None:
    if usage is None:
        return
    counts = (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.reasoning_tokens)
    assert all(isinstance(c, int) and 0 <= c <= 4 * MAX_TOKEN_COUNT for c in counts), usage
    assert usage.reasoning_tokens <= usage.completion_tokens, usage
    assert usage.cached_tokens <= usage.prompt_tokens, usage


def check_utf8(*texts: str) -> None:
    for text in texts:
        text.encode("utf-8")  # a lone surrogate cannot go into a protobuf string: INTERNAL


def check_chunk(chunk: Chunk) -> None:
    """What goes back to the application must serialize, and each call must be sendable back."""
    check_usage(chunk.usage)
    check_utf8(chunk.text, chunk.thinking)
    for block in chunk.thinking_blocks:
        check_utf8(block.text, block.signature, block.redacted)
    check_calls(chunk.tool_calls, whole=True)


def check_calls(calls: tuple[ToolCallDelta, ...] | list[ToolCallDelta], *, whole: bool) -> None:
    """Whole calls: an id and a name each, ids unique, arguments a JSON object (or none)."""
    ids = [c.id for c in calls]
    assert len(set(ids)) == len(ids), f"duplicate tool-call ids {ids}"
    for call in calls:
        check_utf8(call.id, call.name, call.arguments)
        if whole:
            assert call.id and call.name, call
            assert call.arguments == "" or isinstance(json.loads(call.arguments), dict), call


def assembled(deltas: list[ToolCallDelta]) -> list[ToolCallDelta]:
    """Streamed call pieces (by index) -> whole calls, as the pipeline joins them."""
    calls: dict[int, ToolCallDelta] = {}
    for d in deltas:
        seen = calls.get(d.index)
        if seen is None:
            calls[d.index] = d
        else:
            calls[d.index] = ToolCallDelta(
                d.index, seen.id or d.id, seen.name or d.name, seen.arguments + d.arguments
            )
    return list(calls.values())


# For tests that cannot draw from hypothesis (a real server on the test's own loop): the same kinds
# of change, chosen by a seeded random.Random.
HOSTILE_VALUES: tuple[Any, ...] = (
    None, True, -1, 2**32 + 1, 2**64, -(2**63), 1.5, float("nan"), float("inf"), "", "\ud800", "x" * 70,
    "OTHER", [], {}, [{"text": 1}], {"a": {"b": []}}, deep(300),
)  # fmt: skip


def mutate(valid: Any, rng: random.Random, changes: int = 2) -> Any:
    """`valid` with `changes` values replaced, removed or (in lists) repeated."""
    doc = copy.deepcopy(valid)
    for _ in range(changes):
        places = [p for p in paths(doc) if p]
        if not places:
            return rng.choice(HOSTILE_VALUES)
        path = rng.choice(places)
        parent, key = _parent(doc, path), path[-1]
        action = rng.choice(["replace", "replace", "remove", "repeat"])
        if action == "remove":
            del parent[key]
        elif action == "repeat" and isinstance(parent, list):
            parent.insert(int(key), parent[int(key)])
        else:
            parent[key] = rng.choice(HOSTILE_VALUES)
    return doc
