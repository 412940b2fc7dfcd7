"""The semantic cache on a replayed workload of paraphrased questions, with the local model.

Run: .venv/bin/python bench/semantic_cache.py [--threshold T] [--redis]. The workload
(bench/semantic_questions.py) is 50 groups: an original question, 2-3 paraphrases and 1-2
questions near in wording but different in meaning. Replayed group by group through the real
SemanticCacheLayer, the embedding service's local model and the memory store, in one tenant and
route: the original misses and is stored; a paraphrase answered with its own group's answer is a
right hit; any other hit (a different-meaning question, or a paraphrase given another group's
answer) is a false hit. Tokens saved are the prompt and completion tokens the hits did not spend
(answers of ANSWER_TOKENS tokens). Then a threshold sweep over the same vectors (the same logic in
numpy), and the store's search cost by partition size, in memory and (--redis) on a local
redis-server. Prints JSON lines; timings depend on how busy the machine is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
from semantic_questions import GROUPS

from sidecar.cache.semantic import MemorySemanticStore, SemanticStore
from sidecar.cache.semantic_key import Partition
from sidecar.config.cache import CacheSettings
from sidecar.config.schema import HttpSettings, Policy
from sidecar.core.clock import Deadline, SystemClock
from sidecar.core.layer import collect
from sidecar.core.outcome import Outcome
from sidecar.core.tokens import count_prompt_tokens
from sidecar.core.types import Call, Chunk, Credentials, FinishReason, GenerationParams, Message, Role, Usage
from sidecar.embeddings.routing import EmbeddingDeployments, EmbeddingRouter
from sidecar.embeddings.service import EmbeddingService
from sidecar.pipeline.semantic import SemanticCacheLayer, SemanticObserver
from sidecar.providers._http import HttpClient
from sidecar.routing.breaker import BreakerPolicy, Breakers
from sidecar.routing.table import RouteTable

ANSWER_TOKENS = 150
CLOCK = SystemClock()


def workload() -> list[tuple[int, str, str]]:
    """(group, kind, question) in replay order: original, paraphrases, different-meaning ones."""
    rows: list[tuple[int, str, str]] = []
    for g, group in enumerate(GROUPS):
        rows.append((g, "original", group.original))
        rows += [(g, "paraphrase", q) for q in group.paraphrases]
        rows += [(g, "different", q) for q in group.different]
    return rows


class Answers:
    """The provider: answers question i with a text naming it, of ANSWER_TOKENS tokens."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self.calls += 1
        usage = Usage(count_prompt_tokens([call.messages[-1].text]), ANSWER_TOKENS)
        call.record.upstream_finished(FinishReason.STOP, usage)
        yield Chunk(text=f"answer:{call.metadata['q']}")
        yield Chunk(finish_reason=FinishReason.STOP, usage=usage)


def service() -> EmbeddingService:
    p = Policy.model_validate(
        {
            "default_route": "m",
            "deployments": {"d": {"provider": "echo", "model": "e"}},
            "routes": {"m": {"deployments": ["d"]}},
        }
    )
    deployments = EmbeddingDeployments(
        p.embeddings, http=HttpClient(HttpSettings(), CLOCK), secret=lambda _: None
    )
    router = EmbeddingRouter(p.embeddings, deployments, Breakers(BreakerPolicy(), CLOCK))
    return EmbeddingService(p.embeddings, router, clock=CLOCK)


def call(index: int, text: str) -> Call:
    return Call(
        request_id=f"q{index}", model="", messages=(Message(Role.USER, text),),
        params=GenerationParams(temperature=0.0), tenant_id="acme", user_id="ann", conversation_id="",
        metadata={"q": str(index)}, stream=False, deadline=Deadline.after(60, CLOCK),
        credentials=Credentials(), record=Outcome(started_at=CLOCK.monotonic()),
    )  # fmt: skip


