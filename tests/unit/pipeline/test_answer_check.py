"""The answer check shared by the structured-output layer and the route's schema_retry."""

from __future__ import annotations

import json

from sidecar.core.types import Chunk, FinishReason, ResponseFormat, Usage
from sidecar.structured.check import AnswerCheck

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def answer(*texts: str, finish: FinishReason = FinishReason.STOP) -> list[Chunk]:
    return [*(Chunk(text=t) for t in texts), Chunk(finish_reason=finish, usage=Usage(3, 2))]


def check() -> AnswerCheck:
    fmt = ResponseFormat(kind="json_schema", name="n", schema_json=json.dumps(SCHEMA))
    result = AnswerCheck.of(fmt)
    assert result is not None
    return result


def test_text_and_no_format_need_no_check() -> None:
    assert AnswerCheck.of(None) is None
    assert AnswerCheck.of(ResponseFormat(kind="text")) is None
    assert AnswerCheck.of(ResponseFormat(kind="json_object")) == AnswerCheck(None)


def test_only_a_complete_invalid_answer_is_retried() -> None:
    c = check()
    assert c.retry_problem(answer('{"n": ', "1}")) is None
    assert c.retry_problem(answer('{"n": "one"}')) == "at n: 'one' is not of type 'integer'"
    assert c.retry_problem(answer("not json")) == "the answer is not JSON"
    assert c.retry_problem(answer("[" * 100_000)) == "the answer is JSON nested too deeply to check"
    # cut at max_tokens, filtered, or a tool call: another deployment would not do better
    for finish in (FinishReason.LENGTH, FinishReason.CONTENT_FILTER, FinishReason.TOOL_CALLS):
        assert c.retry_problem(answer('{"n": ', finish=finish)) is None
    assert c.retry_problem([]) is None


def test_the_problem_of_a_cut_answer_says_so() -> None:
    problem = check().problem('{"n": ', FinishReason.LENGTH)
    assert problem is not None and problem.startswith("the answer stopped at max_tokens")
    assert check().problem("anything", FinishReason.TOOL_CALLS) is None
    assert check().problem("I can't help with that.", FinishReason.CONTENT_FILTER) is None  # a refusal
    err = check().error("at n: bad")
    assert (err.reason, err.metadata) == ("SCHEMA_VALIDATION_FAILED", {"violation": "at n: bad"})


def test_nan_and_infinity_are_not_json() -> None:
    """Python's json module reads them; no caller's JSON parser does."""
    c = check()
    for constant in ("NaN", "Infinity", "-Infinity"):
        assert c.problem('{"n": 1, "x": ' + constant + "}", FinishReason.STOP) == "the answer is not JSON"
        assert AnswerCheck(None).problem("[" + constant + "]", FinishReason.STOP) == "the answer is not JSON"


def test_a_backtracking_pattern_is_stopped_not_run_to_its_end() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a|aa)+$"}}}
    c = AnswerCheck(schema)
    problem = c.problem('{"code": "' + "a" * 60 + '!"}', FinishReason.STOP)
    assert problem is not None and "took too long to check" in problem
    assert c.problem('{"code": "aaaa"}', FinishReason.STOP) is None  # the same pattern still checks


def test_unique_items_compares_as_json_schema_does() -> None:
    c = AnswerCheck({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}})
    for same in ("[1, 1.0]", '[{"x": 1, "y": [2]}, {"y": [2.0], "x": 1}]', "[[1], [1.0]]", '["s", "s"]'):
        problem = c.problem('{"a": ' + same + "}", FinishReason.STOP)
        assert problem is not None and "non-unique" in problem, same
    for distinct in ("[1, true]", "[0, false]", '[1, "1"]', "[[1], [1, 1]]", "[null, false]", "[{}, []]"):
        assert c.problem('{"a": ' + distinct + "}", FinishReason.STOP) is None, distinct
