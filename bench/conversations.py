"""Upstream prompt tokens and input cost of long conversations, counted at the upstream.

A replayed multi-turn workload: USERS users x TURNS turns, PERSONAS personas of about 550 tokens,
persona switches by natural Switch commands, repeated questions. It runs through a real sidecar
(in-process gRPC server on loopback, memory on, trimming on, summaries off and then on) against a
real loopback OpenAI-wire upstream that COUNTS the prompt tokens it receives with cl100k_base and
OpenAI's chat framing (written here from the cookbook's rules, independently of the sidecar), and
checks each call against its model's context window (prompt + max_tokens). The naive baseline (all
personas and the full history every turn, as an application without the sidecar would send) goes
to the same upstream directly and is counted the same way, with the same answers.

The upstream answers deterministically from the question (40 to 160 tokens), and writes summaries
of 100 tokens ("a few sentences", as the default summary prompt asks) or max_tokens if less. The
main model is priced like gpt-4-turbo ($10 / $30 per million), the summarizer like gpt-3.5-turbo
($0.50 / $1.50); both count with cl100k_base. Summaries run with the default policy (128 tokens at
most; no message leaves the prompt before the summary covers it; the uncovered messages but the
newest are folded in once they reach 192 tokens). Users run one after the other, so the upstream
calls of each turn (the answer and any summary) are known exactly. `--summary '{"refresh_tokens":
128}'` overrides the summary policy, `--max-recent N` the trimming window of both runs.

Usage: .venv/bin/python bench/conversations.py [--users 20] [--turns 60] [--markdown]
Prints the table and one PASS/FAIL line per bar; exits 1 if any bar fails.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import inspect
import json
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import yaml
from aiohttp import ClientSession, web

from sidecar._gen.orchestrator.v1 import conversation_service_pb2_grpc as conversation_svc
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import generation_service_pb2_grpc as generation_svc
from sidecar._gen.orchestrator.v1 import personas_pb2
from sidecar.app import build_server
from sidecar.config.load import load_config
from sidecar.context.encodings import load_encoding

REPO = Path(__file__).resolve().parent.parent
ENCODINGS = REPO / ".cache" / "tiktoken"
MAIN, SUMMARIZER, NAIVE = "gpt-4-turbo", "gpt-3.5-turbo", "naive"
WINDOWS = {MAIN: 2048, SUMMARIZER: 16_385}  # NAIVE: no limit, it is only counted
PRICES = {MAIN: (10.0, 30.0), SUMMARIZER: (0.5, 1.5), NAIVE: (10.0, 30.0)}  # $ per million in, out
MAX_TOKENS, PERSONA_TOKENS, SUMMARY_TOKENS = 256, 550, 100
SWITCH_AT = (15, 30, 45)
PHRASES = ("please switch to {} persona", "talk to {}", "use {}", "{} please", "can I talk to the {}?")
NAMES = ("SRE Coach", "Dashboard Architect", "Data Steward", "Release Manager", "Security Reviewer",
         "Cost Analyst", "API Designer", "Incident Scribe", "Capacity Planner",
         "Test Strategist")  # fmt: skip
MODULES = ("collections", "asyncio", "json", "pathlib", "functools", "itertools", "statistics",
           "textwrap", "argparse", "logging", "decimal", "datetime", "inspect", "typing")  # fmt: skip


def corpus() -> list[str]:
    """Real English sentences: the standard library's docstrings."""
    out: list[str] = []
    for name in MODULES:
        module = importlib.import_module(name)
        for attr in sorted(dir(module)):
            doc = inspect.getdoc(getattr(module, attr, None))
            if doc and len(doc) > 200:
                out.extend(s.strip() + "." for s in doc.replace("\n", " ").split(". ") if 40 < len(s) < 300)
    return list(dict.fromkeys(out))


def framed_count(enc: Any, messages: list[dict[str, str]]) -> int:
    """OpenAI's chat accounting (cookbook, gpt-3.5/4/4o): 3 per message, every field's encoded value
    (the role included), 1 more for a name, 3 to prime the reply."""
    total = 3
    for m in messages:
        total += 3 + sum(len(enc.encode(v)) for v in m.values())
        total += 1 if "name" in m else 0
    return total


