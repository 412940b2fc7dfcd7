"""Ordering a route's candidate deployments for one call: pure, no I/O, randomness injected.

`order()` drops the candidates whose context window cannot hold the call, then ranks the rest by one
strategy, best first. The caller walks the list for fallback.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, assert_never, get_args

from sidecar.core.tokens import count_tokens
from sidecar.core.types import Message, Role, Target, Usage

StrategyName = Literal["priority", "weighted", "latency", "cost", "least_busy", "complexity"]
STRATEGY_NAMES: Final[tuple[StrategyName, ...]] = get_args(StrategyName)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One deployment of a route, with what the strategies may know about it right now."""

    target: Target
    position: int  # index in the route's configured list
    weight: float  # >= 0, for "weighted"
    priority: int  # lower first, for "priority"
    tags: frozenset[str]
    context_window: int  # tokens
    in_flight: int  # calls running now
    ewma_ttft: float | None  # seconds, None = no data yet
    ewma_total: float | None  # seconds, None = no data yet
    default_max_tokens: int = 0  # the answer's length when a call sets none (as context fitting counts it)
    answer_tokens: int = 0  # the max_tokens its request carries (providers/base max_tokens_sent); 0: unknown


@dataclass(frozen=True, slots=True)
class CallShape:
    """What the strategy may know about the call."""

    prompt_tokens: int  # estimated with core.tokens.count_prompt_tokens
    max_tokens: int  # requested; 0 = none (each candidate's default_max_tokens then)
    complexity: float  # 0..1 from complexity_score()
    budget_usd: float | None  # remaining USD the caller may spend, None = unlimited


@dataclass(frozen=True, slots=True)
class ComplexityPolicy:
    """Score below `simple_below` prefers `cheap_tag` deployments; above `complex_above` the others."""

    simple_below: float = 0.35
    complex_above: float = 0.7
    cheap_tag: str = "cheap"

    def __post_init__(self) -> None:
        if not 0.0 <= self.simple_below <= self.complex_above <= 1.0:
            raise ValueError("need 0 <= simple_below <= complex_above <= 1")


@dataclass(frozen=True, slots=True)
class LatencyPolicy:
    """How `latency` treats a deployment with no time yet (new, or never answered): behind every
    deployment with one, except on `explore_ratio` of the calls, where one such goes first (so it
    gets its first answers and a time; one that fails every call costs that share, and a fallback)."""

    explore_ratio: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.explore_ratio <= 1.0:
            raise ValueError("explore_ratio must be in [0, 1]")


# --- complexity score --------------------------------------------------------------------------------

W_LENGTH, W_CONVERSATION, W_STRUCTURE, W_QUESTIONS = 0.35, 0.10, 0.30, 0.25
LENGTH_SATURATION = 1000  # tokens in the last user message that score length 1.0
CONVERSATION_SATURATION = 8000  # tokens in the whole conversation that score 1.0
QUESTION_SATURATION = 3  # questions that score 1.0
S_CODE, S_LIST, S_TABLE, S_JSON = 0.5, 0.3, 0.2, 0.2

# The caller's text: no pattern may be tried from every position of a long run (the score is
# computed on the event loop). `[^\S\n]` is whitespace within a line: `^\s*` ran across blank lines
# from each of them, so 20,000 newlines took 60 s of CPU.
_LIST_ITEM = re.compile(r"^[^\S\n]*(?:[-*+•]|\d{1,3}[.)])\s+\S", re.MULTILINE)
_TABLE_ROW = re.compile(r"^[^\S\n]*\|.*\|[^\S\n]*$", re.MULTILINE)
_JSON_KEY = re.compile(r"[{\[,]\s*\"[^\"\n]{1,64}\"\s*:")
_QUESTION_WORD = re.compile(
    r"\b(?:what|why|how|when|where|which|who|whose|whom|can|could|would|should|is|are|does|did)\b",
    re.IGNORECASE,
)
_SENTENCE_END = frozenset(".!?:;")


