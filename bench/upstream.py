"""A lean loopback OpenAI-compatible upstream for the benchmark: recorded bytes, a fixed delay.

GET /v1/models answers with the recorded model list (for the sidecar's health probes);
POST /v1/chat/completions answers with tests/fixtures/providers/openai/chat_completion.json, or,
when the body asks for `"stream": true`, with stream.sse written one event per write, or, with
--tokens N, with N one-token events (as llama.cpp's server sends them), a final event with the
finish reason and usage, and [DONE]. Nothing is recorded per request. Prints one line
`{"event": "listening", "port": N}` when ready and serves until SIGTERM/SIGINT or --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import uvloop
from aiohttp import web
from common import REPO, until_signalled

PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
FIXTURES = REPO / "tests" / "fixtures" / "providers" / "openai"
SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Canned:
    completion: bytes
    events: tuple[bytes, ...]
    models: bytes  # GET /v1/models, the zero-cost endpoint the sidecar's health probes call


def load_canned(directory: Path) -> Canned:
    raw = (directory / "stream.sse").read_bytes().replace(b"\r\n", b"\n")
    events = tuple(part + b"\n\n" for part in raw.split(b"\n\n") if part.strip())
    return Canned(
        completion=(directory / "chat_completion.json").read_bytes(),
        events=events,
        models=(directory / "models.json").read_bytes(),
    )


def token_events(count: int) -> tuple[bytes, ...]:
    """`count` chat.completion.chunk events of one token each, then the finish and usage, then [DONE]."""
    head = (
        '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1763700001,"model":"bench-model",'
    )

    def event(choice: str, usage: str = "null") -> bytes:
        return f'data: {head}"choices":[{choice}],"usage":{usage}}}\n\n'.encode()

    token = '{{"index":0,"delta":{{"content":"tok{} "}},"finish_reason":null}}'
    tokens = tuple(event(token.format(i % 10)) for i in range(count))
    usage = f'{{"prompt_tokens":9,"completion_tokens":{count},"total_tokens":{count + 9}}}'
    final = event('{"index":0,"delta":{},"finish_reason":"stop"}', usage)
    return (*tokens, final, b"data: [DONE]\n\n")


def wants_stream(body: bytes) -> bool:
    return b'"stream":true' in body or b'"stream": true' in body


def make_handler(canned: Canned, delay: float) -> Handler:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "GET" and request.path == MODELS_PATH:
            return web.Response(body=canned.models, content_type="application/json")
        if request.method != "POST" or request.path != PATH:
            return web.Response(status=404)
        body = await request.read()
        if delay > 0:
            await asyncio.sleep(delay)
        if not wants_stream(body):
            return web.Response(body=canned.completion, content_type="application/json")
        response = web.StreamResponse(headers=SSE_HEADERS)
        await response.prepare(request)
        for event in canned.events:
            await response.write(event)
        await response.write_eof()
        return response

    return handle


async def serve(port: int, delay: float, max_seconds: float, tokens: int) -> None:
    canned = load_canned(FIXTURES)
    if tokens > 0:
        canned = replace(canned, events=token_events(tokens))
    runner = web.ServerRunner(web.Server(make_handler(canned, delay), access_log=None))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        bound = runner.addresses[0][1]
        ready = {"event": "listening", "port": bound, "delay": delay, "tokens": tokens}
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await until_signalled(max_seconds, "upstream")
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before answering")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long regardless")
    parser.add_argument("--tokens", type=int, default=0, help="stream N one-token events (0: stream.sse)")
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.delay, args.max_seconds, args.tokens))
    return 0


if __name__ == "__main__":
    sys.exit(main())
