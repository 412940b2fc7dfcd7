"""The floor of any Python gRPC sidecar: a bare grpc.aio + uvloop GenerationService, no upstream call.

Serves orchestrator.v1.GenerationService on 127.0.0.1 with nothing behind it. Generate sleeps the
route's upstream delay (--route NAME=SECONDS; GenerationInput.model names the route, as for the
sidecar), then returns a GenerateResponse built once at start-up: the text and usage of
tests/fixtures/providers/openai/chat_completion.json. StreamGenerate sleeps the same delay, then
yields one delta with the whole text and one summary: the two messages the sidecar sends for an
upstream answer that arrives in one network read. The server options are the sidecar's own
(sidecar/app.py); health and reflection are left out, they cost nothing per call. Prints one line
`{"event": "listening", "port": N}` when ready and serves until SIGTERM/SIGINT or --max-seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import uvloop
from common import REPO, until_signalled

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import generation_service_pb2_grpc

FIXTURE = REPO / "tests" / "fixtures" / "providers" / "openai" / "chat_completion.json"
MAX_RECEIVE_MESSAGE_BYTES = 8 * 1024 * 1024  # the sidecar's default (sidecar/config/schema.py)
STOP_GRACE_SECONDS = 1.0
Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Canned:
    """Everything one route answers, built once: no per-call work beyond gRPC's own."""

    delay: float
    unary: gen.GenerateResponse
    stream: tuple[gen.StreamGenerateResponse, ...]


def load_canned(route: str, delay: float) -> Canned:
    completion: dict[str, Any] = json.loads(FIXTURE.read_text())
    text: str = completion["choices"][0]["message"]["content"]
    usage: dict[str, Any] = completion["usage"]
    summary = gen.GenerationSummary(
        finish_reason=gen.FINISH_REASON_STOP,
        usage=gen.Usage(
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            total_tokens=usage["total_tokens"],
            cached_tokens=usage.get("prompt_tokens_details", {}).get("cached_tokens", 0),
        ),
        served_by=gen.ServedBy(route=route, deployment="bare", provider="bare", model=completion["model"]),
    )
    return Canned(
        delay=delay,
        unary=gen.GenerateResponse(
            message=gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(text=text)]),
            summary=summary,
        ),
        stream=(
            gen.StreamGenerateResponse(delta=gen.ContentDelta(text=text)),
            gen.StreamGenerateResponse(result=gen.GenerateResponse(summary=summary)),
        ),
    )


class BareServicer(generation_service_pb2_grpc.GenerationServiceServicer):
    """Generate and StreamGenerate with fixed answers; ListModels stays UNIMPLEMENTED (the base's)."""

    def __init__(self, routes: dict[str, Canned]) -> None:
        self._routes = routes

    async def _canned(self, model: str, context: Context) -> Canned:
        canned = self._routes.get(model)
        if canned is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no route {model!r}")
            raise AssertionError("unreachable: context.abort raises")
        if canned.delay > 0:
            await asyncio.sleep(canned.delay)
        return canned

    async def Generate(self, request: gen.GenerateRequest, context: Context) -> gen.GenerateResponse:
        return (await self._canned(request.input.model, context)).unary

    async def StreamGenerate(
        self, request: gen.StreamGenerateRequest, context: Context
    ) -> AsyncGenerator[gen.StreamGenerateResponse, None]:
        for message in (await self._canned(request.input.model, context)).stream:
            yield message


async def serve(port: int, routes: dict[str, Canned], max_seconds: float) -> None:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
    )
    adder = generation_service_pb2_grpc.add_GenerationServiceServicer_to_server
    adder(BareServicer(routes), server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        sys.stdout.write(json.dumps({"event": "listening", "port": bound, "routes": sorted(routes)}) + "\n")
        sys.stdout.flush()
        await until_signalled(max_seconds, "bare_server")
    finally:
        await server.stop(STOP_GRACE_SECONDS)


def parse_route(text: str) -> tuple[str, float]:
    name, sep, seconds = text.partition("=")
    if not name or not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=SECONDS, got {text!r}")
    return name, float(seconds)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument(
        "--route",
        type=parse_route,
        action="append",
        required=True,
        metavar="NAME=SECONDS",
        help="a route alias and the upstream delay it sleeps before answering (repeatable)",
    )
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long regardless")
    args = parser.parse_args(argv)
    routes = {name: load_canned(name, delay) for name, delay in args.route}
    uvloop.run(serve(args.port, routes, args.max_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