@dataclass
class Seen:
    model: str
    prompt_tokens: int
    completion_tokens: int
    over_window: bool


class CountingUpstream:
    """POST /v1/chat/completions: count, check the window, answer deterministically."""

    def __init__(self, enc: Any, sentences: list[str]) -> None:
        self.enc, self.sentences, self.seen = enc, sentences, []  # type: ignore[var-annotated]
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def answer(self, question: str, tokens: int) -> str:
        seed = int.from_bytes(hashlib.blake2b(question.encode(), digest_size=4).digest(), "big")
        words: list[str] = []
        i = seed
        while len(self.enc.encode(" ".join(words))) < tokens:
            words.extend(self.sentences[i % len(self.sentences)].split())
            i += 7
        return self.enc.decode(self.enc.encode(" ".join(words))[:tokens])

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        model, messages = body["model"], body["messages"]
        prompt = framed_count(self.enc, messages)
        max_tokens = int(body.get("max_tokens") or 0)
        over = model in WINDOWS and prompt + max_tokens > WINDOWS[model]
        last = messages[-1]["content"]
        seed = int.from_bytes(hashlib.blake2b(last.encode(), digest_size=4).digest(), "big")
        length = SUMMARY_TOKENS if model == SUMMARIZER else 40 + seed % 121
        text = self.answer(last, min(length, max_tokens or length))
        completion = len(self.enc.encode(text))
        self.seen.append(Seen(model, prompt, completion, over))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return web.json_response(
            {"id": "b", "object": "chat.completion", "model": model, "choices": [choice], "usage": usage}
        )


@dataclass
class Turn:
    question: str
    switch: str = ""  # a Switch command sent before the question
    answer: str = ""
    persona: str = ""


@dataclass
class Run:
    """Upstream prompt tokens (and $) per user and turn; summary calls are included in their turn."""

    tokens: dict[tuple[int, int], int] = field(default_factory=dict)
    cost: dict[tuple[int, int], float] = field(default_factory=dict)
    summaries: int = 0
    summary_tokens: int = 0
    over_window: int = 0
    calls: int = 0

    def add(self, key: tuple[int, int], seen: list[Seen]) -> None:
        for s in seen:
            self.tokens[key] = self.tokens.get(key, 0) + s.prompt_tokens
            cost = s.prompt_tokens * PRICES[s.model][0]
            if s.model == SUMMARIZER:  # a summary's output is a cost of the summary feature
                cost += s.completion_tokens * PRICES[s.model][1]
                self.summaries += 1
                self.summary_tokens += s.prompt_tokens
            self.cost[key] = self.cost.get(key, 0.0) + cost / 1e6
            self.over_window += s.over_window
            self.calls += 1


def workload(users: int, turns: int, sentences: list[str]) -> list[list[Turn]]:
    out: list[list[Turn]] = []
    for u in range(users):
        plan: list[Turn] = []
        persona = u % len(NAMES)
        for t in range(turns):
            switch = ""
            if t == 0 or t in SWITCH_AT:
                persona = (persona + 3 * (t > 0)) % len(NAMES)
                switch = PHRASES[(u + t) % len(PHRASES)].format(NAMES[persona])
            if t == 0:
                question = "Hello! What can you help me with today?"
            elif t % 6 == 5:
                question = plan[t - 4].question  # asked again
            else:
                question = sentences[(u * 131 + t * 17) % len(sentences)].rstrip(".") + "?"
            plan.append(Turn(question, switch, persona=NAMES[persona]))
        out.append(plan)
    return out


def personas(sentences: list[str], enc: Any) -> list[dict[str, Any]]:
    out = []
    for i, name in enumerate(NAMES):
        text, k = f"You are {name}. ", i * 40
        while len(enc.encode(text)) < PERSONA_TOKENS:
            text += sentences[k % len(sentences)] + " "
            k += 3
        text = enc.decode(enc.encode(text)[:PERSONA_TOKENS])
        pid = name.lower().replace(" ", "-")
        out.append({"id": pid, "name": name, "category": "ops", "system_prompt": text})
    return out


