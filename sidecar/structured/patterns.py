"""A schema's regular expressions matched against an answer within a time budget.

jsonschema matches `pattern` and `patternProperties` (and, through them, `propertyNames` and
`additionalProperties`) with Python's `re`, a backtracking engine, on the event loop: `^(a|aa)+$`
against 28 `a`s and a `!` took 18 seconds, during which the sidecar answered nothing, health
checks included, and each character more doubles it. The caller writes the schema and steers the
answer through its prompt; an upstream writes the answer. Here those keywords match with the
`regex` module (the syntax of `re`) under a timeout, one budget for every match of one answer's
check: past it the check gives up (`PatternBudgetExceeded`) and the answer does not pass.

`unevaluatedProperties` re-matches `patternProperties` with `re` inside jsonschema, out of reach
here: `unbounded_combination` finds a schema combining the two, refused at the edge, as is a pattern
`regex` cannot compile though `re` can (400 nested groups: its parser's stack), `uncompilable`.

    validator = bounded_validator(base)(schema)
    with running.check(PatternBudget(0.25)):
        errors = list(validator.iter_errors(value))   # PatternBudgetExceeded past 0.25 s of matching
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sidecar.structured import running

MATCH_BUDGET_SECONDS = 0.25  # all the matching of one answer's check


class UncheckablePattern(Exception):
    """A pattern of the schema could not be matched against the answer; str() says why."""


class PatternBudgetExceeded(UncheckablePattern):
    """The answer's matches against the schema's patterns took longer than their budget."""


class PatternBudget:
    """The time left for one check's matches (monotonic seconds; `clock` injectable)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = clock() + seconds
        self.seconds = seconds

    def search(self, pattern: str, text: str) -> bool:
        left = self._until - self._clock()
        if left <= 0:
            raise PatternBudgetExceeded(
                f"the answer took too long to check against the schema's patterns (over {self.seconds} s)"
            )
        import regex  # type: ignore[import-untyped]  # on first use, as jsonschema (schema.py)

        try:
            return regex.search(pattern, text, timeout=left) is not None
        except TimeoutError:
            raise PatternBudgetExceeded(
                f"the answer took too long to check against the schema's patterns (over {self.seconds} s)"
            ) from None
        except (regex.error, RecursionError, OverflowError) as exc:  # refused at the edge already
            raise UncheckablePattern(f"a pattern of the schema could not be run ({exc})") from None


def _search(pattern: str, text: str) -> bool:
    budget = running.budget(PatternBudget)
    if budget is None:  # a validator used outside a budget: a budget of its own
        budget = PatternBudget(MATCH_BUDGET_SECONDS)
    return budget.search(pattern, text)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = "|".join(schema.get("patternProperties", {}))
    return [k for k in instance if k not in properties and not (patterns and _search(patterns, k))]


def _additional_properties(
    validator: Any, allowed: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif not allowed and extras:
        if "patternProperties" in schema:
            names = ", ".join(repr(e) for e in sorted(extras))
            patterns = ", ".join(repr(p) for p in sorted(schema["patternProperties"]))
            yield ValidationError(
                f"{names} {'does' if len(extras) == 1 else 'do'} not match any of the regexes: {patterns}"
            )
        else:
            listed = ", ".join(repr(e) for e in sorted(extras))
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(f"Additional properties are not allowed ({listed} {verb} unexpected)")


@functools.cache
def bounded_validator(base: type[Any]) -> type[Any]:
    """`base` (a jsonschema validator class) with its regular expressions matched under the budget."""
    from jsonschema import validators

    keywords = {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    }
    return validators.extend(base, keywords)  # type: ignore[no-untyped-call,no-any-return]


def unbounded_combination(schema: Any) -> bool:
    """Whether `schema` has both `patternProperties` and `unevaluatedProperties` (anywhere)."""
    found: set[str] = set()
    pending = [schema]
    while pending and len(found) < 2:
        node = pending.pop()
        if isinstance(node, Mapping):
            if isinstance(node.get("patternProperties"), Mapping):
                found.add("patternProperties")
            if "unevaluatedProperties" in node:
                found.add("unevaluatedProperties")
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return len(found) == 2


def uncompilable(schema: Any) -> str | None:
    """The first pattern of `schema` (a `pattern` value, a `patternProperties` key) the `regex`
    module cannot compile, with why; None when it compiles them all."""
    import regex

    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, Mapping):
            patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
            if isinstance(found := node.get("patternProperties"), Mapping):
                patterns += [k for k in found if isinstance(k, str)]
            for pattern in patterns:
                try:
                    regex.compile(pattern)
                except (regex.error, RecursionError, OverflowError) as exc:
                    return f"{pattern[:40]!r}: {type(exc).__name__}"
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return None
