"""A schema's `$ref`s must resolve within the schema itself (nothing is fetched): checked at the edge.

A reference to nothing (`#/$defs/missing`, another document's URL) passed `check_schema`; the call
then ran, upstream tokens and all, and the answer check raised, ending the call INTERNAL with an
ERROR traceback per request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.structured.schema import answer_problem, schema_problem


def refers(ref: str, **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"a": {"type": "string", "$ref": ref}}, **extra}


@pytest.mark.parametrize(
    "schema",
    [
        refers("#/$defs/missing"),
        refers("#/$defs/missing", **{"$defs": {"other": {"type": "string"}}}),
        refers("https://example.com/schema.json"),
        refers("urn:example:nothing"),
        refers("#nowhere"),  # an anchor nothing declares
        {"type": "object", "$defs": {"x": {"$ref": "#/$defs/y"}}},  # unused, still dangling
    ],
    ids=["pointer", "pointer beside others", "remote", "urn", "anchor", "in $defs"],
)
def test_a_reference_to_nothing_is_a_problem_of_the_schema(schema: dict[str, Any]) -> None:
    problem = schema_problem(schema)
    assert problem is not None and "$ref" in problem


@pytest.mark.parametrize(
    "schema",
    [
        refers("#/$defs/s", **{"$defs": {"s": {"type": "string"}}}),
        refers("#named", **{"$defs": {"s": {"$anchor": "named", "type": "string"}}}),
        refers("#"),
        {  # relative to a nested $id, as the spec resolves it
            "type": "object",
            "$id": "https://example.com/root.json",
            "properties": {"a": {"$ref": "item.json"}},
            "$defs": {"item": {"$id": "item.json", "type": "string"}},
        },
        {"type": "object", "properties": {"$ref": {"type": "string"}}},  # a property named $ref
        {"type": "object", "properties": {"a": {"enum": [{"$ref": "not a reference"}]}}},  # data
    ],
    ids=["pointer", "anchor", "root", "nested $id", "property named $ref", "enum value"],
)
def test_references_that_resolve_are_fine(schema: dict[str, Any]) -> None:
    assert schema_problem(schema) is None


def test_the_answer_check_never_raises_on_a_reference() -> None:
    # the edge refuses such a schema; were one to reach the check, the answer fails, not the call
    problem = answer_problem(json.dumps({"a": "x"}), refers("#/$defs/missing"))
    assert problem is not None and "$ref" in problem


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"$id": "urn:a", "$ref": "#"}}},  # itself, by its own id
        {"type": "object", "allOf": [{"$ref": "#"}]},  # the root, in place
        {
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/x"}},
            "$defs": {"x": {"anyOf": [{"$ref": "#/$defs/y"}]}, "y": {"not": {"$ref": "#/$defs/x"}}},
        },
    ],
    ids=["own id", "allOf root", "through $defs"],
)
def test_a_reference_cycle_that_consumes_nothing_is_a_problem_of_the_schema(schema: dict[str, Any]) -> None:
    # validation would follow it until Python's recursion limit: an INTERNAL after the call ran
    problem = schema_problem(schema)
    assert problem is not None and "itself" in problem


def test_a_recursive_schema_that_descends_into_the_answer_is_fine() -> None:
    tree = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#"}}, "name": {"type": "string"}},
    }
    assert schema_problem(tree) is None
    answer = {"name": "a", "children": [{"name": "b", "children": []}]}
    assert answer_problem(json.dumps(answer), tree) is None


def test_an_answer_nested_past_the_validators_stack_fails_the_check_not_the_call() -> None:
    # a recursive schema is fine, but the model's (or a hostile upstream's) answer nested 400 deep
    # took jsonschema past Python's recursion limit: the call ended INTERNAL after it had run
    tree = {"type": "object", "properties": {"c": {"$ref": "#"}}}
    deep: dict[str, Any] = {}
    for _ in range(400):
        deep = {"c": deep}
    assert answer_problem(json.dumps(deep), tree) == "the answer is JSON nested too deeply to check"