async def replay(embeddings: EmbeddingService, threshold: float) -> dict[str, Any]:
    rows = workload()
    semantic = {"enabled": True, "threshold": threshold}
    policy = Policy.model_validate(
        {
            "default_route": "m",
            "deployments": {"d": {"provider": "echo", "model": "e"}},
            "routes": {"m": {"deployments": ["d"], "cache": {"semantic": semantic}}},
        }
    )
    lookups: list[str] = []
    layer = SemanticCacheLayer(
        Answers(), store=MemorySemanticStore(max_entries=10_000), embed=embeddings.prompt_embedding,
        settings=CacheSettings(), default_embedding_route="local", table=RouteTable.from_policy(policy),
        clock=CLOCK, observer=SemanticObserver(on_lookup=lookups.append),
    )  # fmt: skip
    counts = {"right_hits": 0, "false_hits_paraphrase": 0, "false_hits_different": 0}
    spent = saved = 0
    started = time.perf_counter()
    for i, (group, kind, text) in enumerate(rows):
        c = call(i, text)
        answer, _ = await collect(layer, c)
        tokens = count_prompt_tokens([text]) + ANSWER_TOKENS
        if not c.record.cache_hit:
            spent += tokens
            continue
        saved += tokens
        served_group = rows[int(answer.removeprefix("answer:"))][0]
        if kind == "paraphrase" and served_group == group:
            counts["right_hits"] += 1
        else:
            counts["false_hits_" + ("paraphrase" if kind == "paraphrase" else "different")] += 1
    elapsed = time.perf_counter() - started
    paraphrases = sum(1 for r in rows if r[1] == "paraphrase")
    different = sum(1 for r in rows if r[1] == "different")
    return {
        "bench": "semantic_cache_replay", "threshold": threshold, "queries": len(rows),
        "paraphrases": paraphrases, "different_meaning": different,
        "paraphrase_hit_rate": round(counts["right_hits"] / paraphrases, 3),
        "false_hit_rate_different": round(counts["false_hits_different"] / different, 3),
        "false_hits_paraphrase_wrong_group": counts["false_hits_paraphrase"],
        "overall_hit_rate": round(lookups.count("hit") / len(rows), 3),
        "near_misses": lookups.count("near_miss"),
        "tokens_saved_ratio": round(saved / (saved + spent), 3), "tokens_saved": saved,
        "ms_per_query": round(elapsed / len(rows) * 1000, 2),
    }  # fmt: skip


async def sweep(embeddings: EmbeddingService) -> list[dict[str, Any]]:
    """The replay's logic over precomputed vectors, for several thresholds."""
    rows = workload()
    deadline = Deadline.after(600, CLOCK)
    vectors = [await embeddings.prompt_vector("acme", "local", text, deadline) for _, _, text in rows]
    out = []
    for threshold in (0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.95):
        stored: list[int] = []
        right = false_diff = false_para = 0
        for i, (group, kind, _) in enumerate(rows):
            if stored:
                scores = np.stack([vectors[j] for j in stored]) @ vectors[i]
                best = int(np.argmax(scores))
                if scores[best] >= threshold:
                    same = rows[stored[best]][0] == group
                    if kind == "paraphrase" and same:
                        right += 1
                    elif kind == "paraphrase":
                        false_para += 1
                    else:
                        false_diff += 1
                    continue
            stored.append(i)
        paraphrases = sum(1 for r in rows if r[1] == "paraphrase")
        different = sum(1 for r in rows if r[1] == "different")
        out.append({"bench": "semantic_cache_sweep", "threshold": threshold,
                    "paraphrase_hit_rate": round(right / paraphrases, 3),
                    "false_hit_rate_different": round(false_diff / different, 3),
                    "false_hits_paraphrase_wrong_group": false_para})  # fmt: skip
    return out


async def search_cost(store: SemanticStore, name: str, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    answer = b"x" * 600  # a short stored answer
    out = []
    for size in sizes:
        p = Partition("acme", f"{name}-{size}")
        for _ in range(size):
            v = rng.standard_normal(384).astype(np.float32)
            await store.add(p, v / np.linalg.norm(v), answer, now=CLOCK.wall(), ttl=600, max_entries=size)
        q = rng.standard_normal(384).astype(np.float32)
        q /= np.linalg.norm(q)
        repeat = 20
        started = time.perf_counter()
        for _ in range(repeat):
            await store.search(p, q, CLOCK.wall())
        ms = (time.perf_counter() - started) / repeat * 1000
        out.append(
            {"bench": "semantic_store_search", "store": name, "partition_entries": size, "ms": round(ms, 3)}
        )
    return out


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not shutil.which(binary):
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="bench-redis-")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.terminate()
    return None


async def main(threshold: float, redis: bool) -> None:
    embeddings = service()
    load = time.perf_counter()
    await embeddings.prompt_vector("acme", "local", "warm up", Deadline.after(60, CLOCK))
    lines: list[dict[str, Any]] = [
        {"bench": "local_model_first_use_seconds", "value": round(time.perf_counter() - load, 2)}
    ]
    lines.append(await replay(embeddings, threshold))
    lines += await sweep(embeddings)
    memory = MemorySemanticStore(max_entries=100_000)
    lines += await search_cost(memory, "memory", (100, 1000, 10_000))
    if redis and (started := start_redis()) is not None:
        from sidecar.cache.semantic_redis import RedisSemanticStore
        from sidecar.stores.redis import RedisEndpoint, RedisOps

        process, url = started
        store = RedisSemanticStore(RedisOps(RedisEndpoint(url, timeout=5.0)), prefix="bench")
        try:
            lines += await search_cost(store, "redis", (100, 1000, 10_000))
        finally:
            await store.aclose()
            process.terminate()
            process.wait()
    await embeddings.aclose()
    for line in lines:
        print(json.dumps(line))  # noqa: T201


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--redis", action="store_true", help="also time searches on a local redis-server")
    args = parser.parse_args()
    asyncio.run(main(args.threshold, args.redis))
