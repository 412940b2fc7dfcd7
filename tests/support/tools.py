"""Builders for tool-calling requests and a client-side agent loop, as an application writes them."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import struct_pb2

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city"],
}


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def weather_tool(name: str = "get_weather") -> gen.Tool:
    return gen.Tool(name=name, description="Current weather in a city", parameters=struct(WEATHER_SCHEMA))


def tool_calls(message: gen.Message) -> list[gen.ToolCall]:
    return [p.tool_call for p in message.content if p.WhichOneof("kind") == "tool_call"]


def run_tools(message: gen.Message) -> list[gen.Message]:
    """The client's side of the loop: run each call (a fake weather lookup), one result message each."""
    out = []
    for call in tool_calls(message):
        city = json.loads(call.arguments or "{}").get("city", "?")
        result = gen.ContentPart(text=json.dumps({"city": city, "sky": "sunny", "temperature_c": 21}))
        out.append(gen.Message(role=gen.ROLE_TOOL, tool_call_id=call.id, content=[result]))
    return out


def assemble(events: list[gen.StreamGenerateResponse]) -> tuple[str, dict[int, dict[str, str]]]:
    """What a streaming client assembles from the deltas: the text and each call by index."""
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    for e in events:
        if e.WhichOneof("event") != "delta":
            continue
        kind = e.delta.WhichOneof("kind")
        if kind == "text":
            text.append(e.delta.text)
        elif kind == "tool_call":
            d = e.delta.tool_call
            call = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or d.id
            call["name"] = call["name"] or d.name
            call["arguments"] += d.arguments
    return "".join(text), calls