def config(
    port: int, catalogue: list[dict[str, Any]], summary: dict[str, Any] | None, tmp: Path, recent: int
) -> dict[str, Any]:
    def deployment(model: str) -> dict[str, Any]:
        price = {"input_per_million": PRICES[model][0], "output_per_million": PRICES[model][1]}
        return {"provider": "openai", "model": model, "base_url": f"http://127.0.0.1:{port}/v1",
                "api_key": {"env": "BENCH_KEY"}, "context_window": WINDOWS[model],
                "default_max_tokens": MAX_TOKENS, "price": price}  # fmt: skip

    context: dict[str, Any] = {"encodings_dir": str(ENCODINGS), "max_recent_messages": recent}
    if summary is not None:
        context["summary"] = {"route": "summarize", **summary}
    return {
        "settings": {
            "listen": {"address": "127.0.0.1:0"},
            "telemetry": {"metrics": {"enabled": False}, "ledger": {"sqlite_path": str(tmp / "usage.db")}},
        },
        "policy": {
            "default_route": "chat",
            "deployments": {"main": deployment(MAIN), "summarizer": deployment(SUMMARIZER)},
            "routes": {"chat": {"deployments": ["main"]}, "summarize": {"deployments": ["summarizer"]}},
            "routing": {"probes": {"enabled": False}},
            "context": context,
            "personas": {"personas": catalogue, "max_prompt_tokens": 1000, "sessions": {"memory": True}},
        },
    }


async def through_sidecar(
    upstream: CountingUpstream,
    plans: list[list[Turn]],
    catalogue: list[dict[str, Any]],
    summary: dict[str, Any] | None,
    recent: int,
) -> Run:
    run = Run()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sidecar.yaml"
        path.write_text(yaml.safe_dump(config(upstream.port, catalogue, summary, Path(tmp), recent)))
        sidecar = build_server(load_config(path, {"BENCH_KEY": "sk-bench"}))
        await sidecar.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{sidecar.port}") as channel:
                stubs = Stubs(
                    generation_svc.GenerationServiceStub(channel),
                    conversation_svc.ConversationServiceStub(channel),
                )
                for u, plan in enumerate(plans):
                    await converse(stubs, upstream, run, u, plan)
        finally:
            await sidecar.stop(0)
    return run


@dataclass(frozen=True)
class Stubs:
    generation: generation_svc.GenerationServiceStub
    conversation: conversation_svc.ConversationServiceStub


async def converse(stubs: Stubs, upstream: CountingUpstream, run: Run, u: int, plan: list[Turn]) -> None:
    who = {"tenant_id": "bench", "user_id": f"user{u}", "conversation_id": f"conv{u}"}
    for t, turn in enumerate(plan):
        if turn.switch:
            reply = await stubs.conversation.Switch(personas_pb2.SwitchRequest(command=turn.switch, **who))
            assert reply.persona.display_name == turn.persona, (turn.switch, reply.persona.display_name)
        before = len(upstream.seen)
        message = gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text=turn.question)])
        config = gen.GenerationConfig(max_tokens=MAX_TOKENS)
        request = gen.GenerateRequest(input=gen.GenerationInput(messages=[message], config=config, **who))
        answer = await stubs.generation.Generate(request)
        turn.answer = "".join(p.text for p in answer.message.content if p.WhichOneof("kind") == "text")
        run.add((u, t), upstream.seen[before:])


async def naive(upstream: CountingUpstream, plans: list[list[Turn]], catalogue: list[dict[str, Any]]) -> Run:
    """Every persona and the full history, every turn, straight to the upstream."""
    run = Run()
    system = [{"role": "system", "content": p["system_prompt"]} for p in catalogue]
    async with ClientSession() as http:
        for u, plan in enumerate(plans):
            history: list[dict[str, str]] = []
            for t, turn in enumerate(plan):
                history.append({"role": "user", "content": turn.question})
                body = {"model": NAIVE, "messages": [*system, *history], "max_tokens": MAX_TOKENS}
                before = len(upstream.seen)
                url = f"http://127.0.0.1:{upstream.port}/v1/chat/completions"
                async with http.post(url, data=json.dumps(body)) as resp:
                    resp.raise_for_status()
                run.add((u, t), upstream.seen[before:])
                history.append({"role": "assistant", "content": turn.answer})
    return run


