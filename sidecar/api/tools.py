"""Tools, tool choice and response format at the edge: proto -> domain, every violation named."""

from __future__ import annotations

import re
from collections.abc import Callable

from google.protobuf import json_format, struct_pb2

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.core.types import ResponseFormat, ToolChoice, ToolSpec
from sidecar.structured.schema import canonical, integral, schema_problem

TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_TOOLS = 128
MAX_DESCRIPTION = 4096
_MODES = {
    gen.TOOL_CHOICE_MODE_UNSPECIFIED: "auto",
    gen.TOOL_CHOICE_MODE_AUTO: "auto",
    gen.TOOL_CHOICE_MODE_NONE: "none",
    gen.TOOL_CHOICE_MODE_REQUIRED: "required",
}
Bad = Callable[[str, str], None]


NOT_JSON = "JSON values only: no NaN or Infinity"
# JSON objects (subschemas) in a request's schemas together, tools and response format: checking one
# against the JSON Schema metaschema costs up to about a millisecond of CPU, so 100,000 of them (a
# request under the decode caps) would cost minutes; 128 tools of a dozen each stay well within.
MAX_SCHEMA_OBJECTS = 4096


class SchemaBudget:
    """What is left of one request's MAX_SCHEMA_OBJECTS; counted before anything is checked."""

    def __init__(self, objects: int = MAX_SCHEMA_OBJECTS) -> None:
        self.left = objects

    def take(self, schemas: list[dict[str, object] | None]) -> bool:
        """Whether these schemas fit in what is left (taken if so)."""
        self.left -= sum(_objects(s) for s in schemas if s is not None)
        return self.left >= 0


def _objects(value: object) -> int:
    """The JSON objects in a value, itself included (iterative: nesting is bounded by the decoder)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += 1
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def carries_schemas(req: gen.GenerationInput) -> bool:
    """Whether a request holds JSON Schemas to check (tool parameters, a response format's schema)."""
    return bool(req.tools) or req.response_format.WhichOneof("format") == "json_schema"


def struct_value(value: struct_pb2.Struct) -> dict[str, object] | None:
    """A Struct as plain JSON values, integral numbers as ints; None when it holds a number JSON
    cannot write (NaN, Infinity)."""
    try:
        out: dict[str, object] = integral(json_format.MessageToDict(value))
    except ValueError:
        return None
    return out


def tools(req: gen.GenerationInput, bad: Bad, budget: SchemaBudget | None = None) -> tuple[ToolSpec, ...]:
    if len(req.tools) > MAX_TOOLS:
        bad("tools", f"at most {MAX_TOOLS} tools")
        return ()
    schemas = [struct_value(t.parameters) if t.HasField("parameters") else None for t in req.tools]
    if not (budget or SchemaBudget()).take(schemas):
        bad("tools", f"the request's JSON Schemas hold at most {MAX_SCHEMA_OBJECTS} objects together")
        return ()
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for i, (tool, schema) in enumerate(zip(req.tools, schemas, strict=True)):
        where = f"tools[{i}]"
        if not TOOL_NAME.fullmatch(tool.name):
            bad(f"{where}.name", "1 to 64 of letters, digits, _ and - (^[a-zA-Z0-9_-]{1,64}$)")
        elif tool.name in seen:
            bad(f"{where}.name", "tool names must be unique")
        seen.add(tool.name)
        if len(tool.description) > MAX_DESCRIPTION:
            bad(f"{where}.description", f"at most {MAX_DESCRIPTION} characters")
        parameters = ""
        if tool.HasField("parameters"):
            problem = NOT_JSON if schema is None else schema_problem(schema, object_root=True)
            if problem is not None:
                bad(f"{where}.parameters", problem)
            parameters = canonical(schema or {})
        specs.append(ToolSpec(tool.name, tool.description, parameters))
    return tuple(specs)


def tool_choice(req: gen.GenerationInput, specs: tuple[ToolSpec, ...], bad: Bad) -> ToolChoice | None:
    if not req.HasField("tool_choice"):
        return None
    if not specs:
        bad("tool_choice", "a tool choice needs tools")
        return None
    kind = req.tool_choice.WhichOneof("choice")
    if kind == "name":
        if req.tool_choice.name not in {s.name for s in specs}:
            bad("tool_choice.name", "the name of one of the request's tools")
        return ToolChoice(mode="named", name=req.tool_choice.name)
    mode = _MODES.get(req.tool_choice.mode)
    if mode is None:
        bad("tool_choice.mode", "TOOL_CHOICE_MODE_AUTO, _NONE or _REQUIRED")
        return None
    return ToolChoice(mode=mode)


def response_format(
    req: gen.GenerationInput, bad: Bad, budget: SchemaBudget | None = None
) -> ResponseFormat | None:
    if not req.HasField("response_format"):
        return None
    kind = req.response_format.WhichOneof("format")
    if kind is None or kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(kind="json_object")
    spec = req.response_format.json_schema
    where = "response_format.json_schema"
    if not TOOL_NAME.fullmatch(spec.name):
        bad(f"{where}.name", "1 to 64 of letters, digits, _ and -")
    if not spec.HasField("schema"):
        bad(f"{where}.schema", "required")
        return None
    schema = struct_value(spec.schema)
    if not (budget or SchemaBudget()).take([schema]):
        bad(
            f"{where}.schema",
            f"the request's JSON Schemas hold at most {MAX_SCHEMA_OBJECTS} objects together",
        )
        return None
    problem = NOT_JSON if schema is None else schema_problem(schema)
    if problem is not None:
        bad(f"{where}.schema", problem)
    return ResponseFormat(
        kind="json_schema", name=spec.name, schema_json=canonical(schema or {}), strict=spec.strict
    )