def complexity_score(messages: Sequence[Message]) -> float:
    """A deterministic score in [0, 1]: how demanding the call looks, from its text alone.

    With `u` the text of the last USER message ("" if none) and `count_tokens` from core.tokens:

        score = 0.35 * length + 0.10 * conversation + 0.30 * structure + 0.25 * questions

        length       = min(1, ln(1 + tokens(u)) / ln(1 + 1000))
        conversation = min(1, ln(1 + sum of tokens(m.text) over all messages) / ln(1 + 8000))
        structure    = min(1, 0.5 * code + 0.3 * list + 0.2 * table + 0.2 * json), each 0 or 1 in u:
                       code  = u contains a ``` fence
                       list  = >= 2 lines starting with "-", "*", "+", "•", "1." or "1)"
                       table = >= 2 lines of the form "| ... |"
                       json  = an object key such as {"key": or , "key":
        questions    = min(1, max(count of "?", sentence starts with a question word) / 3)
                       (question words: what why how when where which who whose whom can could
                        would should is are does did, at the text start, after . ! ? : ; or a newline)

    So "hi" scores about 0.04, and a long multi-part question with code and a numbered list above 0.7.
    """
    user = next((m.text for m in reversed(messages) if m.role is Role.USER), "")
    conversation_tokens = sum(count_tokens(m.text) for m in messages)
    score = (
        W_LENGTH * _log_scaled(count_tokens(user), LENGTH_SATURATION)
        + W_CONVERSATION * _log_scaled(conversation_tokens, CONVERSATION_SATURATION)
        + W_STRUCTURE * _structure(user)
        + W_QUESTIONS * _questions(user)
    )
    return min(1.0, max(0.0, score))


def _log_scaled(tokens: int, saturation: int) -> float:
    return min(1.0, math.log1p(tokens) / math.log1p(saturation))


def _structure(text: str) -> float:
    code = "```" in text
    bullets = len(_LIST_ITEM.findall(text)) >= 2
    table = len(_TABLE_ROW.findall(text)) >= 2
    json = _JSON_KEY.search(text) is not None
    return min(1.0, S_CODE * code + S_LIST * bullets + S_TABLE * table + S_JSON * json)


def _questions(text: str) -> float:
    asked = max(
        text.count("?"), sum(_starts_a_sentence(text, m.start()) for m in _QUESTION_WORD.finditer(text))
    )
    return min(1.0, asked / QUESTION_SATURATION)


def _starts_a_sentence(text: str, at: int) -> bool:
    """A question word at the text's start, after . ! ? : ; and whitespace, or after a line break
    and any whitespace. Linear over all the words: each looks back over the whitespace run before
    it alone, and a run precedes one word at most."""
    start = at
    while start > 0 and text[start - 1].isspace():
        start -= 1
    if start == at:
        return at == 0
    return "\n" in text[start:at] or (start > 0 and text[start - 1] in _SENTENCE_END)


# --- ordering ----------------------------------------------------------------------------------------


def estimate_cost(c: Candidate, shape: CallShape) -> float:
    """USD if the call uses all of max_tokens (the deployment's default when the call sets none):
    prompt at the input price, max_tokens at the output price."""
    answer = shape.max_tokens or c.default_max_tokens
    return c.target.price.cost(Usage(prompt_tokens=shape.prompt_tokens, completion_tokens=answer))


def order(
    strategy: StrategyName,
    candidates: Sequence[Candidate],
    shape: CallShape,
    rng: random.Random,
    complexity: ComplexityPolicy = ComplexityPolicy(),
    latency: LatencyPolicy = LatencyPolicy(),
) -> list[Candidate]:
    """All candidates that fit the call, best first by `strategy`; [] if none can hold the prompt."""
    if strategy not in STRATEGY_NAMES:
        raise ValueError(f"unknown routing strategy {strategy!r}")
    pool = sorted(_fitting(candidates, shape), key=lambda c: c.position)
    match strategy:
        case "priority":
            return _by_priority(pool)
        case "weighted":
            return _weighted(pool, rng)
        case "latency":
            return _by_latency(pool, rng, latency.explore_ratio)
        case "cost":
            return _cheapest(pool, shape)
        case "least_busy":
            return sorted(pool, key=lambda c: (c.in_flight, c.position))
        case "complexity":
            return _by_complexity(pool, shape.complexity, complexity)
        case _:
            assert_never(strategy)


