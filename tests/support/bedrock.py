"""A strict loopback Bedrock runtime: Converse (JSON) and ConverseStream (the binary AWS event
stream), checking each request as AWS does before it answers.

Checked: the SigV4 signature (recomputed from what arrived, with the test's credentials), and the
body against the Converse API reference: only documented fields; messages alternate, starting with
a user turn; each content block holds exactly one member; `toolUse` only in assistant turns and
`toolResult` only in user turns, each result answering a call of the turn before and every call
answered ("Expected toolResult blocks at messages.2.content for the following Ids"); a request
holding either needs a `toolConfig` ("The toolConfig field must be defined when using toolUse and
toolResult content blocks."); tool specs, tool choice and images as documented (at most 20, each
3.75 MB and, a PNG, 8000 px a side); no blank text (a message's, a tool result's, the system
prompt's), and, as Claude (the model these tests call), no trailing whitespace ending a last
assistant turn. A broken rule is answered 400 ValidationException, as Bedrock answers it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.support.anthropic import png_size
from tests.support.eventstream import event


def _error(status: int, kind: str, message: str) -> web.Response:
    error_type = {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    return web.json_response({"message": message}, status=status, headers=error_type)


Answer = tuple[list[dict[str, Any]], str]  # the assistant's content blocks and the stop reason
USAGE = {"inputTokens": 410, "outputTokens": 58, "totalTokens": 468}
_TOP = {"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig",
        "additionalModelRequestFields", "promptVariables", "additionalModelResponseFieldPaths",
        "requestMetadata", "performanceConfig"}  # fmt: skip
_BLOCKS = {"text", "image", "document", "video", "toolUse", "toolResult", "guardContent", "cachePoint",
           "reasoningContent", "citationsContent"}  # fmt: skip
_INFERENCE = {"maxTokens", "temperature", "topP", "stopSequences"}
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_FORMATS = {"png", "jpeg", "gif", "webp"}
_MAX_IMAGE = 3_932_160
TRAILING = "messages: final assistant content cannot end with trailing whitespace"
NEEDS_TOOL_CONFIG = "The toolConfig field must be defined when using toolUse and toolResult content blocks."


class Invalid(Exception):
    """A rule of the Converse API the request breaks (Bedrock's ValidationException)."""


def check_converse(body: Any) -> None:
    """Raise Invalid for what Bedrock would refuse in a Converse / ConverseStream body."""
    _require(isinstance(body, dict), "the body is not a JSON object")
    _only(body, _TOP, "")
    messages = body.get("messages")
    _require(isinstance(messages, list) and messages, "messages must be a non-empty list")
    _require(messages[0].get("role") == "user", "A conversation must start with a user message.")
    uses_tools = False
    for i, m in enumerate(messages):
        _only(m, {"role", "content"}, f"messages.{i}")
        _require(m.get("role") in ("user", "assistant"), f"messages.{i}.role must be user or assistant")
        _require(i == 0 or m["role"] != messages[i - 1]["role"],
                 "A conversation must alternate between user and assistant roles.")  # fmt: skip
        content = m.get("content")
        _require(isinstance(content, list) and content, f"messages.{i}.content must be a non-empty list")
        for j, block in enumerate(content):
            uses_tools |= _block(block, m["role"], f"messages.{i}.content.{j}")
        if m["role"] == "user" and i > 0:
            _answers(messages[i - 1]["content"], content, i)
    images = sum("image" in b for m in messages for b in m["content"])
    _require(images <= 20, f"too many images: {images}; a request takes at most 20")
    if messages[-1]["role"] == "assistant":
        _answers(messages[-1]["content"], [], len(messages))
    for j, block in enumerate(body.get("system", [])):
        _only(block, {"text", "guardContent", "cachePoint"}, f"system.{j}")
        _require(str(block.get("text", "x")).strip() != "", f"The text field in system.{j} is blank.")
    last = messages[-1]["content"]
    if messages[-1]["role"] == "assistant" and isinstance(last[-1].get("text"), str):  # Claude's rule
        _require(last[-1]["text"] == last[-1]["text"].rstrip(), TRAILING)
    _only(body.get("inferenceConfig", {}), _INFERENCE, "inferenceConfig")
    temperature = body.get("inferenceConfig", {}).get("temperature", 0)
    _require(0 <= temperature <= 1, "inferenceConfig.temperature must be in [0, 1]")
    _thinking(body)
    if "toolConfig" in body:
        _tool_config(body["toolConfig"])
    else:
        _require(not uses_tools, NEEDS_TOOL_CONFIG)


def _block(block: Any, role: str, at: str) -> bool:
    """Check one content block; True for a toolUse or toolResult."""
    _require(isinstance(block, dict) and len(block) == 1 and set(block) <= _BLOCKS,
             f"{at} must hold exactly one member of ContentBlock")  # fmt: skip
    kind, value = next(iter(block.items()))
    if kind == "text":
        _require(isinstance(value, str), f"{at}.text must be a string")
        _require(value.strip() != "", f"The text field in the ContentBlock object at {at} is blank.")
    elif kind == "image":
        _image(value, at)
    elif kind == "reasoningContent":
        _require(role == "assistant", f"{at}: reasoningContent blocks belong in assistant messages")
        text = value.get("reasoningText") if isinstance(value, dict) else None
        ok = (
            isinstance(value, dict)
            and len(value) == 1
            and (
                isinstance(value.get("redactedContent"), str)
                or (
                    isinstance(text, dict)
                    and set(text) <= {"text", "signature"}
                    and isinstance(text.get("text"), str)
                )
            )
        )
        _require(ok, f"{at}.reasoningContent must hold reasoningText {{text, signature}} or redactedContent")
    elif kind == "toolUse":
        _require(role == "assistant", f"{at}: toolUse blocks belong in assistant messages")
        _only(value, {"toolUseId", "name", "input"}, f"{at}.toolUse")
        _require(_NAME.fullmatch(str(value.get("toolUseId", ""))) is not None, f"{at}.toolUse.toolUseId")
        _require(_NAME.fullmatch(str(value.get("name", ""))) is not None, f"{at}.toolUse.name")
        _require(isinstance(value.get("input"), dict), f"{at}.toolUse.input must be an object")
    elif kind == "toolResult":
        _require(role == "user", f"{at}: toolResult blocks belong in user messages")
        _only(value, {"toolUseId", "content", "status"}, f"{at}.toolResult")
        _require(value.get("status", "success") in ("success", "error"), f"{at}.toolResult.status")
        results = value.get("content")
        _require(isinstance(results, list) and results, f"{at}.toolResult.content must be a non-empty list")
        for k, r in enumerate(results):
            ok = isinstance(r, dict) and len(r) == 1 and set(r) <= {"text", "json", "image", "document"}
            _require(ok, f"{at}.toolResult.content.{k} must hold one of text, json, image, document")
            blank = isinstance(r.get("text"), str) and not r["text"].strip()
            _require(
                not blank,
                f"The text field in the ContentBlock object at {at}.toolResult.content.{k} is blank.",
            )
    return kind in ("toolUse", "toolResult")


def _thinking(body: dict[str, Any]) -> None:
    """Claude's extended thinking on Bedrock (additionalModelRequestFields.thinking): maxTokens above
    the budget, no temperature or topP, and the last assistant turn that called tools starts with
    its reasoningContent blocks, sent back unchanged (Anthropic's rule, enforced by Bedrock too)."""
    thinking = body.get("additionalModelRequestFields", {}).get("thinking")
    if thinking is None:
        return
    budget = thinking.get("budget_tokens", 0)
    _require(thinking.get("type") == "enabled" and isinstance(budget, int) and budget >= 1024,
             "thinking.type must be enabled, budget_tokens at least 1024")  # fmt: skip
    config = body.get("inferenceConfig", {})
    _require(config.get("maxTokens", 0) > budget, "max_tokens must be greater than thinking.budget_tokens")
    _require("temperature" not in config and "topP" not in config,
             "temperature and top_p may not be set when thinking is enabled")  # fmt: skip
    turns = [m for m in body["messages"] if m["role"] == "assistant"]
    if turns and any("toolUse" in b for b in turns[-1]["content"]):
        _require("reasoningContent" in turns[-1]["content"][0],
                 "Expected `thinking` or `redacted_thinking`, but found another block. When `thinking` is "
                 "enabled, a final `assistant` message must start with a thinking block")  # fmt: skip


def _answers(calls: list[dict[str, Any]], reply: list[dict[str, Any]], i: int) -> None:
    """Every toolUse of an assistant turn is answered in the next user turn, and only those."""
    asked = {b["toolUse"]["toolUseId"] for b in calls if "toolUse" in b}
    answered = [b["toolResult"]["toolUseId"] for b in reply if "toolResult" in b]
    missing = asked - set(answered)
    _require(not missing, f"Expected toolResult blocks at messages.{i}.content for the following Ids: "
             f"{', '.join(sorted(missing))}")  # fmt: skip
    stray = set(answered) - asked
    _require(not stray, f"messages.{i}: toolResult for unknown toolUseIds {sorted(stray)}")
    if answered:  # results before any other block of the turn
        kinds = ["toolResult" in b for b in reply]
        _require(kinds == sorted(kinds, reverse=True), f"messages.{i}: toolResult blocks must come first")


def _image(value: Any, at: str) -> None:
    _only(value, {"format", "source"}, f"{at}.image")
    _require(value.get("format") in _FORMATS, f"{at}.image.format must be png, jpeg, gif or webp")
    source = value.get("source")
    _require(isinstance(source, dict) and set(source) == {"bytes"}, f"{at}.image.source.bytes")
    try:
        data = base64.b64decode(source["bytes"], validate=True)
    except (binascii.Error, TypeError) as exc:
        raise Invalid(f"{at}.image.source.bytes is not base64") from exc
    _require(0 < len(data) <= _MAX_IMAGE, f"{at}.image is larger than 3.75 MB")
    _require(max(png_size(data)) <= 8000, f"{at}.image: the width and height must be no more than 8000 px")


def _tool_config(config: Any) -> None:
    _only(config, {"tools", "toolChoice"}, "toolConfig")
    tools = config.get("tools")
    _require(isinstance(tools, list) and tools, "toolConfig.tools must be a non-empty list")
    names = set()
    for k, tool in enumerate(tools):
        spec = tool.get("toolSpec") if isinstance(tool, dict) and set(tool) == {"toolSpec"} else None
        _require(isinstance(spec, dict), f"toolConfig.tools.{k} must hold a toolSpec")
        assert isinstance(spec, dict)
        _only(spec, {"name", "description", "inputSchema"}, f"toolConfig.tools.{k}.toolSpec")
        _require(
            _NAME.fullmatch(str(spec.get("name", ""))) is not None, f"toolConfig.tools.{k}.toolSpec.name"
        )
        _require(spec.get("description", "x") != "", f"toolConfig.tools.{k}.toolSpec.description is empty")
        schema = spec.get("inputSchema")
        _require(isinstance(schema, dict) and set(schema) == {"json"} and isinstance(schema["json"], dict),
                 f"toolConfig.tools.{k}.toolSpec.inputSchema must be {{json: <object>}}")  # fmt: skip
        names.add(spec["name"])
    choice = config.get("toolChoice", {"auto": {}})
    _require(isinstance(choice, dict) and len(choice) == 1 and set(choice) <= {"auto", "any", "tool"},
             "toolConfig.toolChoice must be one of auto, any, tool")  # fmt: skip
    if "tool" in choice:
        _require(choice["tool"].get("name") in names, "toolConfig.toolChoice.tool.name is not a tool")


def _only(value: Any, allowed: set[str], at: str) -> None:
    _require(isinstance(value, dict), f"{at or 'body'} must be an object")
    extra = set(value) - allowed
    _require(not extra, f"extraneous key [{', '.join(sorted(extra))}] is not permitted at {at or 'body'}")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise Invalid(message)


def frames_of(blocks: list[dict[str, Any]], stop: str) -> list[bytes]:
    """An answer's blocks as ConverseStream sends them: text in two deltas; a toolUse as a start,
    its input JSON in three pieces, a stop; then messageStop and metadata."""
    frames = [event("messageStart", {"role": "assistant"})]
    for n, block in enumerate(blocks):
        if "reasoningContent" in block:
            frames += _reasoning_frames(n, block["reasoningContent"])
        elif "text" in block:
            text = block["text"]
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                frames.append(event("contentBlockDelta", {"contentBlockIndex": n, "delta": {"text": piece}}))
        else:
            use = block["toolUse"]
            start = {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}
            frames.append(event("contentBlockStart", {"contentBlockIndex": n, "start": start}))
            raw = json.dumps(use["input"])
            for k in range(3):
                piece = raw[k * len(raw) // 3 : (k + 1) * len(raw) // 3]
                delta = {"toolUse": {"input": piece}}
                frames.append(event("contentBlockDelta", {"contentBlockIndex": n, "delta": delta}))
        frames.append(event("contentBlockStop", {"contentBlockIndex": n}))
    frames.append(event("messageStop", {"stopReason": stop}))
    frames.append(event("metadata", {"usage": USAGE, "metrics": {"latencyMs": 912}}))
    return frames


def signature_ok(request: web.Request, raw: bytes, credentials: tuple[str, str], region: str) -> bool:
    """Recompute the request's SigV4 signature as AWS does, from what arrived."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import ReadOnlyCredentials

    authorization = request.headers.get("Authorization", "")
    if not authorization.startswith(f"AWS4-HMAC-SHA256 Credential={credentials[0]}/"):
        return False
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    headers = {k: v for k, v in request.headers.items() if k.lower() in signed}
    url = f"http://{request.headers['Host']}{request.raw_path}"
    aws = AWSRequest(method=request.method, url=url, data=raw, headers=headers)
    aws.context["timestamp"] = request.headers["X-Amz-Date"]
    auth = SigV4Auth(ReadOnlyCredentials(credentials[0], credentials[1], None), "bedrock", region)
    expected = auth.signature(auth.string_to_sign(aws, auth.canonical_request(aws)), aws)
    return authorization.endswith(f"Signature={expected}")


def _reasoning_frames(n: int, reasoning: dict[str, Any]) -> list[bytes]:
    """A reasoningContent block streamed: its text in two deltas, then its signature; a redacted
    block in one delta."""
    if "redactedContent" in reasoning:
        deltas = [{"redactedContent": reasoning["redactedContent"]}]
    else:
        text = reasoning["reasoningText"]["text"]
        deltas = [
            {"text": text[:10]},
            {"text": text[10:]},
            {"signature": reasoning["reasoningText"]["signature"]},
        ]
    return [
        event("contentBlockDelta", {"contentBlockIndex": n, "delta": {"reasoningContent": d}}) for d in deltas
    ]


class StrictBedrock:
    """The runtime endpoint of `region`, for `credentials` (access key id, secret): each signed,
    valid request is answered by `answer(body)`."""

    def __init__(
        self, answer: Callable[[dict[str, Any]], Answer], credentials: tuple[str, str], region: str
    ) -> None:
        self.answer, self._credentials, self._region = answer, credentials, region
        self.bodies: list[dict[str, Any]] = []
        self.refusals: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> StrictBedrock:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/model/{model}/{op}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if not signature_ok(request, raw, self._credentials, self._region):
            self.refusals.append("signature")
            return _error(
                403, "InvalidSignatureException", "The request signature we calculated does not match"
            )
        body = json.loads(raw)
        self.bodies.append(body)
        try:
            check_converse(body)
        except Invalid as exc:
            self.refusals.append(str(exc))
            return _error(400, "ValidationException", str(exc))
        blocks, stop = self.answer(body)
        if request.match_info["op"] == "converse":
            message = {"message": {"role": "assistant", "content": blocks}}
            return web.json_response({"output": message, "stopReason": stop, "usage": USAGE,
                                      "metrics": {"latencyMs": 912}})  # fmt: skip
        response = web.StreamResponse(headers={"content-type": "application/vnd.amazon.eventstream"})
        await response.prepare(request)
        for frame in frames_of(blocks, stop):
            await response.write(frame)
        await response.write_eof()
        return response