def report(base: Run, off: Run, on: Run, users: int, turns: int, recent: int) -> bool:
    w = sys.stdout.write

    def at(run: Run, t: int) -> float:
        return sum(run.tokens.get((u, t), 0) for u in range(users)) / users

    def cut(a: float, b: float) -> str:
        return f"{100 * (1 - a / b):.1f} %"

    w(f"{users} users x {turns} turns, {len(NAMES)} personas of {PERSONA_TOKENS} tokens, switches at turns "
      f"{', '.join(str(s + 1) for s in SWITCH_AT)}, every 6th question asked again; "
      f"main window {WINDOWS[MAIN]:,}, max_tokens {MAX_TOKENS}\n\n")  # fmt: skip
    w("| upstream prompt tokens per call | naive | memory + trimming | cut | + summaries | cut |\n")
    w("|---|---|---|---|---|---|\n")
    for t in sorted({0, 9, 19, 29, 39, 49, turns - 1}):
        if t < turns:
            b, o, s = at(base, t), at(off, t), at(on, t)
            w(f"| turn {t + 1} | {b:,.0f} | {o:,.0f} | {cut(o, b)} | {s:,.0f} | {cut(s, b)} |\n")
    totals = [sum(r.tokens.values()) for r in (base, off, on)]
    costs = [sum(r.cost.values()) for r in (base, off, on)]
    w(f"| **whole conversations, tokens** | {totals[0]:,} | {totals[1]:,} | {cut(totals[1], totals[0])} "
      f"| {totals[2]:,} | {cut(totals[2], totals[0])} |\n")  # fmt: skip
    w(f"| **whole conversations, input $** | {costs[0]:.2f} | {costs[1]:.2f} | {cut(costs[1], costs[0])} "
      f"| {costs[2]:.2f} | {cut(costs[2], costs[0])} |\n")  # fmt: skip
    w(f"| upstream calls (of them summaries) | {base.calls:,} | {off.calls:,} | | "
      f"{on.calls:,} ({on.summaries}, {on.summary_tokens:,} tokens) | |\n")  # fmt: skip
    w(f"| calls over the window | {base.over_window} | {off.over_window} | | {on.over_window} | |\n\n")
    w(f"INFO  memory + trimming alone (max_recent_messages {recent}) cut {cut(totals[1], totals[0])}\n")
    bars = [
        (f"memory + trimming + summaries cut >= 90 % of upstream prompt tokens over whole conversations "
         f"({cut(totals[2], totals[0])})", totals[2] <= 0.1 * totals[0]),
        (f"summaries on send fewer prompt tokens than off, summary calls included "
         f"({totals[2]:,} < {totals[1]:,})", totals[2] < totals[1]),
        (f"summaries on cost less than off, summary calls included (${costs[2]:.2f} < ${costs[1]:.2f})",
         costs[2] < costs[1]),
        (f"0 calls over a deployment's window by the provider's count ({off.over_window + on.over_window})",
         off.over_window + on.over_window == 0),
    ]  # fmt: skip
    for text, ok in bars:
        w(f"{'PASS' if ok else 'FAIL'}  {text}\n")
    return all(ok for _, ok in bars)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--summary", type=json.loads, default={}, help="policy.context.summary overrides")
    parser.add_argument("--max-recent", type=int, default=10, help="policy.context.max_recent_messages")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    enc = load_encoding(ENCODINGS, "cl100k_base")
    sentences = corpus()
    catalogue = personas(sentences, enc)
    upstream = CountingUpstream(enc, sentences)
    await upstream.start()
    try:
        plans = workload(args.users, args.turns, sentences)
        off = await through_sidecar(upstream, plans, catalogue, None, args.max_recent)
        on = await through_sidecar(upstream, plans, catalogue, args.summary, args.max_recent)
        base = await naive(upstream, plans, catalogue)
    finally:
        await upstream.close()
    return 0 if report(base, off, on, args.users, args.turns, args.max_recent) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