def _fitting(candidates: Sequence[Candidate], shape: CallShape) -> list[Candidate]:
    """Those that hold prompt + the max_tokens each is sent (the call's, else its default_max_tokens;
    on Anthropic with thinking, its budget too), as context fitting counts it; if none do, those that
    hold the prompt (the provider decides)."""
    fit = [
        c
        for c in candidates
        if c.context_window
        >= shape.prompt_tokens + (c.answer_tokens or shape.max_tokens or c.default_max_tokens)
    ]
    return fit or [c for c in candidates if c.context_window >= shape.prompt_tokens]


def _by_priority(pool: Sequence[Candidate]) -> list[Candidate]:
    return sorted(pool, key=lambda c: (c.priority, c.position))


def _weighted(pool: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
    """Weighted random order without replacement; zero weights last, in position order."""
    remaining = [c for c in pool if c.weight > 0]
    ranked: list[Candidate] = []
    while remaining:
        ranked.append(remaining.pop(_pick_weighted(remaining, rng)))
    return ranked + [c for c in pool if c.weight <= 0]


def _pick_weighted(pool: Sequence[Candidate], rng: random.Random) -> int:
    point = rng.random() * sum(c.weight for c in pool)
    for i, c in enumerate(pool):
        point -= c.weight
        if point < 0:
            return i
    return len(pool) - 1  # float rounding left the point on the upper edge


def _latency(c: Candidate) -> float | None:
    """EWMA time to first token, else total time; None for a deployment that never answered."""
    return c.ewma_ttft if c.ewma_ttft is not None else c.ewma_total


def _by_latency(pool: Sequence[Candidate], rng: random.Random, explore_ratio: float) -> list[Candidate]:
    """The deployments with a time first, by power of two choices; those with none (new, or never
    answered) after them, except on `explore_ratio` of the calls with both kinds, where a random one
    of them goes first (so it gets a time; one failing every call costs that share of calls)."""
    timed = [c for c in pool if _latency(c) is not None]
    untimed = [c for c in pool if _latency(c) is None]
    explored: list[Candidate] = []
    if timed and untimed and rng.random() < explore_ratio:
        explored.append(untimed.pop(rng.randrange(len(untimed))))
    return explored + _two_choices(timed, rng) + _two_choices(untimed, rng)


def _two_choices(pool: Sequence[Candidate], rng: random.Random) -> list[Candidate]:
    """Power of two choices: of two random candidates the faster goes next; the other stays in the
    draw. Equal times (or none) go by configured order."""
    remaining = list(pool)
    ranked: list[Candidate] = []
    while len(remaining) > 1:
        i, j = rng.sample(range(len(remaining)), 2)
        a, b = remaining[i], remaining[j]
        best = i if (_latency(a) or 0.0, a.position) <= (_latency(b) or 0.0, b.position) else j
        ranked.append(remaining.pop(best))
    return ranked + remaining


def _cheapest(pool: Sequence[Candidate], shape: CallShape) -> list[Candidate]:
    """Cheapest estimate first; over the remaining budget goes last, not dropped (quota decides)."""

    def key(c: Candidate) -> tuple[bool, float, int]:
        cost = estimate_cost(c, shape)
        return (shape.budget_usd is not None and cost > shape.budget_usd, cost, c.position)

    return sorted(pool, key=key)


def _by_complexity(pool: Sequence[Candidate], score: float, policy: ComplexityPolicy) -> list[Candidate]:
    """Simple calls try cheap-tagged first, complex ones the rest first; priority order within each group."""
    ranked = _by_priority(pool)
    if score < policy.simple_below:
        return sorted(ranked, key=lambda c: policy.cheap_tag not in c.tags)  # stable: False (cheap) first
    if score > policy.complex_above:
        return sorted(ranked, key=lambda c: policy.cheap_tag in c.tags)
    return ranked
