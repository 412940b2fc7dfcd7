"""A loopback Gemini API (v1beta generateContent and streamGenerateContent?alt=sse) that checks
every request field by field as Gemini documents it and refuses what Gemini refuses (HTTP 400, a
google.rpc.Status body), then answers from a script: whole answers, or SSE events of one part each
(Gemini sends each functionCall whole in one event), the finish reason and usage on the last.

What it enforces besides the fields' shapes: `contents` alternate user and model, user first;
functionCall parts only in model turns and functionResponse parts only in user turns; the turn
after one with function calls answers each of them (as many functionResponse parts, the names
matching); inline images of the types Gemini reads (no GIF); as Gemini 3 does, each model turn of
the current exchange (after the last user turn with text) that called functions carries on its
first functionCall part a thoughtSignature this server issued (or one of Gemini's documented
stand-ins); and every signature sent is one of those. Thinking counts within maxOutputTokens: a
thinkingBudget at least as large leaves no room for the answer (MAX_TOKENS, no parts). A model
before Gemini 3 (by the model in the path) refuses function declarations with a JSON response type.
A request body over `max_request_bytes` (inline data as base64 included) is refused.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_TOP = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings"}
_CONFIG = {
    "maxOutputTokens", "temperature", "topP", "topK", "stopSequences", "seed", "candidateCount",
    "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig",
}  # fmt: skip
_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse")
_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}")
_MODES = {"AUTO", "ANY", "NONE", "VALIDATED"}
# The image types Gemini reads (its image-understanding guide): no GIF.
IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"}
# The stand-ins Gemini documents for a function call it did not sign: it skips checking them.
STAND_INS = {"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"}


@dataclass
class Turn:
    """One scripted answer: its parts as Gemini writes them, its finish reason and usage."""

    parts: list[dict[str, Any]]
    finish: str = "STOP"
    usage: dict[str, int] = field(
        default_factory=lambda: {"promptTokenCount": 40, "candidatesTokenCount": 12, "totalTokenCount": 52}
    )
    raw: bytes | None = None  # sent as it is instead (a hostile answer)


class GeminiFake:
    def __init__(self) -> None:
        self.script: deque[Turn] = deque()
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.refusals: list[str] = []
        self.issued: set[str] = set()  # the thoughtSignatures this server has sent
        self.max_request_bytes = 100_000_000  # Gemini's since January 2026 (20 MB before)
        self.url = ""

    def push(self, *turns: Turn) -> None:
        for turn in turns:
            self.issued.update(p["thoughtSignature"] for p in turn.parts if "thoughtSignature" in p)
        self.script.extend(turns)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.paths.append(request.path_qs)
        raw = await request.read()
        if len(raw) > self.max_request_bytes:  # inline data (base64) included
            message = f"Request payload size exceeds the limit: {self.max_request_bytes} bytes."
            self.refusals.append(message)
            status = {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
            return web.json_response({"error": status}, status=400)
        body = json.loads(raw)
        self.bodies.append(body)
        problems = request_problems(body, self.issued) + _model_problems(request.path, body)
        if problems:
            self.refusals.append(problems[0])
            status = {"code": 400, "message": problems[0], "status": "INVALID_ARGUMENT"}
            return web.json_response({"error": status}, status=400)
        turn = self.script.popleft()
        if _thinking_fills(body.get("generationConfig") or {}):
            turn = Turn([], "MAX_TOKENS", {**turn.usage, "candidatesTokenCount": 0})
        if turn.raw is not None:
            kind = "text/event-stream" if "stream" in request.path else "application/json"
            return web.Response(body=turn.raw, content_type=kind)
        if ":streamGenerateContent" not in request.path:
            return web.json_response(answer(turn.parts, turn.finish, turn.usage))
        events = [answer([p]) for p in turn.parts[:-1]]
        events.append(answer(turn.parts[-1:], turn.finish, turn.usage))
        data = b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)
        return web.Response(body=data, content_type="text/event-stream")


def _model_problems(path: str, body: Any) -> list[str]:
    """What a model before Gemini 3 refuses: function declarations with a JSON response type."""
    if not re.search(r"/models/gemini-[12][.-]", path) or not isinstance(body, dict):
        return []
    config = body.get("generationConfig")
    json_answer = isinstance(config, dict) and config.get("responseMimeType") == "application/json"
    if body.get("tools") and json_answer:
        return ["Function calling with a response mime type: 'application/json' is unsupported"]
    return []


def _thinking_fills(config: dict[str, Any]) -> bool:
    """Gemini counts thinking within maxOutputTokens: a budget as large as the room leaves the model
    none for its answer, which ends MAX_TOKENS without a part (as a thinking model may think its
    whole budget)."""
    budget = (config.get("thinkingConfig") or {}).get("thinkingBudget", 0)
    room = config.get("maxOutputTokens")
    return isinstance(room, int) and isinstance(budget, int) and 0 < room <= budget


def answer(
    parts: list[dict[str, Any]], finish: str = "", usage: dict[str, int] | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-3-flash-preview"}
    out["usageMetadata"] = usage or {"promptTokenCount": 40, "totalTokenCount": 40}
    out["responseId"] = "fake-response"
    return out


def request_problems(body: Any, issued: set[str]) -> list[str]:
    """What Gemini would refuse in a GenerateContentRequest body, in its words where known."""
    if not isinstance(body, dict):
        return ["Invalid JSON payload received."]
    out = [
        f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.'
        for k in body
        if k not in _TOP
    ]
    declared = _tool_problems(body.get("tools"), body.get("toolConfig"), out)
    out += _config_problems(body.get("generationConfig"))
    system = body.get("systemInstruction")
    if system is not None and not (isinstance(system, dict) and _text_parts(system.get("parts"))):
        out.append("systemInstruction: parts of text expected")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return [*out, "* GenerateContentRequest.contents: contents is not specified"]
    for i, content in enumerate(contents):
        out += _content_problems(i, content, declared)
    if out:
        return out
    return _turn_problems(contents, issued)


def _text_parts(parts: Any) -> bool:
    return (
        isinstance(parts, list)
        and bool(parts)
        and all(isinstance(p, dict) and set(p) == {"text"} and isinstance(p["text"], str) for p in parts)
    )


def _tool_problems(tools: Any, config: Any, out: list[str]) -> set[str]:
    declared: set[str] = set()
    if tools is None:
        if config is not None:
            out.append("toolConfig without tools")
        return declared
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and set(t) == {"functionDeclarations"} for t in tools
    ):
        out.append("tools: a list of {functionDeclarations} expected")
        return declared
    for t in tools:
        for d in t["functionDeclarations"]:
            keys = set(d) - {"name", "description", "parameters", "parametersJsonSchema", "response"}
            if keys or not isinstance(d.get("name"), str) or not _NAME.fullmatch(d["name"]):
                out.append(f"* GenerateContentRequest.tools[0].function_declarations: bad declaration {d!r}")
                continue
            if "parameters" in d and "parametersJsonSchema" in d:
                out.append("parameters and parametersJsonSchema are mutually exclusive")
            if "parametersJsonSchema" in d and not isinstance(d["parametersJsonSchema"], dict):
                out.append("parametersJsonSchema: an object expected")
            if "description" in d and not isinstance(d["description"], str):
                out.append("description: a string expected")
            declared.add(d["name"])
    if config is not None:
        calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
        if not isinstance(calling, dict) or set(config) != {"functionCallingConfig"}:
            out.append("toolConfig: {functionCallingConfig} expected")
        elif calling.get("mode") not in _MODES or set(calling) - {"mode", "allowedFunctionNames"}:
            out.append(f"functionCallingConfig: bad {calling!r}")
        elif "allowedFunctionNames" in calling and (
            calling["mode"] != "ANY" or not set(calling["allowedFunctionNames"]) <= declared
        ):
            out.append("allowedFunctionNames: only with mode ANY, and only declared functions")
    return declared


def _config_problems(config: Any) -> list[str]:
    if config is None:
        return []
    if not isinstance(config, dict):
        return ["generationConfig: an object expected"]
    out = [
        f"Invalid JSON payload received. Unknown name \"{k}\" at 'generation_config'"
        for k in config
        if k not in _CONFIG
    ]
    seed = config.get("seed", 0)
    if not isinstance(seed, int) or not -(2**31) <= seed < 2**31:  # GenerationConfig.seed is an int32
        out.append(f"Invalid value at 'generation_config.seed' (TYPE_INT32), {seed}")
    mime = config.get("responseMimeType")
    if mime is not None and mime not in ("text/plain", "application/json", "text/x.enum"):
        out.append(f"responseMimeType: unsupported {mime!r}")
    if "responseSchema" in config and "responseJsonSchema" in config:
        out.append("responseSchema and responseJsonSchema are mutually exclusive")
    if ("responseJsonSchema" in config or "responseSchema" in config) and mime != "application/json":
        out.append("a response schema needs responseMimeType application/json")
    thinking = config.get("thinkingConfig", {})
    if not isinstance(thinking, dict) or set(thinking) - {
        "thinkingBudget",
        "includeThoughts",
        "thinkingLevel",
    }:
        out.append("thinkingConfig: {thinkingBudget?, includeThoughts?, thinkingLevel?} expected")
    elif "thinkingBudget" in thinking and "thinkingLevel" in thinking:
        out.append("thinking_budget and thinking_level are not supported together.")
    elif not isinstance(thinking.get("thinkingBudget", 0), int) or not isinstance(
        thinking.get("includeThoughts", False), bool
    ):
        out.append("thinkingConfig: thinkingBudget an integer, includeThoughts a boolean")
    return out


def _content_problems(i: int, content: Any, declared: set[str]) -> list[str]:
    if not isinstance(content, dict) or set(content) - {"role", "parts"}:
        return [f"contents[{i}]: {{role, parts}} expected"]
    role, parts = content.get("role"), content.get("parts")
    if role not in ("user", "model"):
        return [f"contents[{i}].role: user or model expected, got {role!r}"]
    if not isinstance(parts, list) or not parts:
        return [f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."]
    out: list[str] = []
    for j, part in enumerate(parts):
        out += [f"contents[{i}].parts[{j}]: {p}" for p in _part_problems(part, role, declared)]
    return out


def _part_problems(part: Any, role: str, declared: set[str]) -> list[str]:
    if not isinstance(part, dict):
        return ["an object expected"]
    data = [k for k in _DATA if k in part]
    extra = set(part) - set(_DATA) - {"thought", "thoughtSignature"}
    if len(data) != 1 or extra:
        return [f"exactly one of {', '.join(_DATA)} expected, got {sorted(part)}"]
    kind, value = data[0], part[data[0]]
    if "thoughtSignature" in part and not isinstance(part["thoughtSignature"], str):
        return ["thoughtSignature: a string expected"]
    if kind == "text":  # "" is proto3's unset: the part holds no data
        if value == "":
            return ["data: required oneof field 'data' must have one initialized field"]
        return [] if isinstance(value, str) else ["text: a string expected"]
    if kind == "inlineData":
        return _inline_problems(value)
    if kind == "fileData":
        ok = (
            isinstance(value, dict)
            and set(value) <= {"fileUri", "mimeType"}
            and isinstance(value.get("fileUri"), str)
        )
        return [] if ok else ["fileData: {fileUri, mimeType?} expected"]
    if kind == "functionCall":
        if role != "model":
            return ["a functionCall belongs in a model turn"]
        ok = (
            isinstance(value, dict)
            and set(value) <= {"id", "name", "args"}
            and isinstance(value.get("name"), str)
        )
        return (
            []
            if ok and isinstance(value.get("args", {}), dict)
            else ["functionCall: {id?, name, args{}} expected"]
        )
    if role != "user":
        return ["a functionResponse belongs in a user turn"]
    ok = (
        isinstance(value, dict)
        and set(value) <= {"id", "name", "response"}
        and isinstance(value.get("name"), str)
    )
    return (
        []
        if ok and isinstance(value.get("response"), dict)
        else ["functionResponse: {id?, name, response{}} expected"]
    )


def _inline_problems(value: Any) -> list[str]:
    if (
        not isinstance(value, dict)
        or set(value) != {"mimeType", "data"}
        or not isinstance(value["mimeType"], str)
    ):
        return ["inlineData: {mimeType, data} expected"]
    try:
        base64.b64decode(value["data"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        return ["inlineData.data: Invalid value (bytes): base64 decoding failed"]
    if value["mimeType"].startswith("image/") and value["mimeType"] not in IMAGE_TYPES:
        return [f"Unsupported MIME type: {value['mimeType']}"]
    return []


def _turn_problems(contents: list[dict[str, Any]], issued: set[str]) -> list[str]:
    roles = [c["role"] for c in contents]
    if roles[0] != "user" or any(a == b for a, b in itertools.pairwise(roles)):
        return ["Please ensure that multiturn requests alternate between user and model."]
    for i, content in enumerate(contents[:-1]):
        calls = [p["functionCall"] for p in content["parts"] if "functionCall" in p]
        if not calls:
            continue
        answers = [p["functionResponse"] for p in contents[i + 1]["parts"] if "functionResponse" in p]
        if sorted(c["name"] for c in calls) != sorted(a["name"] for a in answers):
            return [
                "Please ensure that the number of function response parts is equal to the number of "
                "function call parts of the function call turn."
            ]
    signed = {p["thoughtSignature"] for c in contents for p in c["parts"] if "thoughtSignature" in p}
    if signed - issued - STAND_INS:
        return ["Corrupted thought signature."]
    current = max(
        (i for i, c in enumerate(contents) if c["role"] == "user" and any("text" in p for p in c["parts"])),
        default=0,
    )
    for i, content in enumerate(contents[current:], start=current + 1):
        first = next((p for p in content["parts"] if "functionCall" in p), None)
        if first is not None and first.get("thoughtSignature") not in issued | STAND_INS:
            name = first["functionCall"]["name"]
            return [f"Function call `{name}` in the `{i}.` content block is missing a `thought_signature`."]
    return []
