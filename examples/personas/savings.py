"""Measure the prompt a long conversation sends upstream, before and after personas and memory.

Before: the application puts every persona's prompt and the whole history into each request.
After: it Switches to one persona once and sends only the new message; the sidecar adds that
persona's prompt and the stored history (capped at `max_history_messages`).

Runs a real sidecar in-process on a free loopback port with the echo provider, whose usage reports
the prompt tokens it received (the sidecar's deterministic estimate, sidecar/core/tokens.py), and
prints the figures of the last turn. Usage: .venv/bin/python examples/personas/savings.py
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import grpc

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import personas_pb2 as pb
from sidecar.app import build_server
from sidecar.config.schema import Config
from tests.support.api import Stubs, generate_request, text_of

PERSONAS, TURNS, KEPT = 40, 60, 20
WORDS = "chart metric revenue region quarter filter cohort churn funnel latency budget forecast".split()
IDS = {"tenant_id": "acme", "user_id": "u1", "conversation_id": "long"}


def text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def config(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    prompts = [text(rng, 450) for _ in range(PERSONAS)]  # about 500 tokens each, under the 600 limit
    personas = [{"id": f"p{i}", "name": f"Persona {i}", "system_prompt": p} for i, p in enumerate(prompts)]
    policy = {
        "default_route": "echo",
        "deployments": {"echo": {"provider": "echo", "model": "echo-1"}},
        "routes": {"echo": {"deployments": ["echo"]}},
        "personas": {"personas": personas, "sessions": {"max_history_messages": KEPT}},
    }
    return {"settings": {"listen": {"address": "127.0.0.1:0"}}, "policy": policy}, prompts


def msg(role: int, content: str) -> gen.Message:
    return gen.Message(role=role, content=[gen.ContentPart(text=content)])  # type: ignore[arg-type]


async def main() -> None:
    rng = random.Random(7)
    raw, prompts = config(rng)
    sidecar = build_server(Config.model_validate(raw))
    await sidecar.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{sidecar.port}") as channel:
        stub = Stubs(channel)
        questions = [text(rng, 40) for _ in range(TURNS)]
        # before: every persona prompt and the whole history in every request
        history: list[gen.Message] = [msg(gen.ROLE_SYSTEM, p) for p in prompts]
        for q in questions:
            history.append(msg(gen.ROLE_USER, q))
            before = generate_request(messages=history)
            resp = await stub.Generate(before)
            history.append(msg(gen.ROLE_ASSISTANT, text_of(resp)))
        before_tokens, before_bytes = resp.summary.usage.prompt_tokens, before.ByteSize()
        # after: one Switch, then only the new message each turn, with memory
        await stub.Switch(pb.SwitchRequest(persona_id="p3", **IDS))
        for q in questions:
            after = generate_request(messages=[msg(gen.ROLE_USER, q)], memory=True, **IDS)
            resp = await stub.Generate(after)
        after_tokens, after_bytes = resp.summary.usage.prompt_tokens, after.ByteSize()
    await sidecar.stop(0)
    print(f"{PERSONAS} personas, turn {TURNS} of a conversation, history kept: {KEPT} messages")
    print(f"before: {before_tokens:>7,} prompt tokens upstream, {before_bytes:>8,} bytes from the app")
    print(f"after:  {after_tokens:>7,} prompt tokens upstream, {after_bytes:>8,} bytes from the app")
    print(f"saved:  {1 - after_tokens / before_tokens:.1%} of the prompt tokens")


if __name__ == "__main__":
    asyncio.run(main())
