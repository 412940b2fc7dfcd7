"""A strict loopback Anthropic Messages API (POST /v1/messages, JSON or SSE) that checks each request
as Anthropic does before it answers, in Anthropic's words where they are known.

Checked: the x-api-key header; only documented top-level fields; `max_tokens` a positive integer;
`messages` a non-empty list of user and assistant turns whose content is a string or a non-empty
list of known blocks; text anywhere (a string content, a text block, a tool result's content, the
system prompt) holds non-whitespace text ("text content blocks must contain non-whitespace text");
a final assistant turn (a prefill) does not end with whitespace ("final assistant content cannot
end with trailing whitespace"); images as base64 of at most 5 MB and (a PNG) 8000 px a side, at
most 100 in a request (more than 20: each at most 2000 px a side); the body
at most 32 MB (413 request_too_large). A broken rule is answered 400 invalid_request_error.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

Answer = tuple[list[dict[str, Any]], str]  # the assistant's content blocks and the stop reason
USAGE = {"input_tokens": 31, "output_tokens": 9}
MAX_BODY_BYTES = 32_000_000  # "32 MB" (Messages API request size limit)
MAX_IMAGES = 100
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_SIDE = 8000  # pixels (a PNG's, read from its header)
_TOP = {"model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences",
        "stream", "tools", "tool_choice", "thinking", "metadata", "service_tier"}  # fmt: skip
_BLOCKS = {"text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking"}
BLANK = "text content blocks must contain non-whitespace text"
TRAILING = "final assistant content cannot end with trailing whitespace"


class Invalid(Exception):
    """A rule of the Messages API the request breaks (invalid_request_error)."""


def check_messages(body: Any) -> None:
    """Raise Invalid for what Anthropic would refuse in a Messages request body."""
    _require(isinstance(body, dict), "the body is not a JSON object")
    extra = sorted(set(body) - _TOP)
    _require(not extra, f"{', '.join(extra)}: Extra inputs are not permitted")
    _require(isinstance(body.get("model"), str) and body["model"], "model: Field required")
    tokens = body.get("max_tokens")
    _require(
        isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 1, "max_tokens: Field required"
    )
    _system(body.get("system"))
    messages = body.get("messages")
    _require(isinstance(messages, list) and messages, "messages: Field required")
    images = 0
    for i, m in enumerate(messages):
        _require(isinstance(m, dict) and set(m) == {"role", "content"}, f"messages.{i}: role and content")
        _require(
            m["role"] in ("user", "assistant"), f"messages.{i}.role: Input should be 'user' or 'assistant'"
        )
        images += _content(m["content"], f"messages.{i}")
    _require(images <= MAX_IMAGES, f"messages: too many images: at most {MAX_IMAGES} images in a request")
    if images > 20:  # then each at most 2000 px a side
        sides = [max(png_size(base64.b64decode(b["source"]["data"]))) for m in messages
                 if isinstance(m["content"], list) for b in m["content"]
                 if b.get("type") == "image" and b["source"].get("type") == "base64"]  # fmt: skip
        _require(
            max(sides, default=0) <= 2000, "messages: with more than 20 images, each at most 2000x2000 px"
        )
    last = messages[-1]
    if last["role"] == "assistant":
        content = last["content"]
        tail = content if isinstance(content, str) else _last_text(content)
        _require(tail == tail.rstrip(), TRAILING)


def _system(system: Any) -> None:
    if system is None:
        return
    if isinstance(system, str):
        _require(system.strip() != "", f"system: {BLANK}")
        return
    _require(isinstance(system, list), "system: a string or a list of text blocks")
    for block in system:
        _require(isinstance(block, dict) and block.get("type") == "text", "system: text blocks only")
        _text(block.get("text"), "system")


def _content(content: Any, at: str) -> int:
    """Check one message's content; the number of images in it."""
    if isinstance(content, str):
        _text(content, at)
        return 0
    _require(isinstance(content, list) and content, f"{at}: all messages must have non-empty content")
    images = 0
    for j, block in enumerate(content):
        where = f"{at}.content.{j}"
        _require(isinstance(block, dict) and block.get("type") in _BLOCKS, f"{where}: unknown block type")
        kind = block["type"]
        if kind == "text":
            _text(block.get("text"), where)
        elif kind == "image":
            images += _image(block.get("source"), where)
        elif kind == "tool_result":
            images += _tool_result(block, where)
        elif kind == "tool_use":
            ok = isinstance(block.get("id"), str) and isinstance(block.get("name"), str)
            _require(ok and isinstance(block.get("input"), dict), f"{where}: tool_use needs id, name, input")
    return images


