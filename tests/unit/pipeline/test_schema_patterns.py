"""A response_format schema's regular expressions against the answer: bounded in time.

jsonschema matches `pattern` and `patternProperties` with Python's backtracking `re` on the event
loop: `^(a|aa)+$` against 28 `a`s and a `!` stalled a whole sidecar (health checks included) for 18
seconds, and each character more doubles it. The caller writes the schema and, through the prompt,
steers the answer; a hostile upstream writes the answer. No test here sleeps: an unbounded match
would run for days, a bounded one gives up within its budget."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from sidecar.structured.schema import answer_problem, schema_problem

EVIL = "^(a|aa)+$"  # exponential backtracking on a string of a's that does not match
HOSTILE = "a" * 60 + "!"


def timed(schema: dict[str, Any], answer: Any) -> tuple[str | None, float]:
    started = time.monotonic()
    problem = answer_problem(json.dumps(answer), schema)
    return problem, time.monotonic() - started


@pytest.mark.parametrize(
    ("schema", "answer"),
    [
        ({"type": "object", "properties": {"a": {"type": "string", "pattern": EVIL}}}, {"a": HOSTILE}),
        ({"type": "object", "propertyNames": {"pattern": EVIL}}, {HOSTILE: 1}),
        ({"type": "object", "patternProperties": {EVIL: {"type": "integer"}}}, {HOSTILE: 1}),
        ({"type": "object", "patternProperties": {EVIL: {}}, "additionalProperties": False}, {HOSTILE: 1}),
        (
            {"type": "object", "properties": {"a": {"type": "array", "items": {"pattern": EVIL}}}},
            {"a": [HOSTILE] * 50},
        ),
    ],
    ids=["pattern", "propertyNames", "patternProperties", "additionalProperties", "many strings"],
)
def test_a_backtracking_pattern_gives_up_within_its_budget(schema: dict[str, Any], answer: Any) -> None:
    problem, took = timed(schema, answer)
    assert problem is not None and "took too long" in problem
    assert took < 3.0  # the budget is a fraction of a second; unbounded, this runs for days


def test_patterns_still_decide_as_before() -> None:
    schema = {
        "type": "object",
        "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
        "patternProperties": {"^x-": {"type": "integer"}},
        "additionalProperties": False,
    }
    assert answer_problem(json.dumps({"code": "ABC", "x-n": 1}), schema) is None
    assert answer_problem(json.dumps({"code": "abc"}), schema) == "at code: 'abc' does not match '^[A-Z]{3}$'"
    assert answer_problem(json.dumps({"x-n": "one"}), schema) == "at x-n: 'one' is not of type 'integer'"
    assert answer_problem(json.dumps({"y": 1}), schema) is not None  # neither a property nor a pattern's
    assert answer_problem(json.dumps({"code": 7}), schema) is not None  # `pattern` only checks strings


def test_unevaluated_properties_beside_pattern_properties_are_refused_at_the_edge() -> None:
    # jsonschema evaluates patternProperties for unevaluatedProperties with `re`, out of reach here
    schema = {"type": "object", "patternProperties": {"^x-": {}}, "unevaluatedProperties": False}
    assert schema_problem(schema) is not None
    nested = {"type": "object", "properties": {"o": schema}}
    assert schema_problem(nested) is not None
    assert schema_problem({"type": "object", "unevaluatedProperties": False}) is None
    assert schema_problem({"type": "object", "patternProperties": {"^x-": {}}}) is None


@pytest.mark.parametrize(
    "pattern",
    ["a{4294967295}", "(" * 3000 + ")" * 3000],
    ids=["repeat count past the engine's", "groups nested past the parser's stack"],
)
def test_a_pattern_the_engine_cannot_compile_is_a_problem_of_the_schema(pattern: str) -> None:
    # `re` raises OverflowError / RecursionError for these, not re.error: they escaped the check
    # and the call ended INTERNAL, with an ERROR line and its traceback per request
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": pattern}}}
    problem = schema_problem(schema)
    assert problem is not None and problem.startswith("not a valid JSON Schema")
    keyed = {"type": "object", "patternProperties": {pattern: {}}}
    assert schema_problem(keyed) is not None


def test_a_pattern_the_bounded_engine_cannot_compile_is_refused_at_the_edge() -> None:
    # 400 nested groups: `re` compiles them, the `regex` module the answer is checked with does not
    # (its parser's stack): at the answer, after the call was charged, that would be an INTERNAL
    nested = "(" * 400 + ")" * 400
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": nested}}}
    problem = schema_problem(schema)
    assert problem is not None and "pattern" in problem
    assert schema_problem({"type": "object", "patternProperties": {nested: {}}}) is not None
    fine = "(" * 50 + "a" + ")" * 50
    assert (
        schema_problem({"type": "object", "properties": {"a": {"type": "string", "pattern": fine}}}) is None
    )
