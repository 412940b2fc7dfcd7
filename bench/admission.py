"""Priority admission under overload: `make bench` runs it (a script, never a timed test).

A sidecar (capacity C calls at once, a queue of Q) in front of a loopback OpenAI-compatible upstream
that answers after a fixed delay D. First the unloaded case: CRITICAL calls one at a time. Then
offered load at 3x capacity (3 * C / D calls per second, open loop, Poisson arrivals) with mixed
priorities (10 % CRITICAL, 30 % each LOW, NORMAL, HIGH). PASS when no CRITICAL call is shed, CRITICAL
p99 stays within the stated bound (unloaded p99 + 2 * D: at worst a critical call waits for one
running call to end), and the shedding falls on the lower priorities (LOW shed the most).
Everything runs in one process on a shared machine: figures vary from run to run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
import uvloop
from aiohttp import web
from upstream import FIXTURES, load_canned, make_handler

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import generation_service_pb2_grpc as svc
from sidecar._gen.orchestrator.v1 import priority_pb2
from sidecar.app import build_server
from sidecar.config.load import load_config

MIX = (("CRITICAL", 0.1), ("HIGH", 0.3), ("NORMAL", 0.3), ("LOW", 0.3))


def config_yaml(port: int, capacity: int, queue: int) -> str:
    return f"""
settings:
  listen: {{address: "127.0.0.1:0"}}
  telemetry: {{metrics: {{enabled: false}}, ledger: {{backend: none}}}}
policy:
  default_route: chat
  deployments:
    up:
      provider: openai
      model: gpt-4o-mini
      base_url: "http://127.0.0.1:{port}/v1"
  routes:
    chat: {{deployments: [up]}}
  routing: {{probes: {{enabled: false}}}}
  admission: {{capacity: {capacity}, queue_size: {queue}, retry_after_seconds: 1}}
"""


async def one(stub: svc.GenerationServiceStub, priority: str, out: list[tuple[str, float, str]]) -> None:
    request = gen.GenerateRequest(
        input=gen.GenerationInput(
            messages=[gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text="hello")])],
            tenant_id="bench",
            user_id="u",
            priority=priority_pb2.Priority.Value(f"PRIORITY_{priority}"),
        )
    )
    started = time.perf_counter()
    try:
        await stub.Generate(request, timeout=30)
        result = "OK"
    except grpc.aio.AioRpcError as err:
        result = err.code().name
    out.append((priority, time.perf_counter() - started, result))


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(0.99 * len(ordered) + 0.999999) - 1)] if ordered else float("nan")


async def run(args: argparse.Namespace) -> bool:
    runner = web.ServerRunner(web.Server(make_handler(load_canned(FIXTURES), args.delay), access_log=None))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sidecar.yaml"
        path.write_text(config_yaml(port, args.capacity, args.queue))
        sidecar = build_server(load_config(path, {}))
        await sidecar.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{sidecar.port}")
        stub = svc.GenerationServiceStub(channel)
        try:
            return await measure(stub, args)
        finally:
            await channel.close()
            await sidecar.stop(0)
            await runner.cleanup()


async def measure(stub: svc.GenerationServiceStub, args: argparse.Namespace) -> bool:
    unloaded: list[tuple[str, float, str]] = []
    for _ in range(args.unloaded_calls):
        await one(stub, "CRITICAL", unloaded)
    base = p99([s for _, s, r in unloaded if r == "OK"])
    rate = 3 * args.capacity / args.delay
    rng = random.Random(7)
    loaded: list[tuple[str, float, str]] = []
    tasks: list[asyncio.Task[None]] = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        priority = rng.choices([p for p, _ in MIX], [w for _, w in MIX])[0]
        tasks.append(asyncio.ensure_future(one(stub, priority, loaded)))
        await asyncio.sleep(rng.expovariate(rate))
    await asyncio.gather(*tasks)
    return verdict(base, loaded, args, rate)


def verdict(base: float, loaded: list[tuple[str, float, str]], args: argparse.Namespace, rate: float) -> bool:
    bound = base + 2 * args.delay
    shed = Counter(p for p, _, r in loaded if r == "UNAVAILABLE")
    calls = Counter(p for p, _, _ in loaded)
    out = sys.stdout
    out.write(
        f"admission overload: capacity {args.capacity}, queue {args.queue}, "
        f"upstream delay {args.delay * 1000:.0f} ms, "
        f"offered {rate:.0f} calls/s (3x capacity) for {args.seconds:.0f} s; shared machine, one process\n"
    )
    out.write(f"unloaded CRITICAL p99 {base * 1000:.1f} ms; bound under load {bound * 1000:.1f} ms\n")
    out.write(f"{'priority':<10}{'calls':>7}{'shed':>7}{'shed %':>8}{'ok p50 ms':>11}{'ok p99 ms':>11}\n")
    for priority, _ in MIX:
        ok = sorted(s for p, s, r in loaded if p == priority and r == "OK")
        p50 = ok[len(ok) // 2] * 1000 if ok else float("nan")
        n, dropped = calls[priority], shed[priority]
        pct = 100 * dropped / max(n, 1)
        out.write(f"{priority:<10}{n:>7}{dropped:>7}{pct:>8.1f}{p50:>11.1f}{p99(ok) * 1000:>11.1f}\n")

    def share(priority: str) -> float:
        return shed[priority] / calls[priority] if calls[priority] else 0.0

    other = Counter(r for _, _, r in loaded if r not in ("OK", "UNAVAILABLE"))
    critical = [s for p, s, r in loaded if p == "CRITICAL" and r == "OK"]
    ok = (
        shed["CRITICAL"] == 0
        and not other
        and p99(critical) <= bound
        and share("LOW") >= share("NORMAL") >= share("HIGH")
        and sum(shed.values()) > 0
    )
    if other:
        out.write(f"other outcomes: {dict(other)}\n")
    out.write(("PASS" if ok else "FAIL") + "\n")
    return ok


def main() -> int:
    logging.disable(logging.WARNING)  # each shed call is logged; the table says it all
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.1, help="the upstream's answer time, seconds")
    parser.add_argument("--seconds", type=float, default=8.0, help="how long the overload lasts")
    parser.add_argument("--unloaded-calls", type=int, default=50)
    return 0 if uvloop.run(run(parser.parse_args())) else 1


if __name__ == "__main__":
    sys.exit(main())
