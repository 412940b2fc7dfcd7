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


def struct_value(value: struct_pb2.Struct) -> dict[str, object] | None:
    """A Struct as plain JSON values, integral numbers as ints; None when it holds a number JSON
    cannot write (NaN, Infinity)."""
    try:
        out: dict[str, object] = integral(json_format.MessageToDict(value))
    except ValueError:
        return None
    return out


def tools(req: gen.GenerationInput, bad: Bad) -> tuple[ToolSpec, ...]:
    if len(req.tools) > MAX_TOOLS:
        bad("tools", f"at most {MAX_TOOLS} tools")
        return ()
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for i, tool in enumerate(req.tools):
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
            schema = struct_value(tool.parameters)
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


def response_format(req: gen.GenerationInput, bad: Bad) -> ResponseFormat | None:
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
    problem = NOT_JSON if schema is None else schema_problem(schema)
    if problem is not None:
        bad(f"{where}.schema", problem)
    return ResponseFormat(
        kind="json_schema", name=spec.name, schema_json=canonical(schema or {}), strict=spec.strict
    )
