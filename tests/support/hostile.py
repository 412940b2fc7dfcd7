"""A loopback upstream for every provider's wire at once that betrays whatever it is sent: each
failure it answers quotes the request's headers (credentials included), its URL and query string
back, in the body's message and in response headers, as a careless or hostile upstream might.

What it does is chosen by the prompt: a `MODE-<name>` word in the request body (the last one: the
call's own, after its history) picks
`ok` (the default), a status (`401`, `403`, `429`, `500`, `400`), `slow` (no answer within the
sidecar's read timeout), `garbage` (a 200 that is not JSON), or `midstream` (a stream that starts,
then ends with the provider's own in-stream error event quoting the credentials). The wire is told
by the path: OpenAI and Azure chat completions, Anthropic messages, Gemini generateContent, Bedrock
converse / converse-stream, and each one's probe.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.eventstream import event, exception

_MODE = re.compile(rb"MODE-([a-z0-9]+)")
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Hostile:
    """The server; `seen` is every request as it arrived (the URL with its query string)."""

    slow_seconds: float = 30.0
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> Hostile:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers), body))
        found = _MODE.findall(body)  # the last: the call's own prompt, after any history
        mode = found[-1].decode() if found else "ok"
        wire = _wire(request.path)
        betrayal = self._betrayal(request, body)
        if request.method == "GET":
            return _probe(wire)
        if mode == "slow":
            await asyncio.sleep(self.slow_seconds)
            return web.Response(status=504)
        if mode.isdigit():
            return _status(int(mode), wire, betrayal)
        if mode == "garbage":
            return web.Response(
                status=200, body=b"{not json " + betrayal.encode()[:200], content_type="application/json"
            )
        stream = _streaming(request.path, body)
        if not stream:
            return web.json_response(_answer(wire, body))
        return await _stream(request, wire, betrayal if mode == "midstream" else None)

    def _betrayal(self, request: web.Request, body: bytes) -> str:
        """Everything the request carried that a careless upstream might quote."""
        headers = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
        return f"you sent {request.path_qs} with {headers}"


def _wire(path: str) -> str:
    if "/openai/deployments/" in path:
        return "azure"
    if path.endswith("/messages"):
        return "anthropic"
    if ":generateContent" in path or ":streamGenerateContent" in path or "/models/" in path:
        return "gemini"
    if "/converse" in path or "/async-invoke" in path:
        return "bedrock"
    return "openai"


def _streaming(path: str, body: bytes) -> bool:
    if path.endswith("/converse-stream") or ":streamGenerateContent" in path:
        return True
    try:
        return bool(json.loads(body).get("stream"))
    except (ValueError, AttributeError):
        return False


def _probe(wire: str) -> web.Response:
    if wire == "gemini":
        return web.json_response({"name": "models/m"})
    if wire == "bedrock":
        return web.json_response({"asyncInvokeSummaries": []})
    return web.json_response({"object": "list", "data": [{"id": "m"}]})


def _status(status: int, wire: str, betrayal: str) -> web.Response:
    headers = {"x-echo": betrayal[:4000].encode("ascii", "replace").decode()}
    if status == 429:
        headers["retry-after"] = "1"
    if wire == "bedrock":
        headers["x-amzn-ErrorType"] = "ThrottlingException" if status == 429 else "ValidationException"
        return web.json_response({"message": betrayal}, status=status, headers=headers)
    if wire == "gemini":
        error = {"code": status, "message": betrayal, "status": "INVALID_ARGUMENT"}
        return web.json_response({"error": error}, status=status, headers=headers)
    if wire == "anthropic":
        error = {"type": "error", "error": {"type": "invalid_request_error", "message": betrayal}}
        return web.json_response(error, status=status, headers=headers)
    error = {"error": {"message": betrayal, "type": "invalid_request_error", "code": None}}
    return web.json_response(error, status=status, headers=headers)


def _answer(wire: str, body: bytes) -> dict[str, Any]:
    text = "a fine answer"
    if wire == "anthropic":
        return {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 5, "output_tokens": 3},
        }
    if wire == "gemini":
        return {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
        }
    if wire == "bedrock":
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
        }
    return {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": USAGE,
    }


def _sse(data: Any, name: str | None = None) -> bytes:
    head = f"event: {name}\n".encode() if name else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


async def _stream(request: web.Request, wire: str, betrayal: str | None) -> web.StreamResponse:
    kind = "application/vnd.amazon.eventstream" if wire == "bedrock" else "text/event-stream"
    response = web.StreamResponse(headers={"content-type": kind})
    await response.prepare(request)
    for frame in _frames(wire, betrayal):
        await response.write(frame)
    await response.write_eof()
    return response


def _frames(wire: str, betrayal: str | None) -> list[bytes]:
    if wire == "bedrock":
        frames = [
            event("messageStart", {"role": "assistant"}),
            event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "a fine "}}),
        ]
        if betrayal is not None:
            return [*frames, exception("throttlingException", betrayal)]
        return [
            *frames,
            event("contentBlockStop", {"contentBlockIndex": 0}),
            event("messageStop", {"stopReason": "end_turn"}),
            event(
                "metadata",
                {
                    "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
                    "metrics": {"latencyMs": 1},
                },
            ),
        ]
    if wire == "gemini":
        first = {"candidates": [{"content": {"role": "model", "parts": [{"text": "a fine "}]}}]}
        if betrayal is not None:
            return [_sse(first), _sse({"error": {"code": 500, "message": betrayal, "status": "INTERNAL"}})]
        last = {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "answer"}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
        }
        return [_sse(first), _sse(last)]
    if wire == "anthropic":
        start = {
            "type": "message_start",
            "message": {
                "id": "m1",
                "type": "message",
                "role": "assistant",
                "model": "m",
                "content": [],
                "usage": {"input_tokens": 5, "output_tokens": 0},
            },
        }
        frames = [
            _sse(start, "message_start"),
            _sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            ),
            _sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "a fine "},
                },
                "content_block_delta",
            ),
        ]
        if betrayal is not None:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": betrayal}}
            return [*frames, _sse(error, "error")]
        return [
            *frames,
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 3},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
    first = {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "a fine "}}]}
    if betrayal is not None:
        return [_sse(first), _sse({"error": {"message": betrayal, "type": "server_error"}})]
    last = {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": USAGE}
    return [_sse(first), _sse(last), b"data: [DONE]\n\n"]
