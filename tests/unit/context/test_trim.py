"""The trimming rules: system prompts stay, tool pairs stay whole, at most N recent, always fits."""

from __future__ import annotations

import random

import pytest

from sidecar.context.tokenizer import ESTIMATE_COUNTER, TokenCounter
from sidecar.context.trim import Budget, fit, units
from sidecar.core.errors import ContextTooLongError
from sidecar.core.types import Message, Role

S, U, A, T = Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL
WORDS = TokenCounter("words", lambda text: len(text.split()), per_message=1, per_name=0, priming=0)


def msgs(*spec: tuple[Role, str]) -> tuple[Message, ...]:
    return tuple(Message(role, text) for role, text in spec)


def budget(limit: int, counter: TokenCounter = WORDS, name: str = "d") -> Budget:
    return Budget(name, counter, window=limit + 10, max_tokens=10)


def test_units_keep_an_assistant_with_its_tool_results() -> None:
    m = msgs((U, "q"), (A, "call"), (T, "r1"), (T, "r2"), (U, "next"), (T, "orphan"), (A, "done"))
    assert [[x.text for x in u] for u in units(m)] == [
        ["q"],
        ["call", "r1", "r2"],
        ["next"],
        ["orphan"],
        ["done"],
    ]


def test_nothing_to_do_when_short() -> None:
    m = msgs((S, "sys"), (U, "hi"), (A, "hello"), (U, "bye"))
    result = fit(m, [budget(1000)], max_recent=10)
    assert not result.trimmed and (*result.pinned, *result.kept) == m


def test_keeps_at_most_n_recent_messages_after_the_system_ones() -> None:
    m = msgs((S, "sys one"), (S, "persona"), *[(U if i % 2 == 0 else A, f"m{i}") for i in range(15)])
    result = fit(m, [budget(10_000)], max_recent=10)
    assert [x.text for x in result.pinned] == ["sys one", "persona"]
    assert [x.text for x in result.kept] == [f"m{i}" for i in range(5, 15)]
    assert len(result.dropped) == 5


def test_drops_the_oldest_until_it_fits_the_window() -> None:
    m = msgs((S, "s"), (U, "one two three"), (A, "four five six"), (U, "seven eight"))
    # s=2, each message = words + 1: 4, 4, 3
    result = fit(m, [budget(2 + 4 + 3)], max_recent=10)
    assert [x.text for x in result.kept] == ["four five six", "seven eight"]
    assert [x.text for x in result.dropped] == ["one two three"]


def test_a_tool_call_is_kept_or_dropped_with_its_results() -> None:
    m = msgs((U, "q"), (A, "call"), (T, "r1"), (T, "r2"), (U, "last"))
    # N=3 would split the unit (call, r1, r2) from "last": the whole unit goes
    result = fit(m, [budget(1000)], max_recent=3)
    assert [x.text for x in result.kept] == ["last"]
    result = fit(m, [budget(1000)], max_recent=4)
    assert [x.text for x in result.kept] == ["call", "r1", "r2", "last"]


def test_the_newest_unit_stays_even_beyond_n() -> None:
    m = msgs((U, "q"), (A, "call"), (T, "r1"), (T, "r2"))
    result = fit(m, [budget(1000)], max_recent=1)
    assert [x.text for x in result.kept] == ["call", "r1", "r2"]


def test_too_long_even_alone_is_context_too_long() -> None:
    m = msgs((S, "a b c d e f g h"), (U, "one two three"))
    with pytest.raises(ContextTooLongError) as info:
        fit(m, [budget(5), budget(8, name="e")], max_recent=10)
    assert info.value.metadata == {"promptTokens": "13", "maxContextTokens": "18"}


def test_a_budget_too_small_for_the_newest_message_is_left_out() -> None:
    m = msgs((U, "one two three four"), (A, "x"), (U, "five six seven eight nine"))
    result = fit(m, [budget(3, name="tiny"), budget(9, name="big")], max_recent=10)
    assert [b.deployment for b in result.budgets] == ["big"]
    assert [x.text for x in result.kept] == ["x", "five six seven eight nine"]


def test_every_tokenizer_of_the_route_must_fit() -> None:
    chars = TokenCounter("chars", len, per_message=0, per_name=0, priming=0)
    m = msgs((U, "aaaaaaaaaa"), (A, "b"), (U, "cc"))
    result = fit(m, [budget(100, WORDS, "w"), budget(5, chars, "c")], max_recent=10)
    assert [x.text for x in result.kept] == ["b", "cc"]


def test_reserve_leaves_room() -> None:
    m = msgs((U, "a b"), (A, "c d"), (U, "e f"))
    assert len(fit(m, [budget(9)], max_recent=10).kept) == 3
    assert len(fit(m, [budget(9)], max_recent=10, reserve=3).kept) == 2


@pytest.mark.parametrize("seed", range(200))
def test_random_conversations_keep_every_rule(seed: int) -> None:
    rng = random.Random(seed)
    roles = [S] * rng.randint(0, 2)
    while len(roles) < rng.randint(3, 40):
        roles += [U] if rng.random() < 0.4 else [A] + [T] * (rng.randint(1, 3) if rng.random() < 0.3 else 0)
    m = tuple(Message(r, " ".join("w" * rng.randint(1, 5) for _ in range(rng.randint(1, 30)))) for r in roles)
    budgets = [budget(rng.randint(20, 400), ESTIMATE_COUNTER, "a"), budget(rng.randint(20, 400), WORDS, "b")]
    n = rng.randint(1, 12)
    try:
        result = fit(m, budgets, max_recent=n)
    except ContextTooLongError:
        pinned = [x for x in m[: len(roles)] if x.role is S]
        assert all(b.counter.count_prompt([*pinned, *units(m[len(pinned) :])[-1]]) > b.limit for b in budgets)
        return
    assert (*result.pinned, *result.dropped, *result.kept) == m  # pinned + a dropped prefix + a kept suffix
    rest = m[len(result.pinned) :]
    assert len(result.pinned) == len(roles) - len(rest) and all(x.role is S for x in result.pinned)
    groups = units(rest)
    boundaries = {sum(len(u) for u in groups[:i]) for i in range(len(groups) + 1)}
    assert len(result.dropped) in boundaries  # never inside an assistant + tool results unit
    newest = groups[-1] if groups else ()
    assert result.kept[-len(newest) :] == newest if newest else result.kept == ()
    assert len(result.kept) <= n or result.kept == newest
    for b in result.budgets:
        assert b.counter.count_prompt([*result.pinned, *result.kept]) <= b.limit


def test_a_templates_default_system_message_counts_when_nothing_is_pinned() -> None:
    templated = TokenCounter("t", lambda text: len(text.split()), 1, 0, 0, default_system=5)
    m = msgs((U, "a b"), (A, "c d"), (U, "e f"))  # 3 each, 9 in all, and the template's 5
    result = fit(m, [budget(13, templated)], max_recent=10)
    assert [x.text for x in result.kept] == ["c d", "e f"]
    assert templated.count_prompt(result.kept) == 11
    pinned = msgs((S, "s"), *((r, t) for r, t in ((U, "a b"), (A, "c d"), (U, "e f"))))
    assert not fit(pinned, [budget(13, templated)], max_recent=10).trimmed  # 2 + 9: no default system