def _tool_result(block: dict[str, Any], at: str) -> int:
    _require(isinstance(block.get("tool_use_id"), str), f"{at}.tool_use_id: Field required")
    if "content" not in block:
        return 0
    result = block["content"]
    if isinstance(result, str):
        _text(result, f"{at}.content")
        return 0
    _require(isinstance(result, list), f"{at}.content: a string or a list of blocks")
    images = 0
    for k, part in enumerate(result):
        _require(isinstance(part, dict) and part.get("type") in ("text", "image"), f"{at}.content.{k}")
        if part["type"] == "text":
            _text(part.get("text"), f"{at}.content.{k}")
        else:
            images += _image(part.get("source"), f"{at}.content.{k}")
    return images


def _text(text: Any, at: str) -> None:
    _require(isinstance(text, str), f"{at}.text: Input should be a valid string")
    _require(text.strip() != "", f"messages: {BLANK}" if at.startswith("messages") else f"{at}: {BLANK}")


def _last_text(content: list[dict[str, Any]]) -> str:
    texts = [b["text"] for b in content if b.get("type") == "text"]
    return texts[-1] if texts and content[-1].get("type") == "text" else ""


def _image(source: Any, at: str) -> int:
    _require(isinstance(source, dict), f"{at}.source: Field required")
    if source.get("type") == "url":
        _require(isinstance(source.get("url"), str), f"{at}.source.url")
        return 1
    _require(source.get("type") == "base64", f"{at}.source.type: base64 or url")
    formats = ("image/jpeg", "image/png", "image/gif", "image/webp")
    _require(source.get("media_type") in formats, f"{at}.source.media_type: Input should be one of {formats}")
    try:
        data = base64.b64decode(source.get("data", ""), validate=True)
    except (binascii.Error, TypeError) as exc:
        raise Invalid(f"{at}.source.data: invalid base64 data") from exc
    _require(len(data) <= MAX_IMAGE_BYTES, f"{at}.source.base64: image exceeds 5 MB maximum")
    too_large = "At least one of the image dimensions exceed max allowed size: 8000 pixels"
    _require(max(png_size(data)) <= MAX_SIDE, f"{at}.source.base64.data: {too_large}")
    return 1


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's width and height from its IHDR chunk ((0, 0) for another format): what the tests'
    images are."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return 0, 0
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise Invalid(message)


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response({"type": "error", "error": {"type": kind, "message": message}}, status=status)


def message(blocks: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    return {"id": "msg_strict", "type": "message", "role": "assistant", "model": "claude",
            "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": USAGE}  # fmt: skip


def sse(blocks: list[dict[str, Any]], stop: str) -> bytes:
    """An answer of text blocks as Anthropic streams it."""
    start = {**message([], ""), "stop_reason": None}
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for n, block in enumerate(blocks):
        events.append(
            {"type": "content_block_start", "index": n, "content_block": {"type": "text", "text": ""}}
        )
        delta = {"type": "text_delta", "text": block["text"]}
        events.append({"type": "content_block_delta", "index": n, "delta": delta})
        events.append({"type": "content_block_stop", "index": n})
    events.append({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 9}})
    events.append({"type": "message_stop"})
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


class StrictAnthropic:
    """The Messages endpoint for `api_key`: each valid request is answered by `answer(body)`."""

    def __init__(self, answer: Callable[[dict[str, Any]], Answer], api_key: str) -> None:
        self.answer, self._key = answer, api_key
        self.bodies: list[dict[str, Any]] = []
        self.refusals: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> StrictAnthropic:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._handle)
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
        if request.headers.get("x-api-key") != self._key:
            self.refusals.append("x-api-key")
            return _error(401, "authentication_error", "invalid x-api-key")
        raw = await request.read()
        if len(raw) > MAX_BODY_BYTES:
            self.refusals.append("request_too_large")
            return _error(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
        body = json.loads(raw)
        self.bodies.append(body)
        try:
            check_messages(body)
        except Invalid as exc:
            self.refusals.append(str(exc))
            return _error(400, "invalid_request_error", str(exc))
        blocks, stop = self.answer(body)
        if body.get("stream"):
            return web.Response(body=sse(blocks, stop), content_type="text/event-stream")
        return web.json_response(message(blocks, stop))
