"""The quota layer's own cost per call, in process: `make bench` runs it after the load benchmark.

A QuotaLayer over an instant terminal handler, one call at a time, with four limits per call (the
tier's requests per minute, a daily token budget, a monthly USD budget, a concurrency cap):
CPU microseconds and wall-clock microseconds (p50, p99) per call, for no quota layer, the
in-memory store, and Redis (a redis-server started here on a free port; two round trips per call:
reserve and settle).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncGenerator

import uvloop
from calls import CLOCK, bench_call

from sidecar.config.schema import Policy
from sidecar.core.layer import Handler
from sidecar.core.types import (
    Call,
    Chunk,
    FinishReason,
    GenerationParams,
    Usage,
)
from sidecar.pipeline.quota import QuotaLayer
from sidecar.quota.service import QuotaService
from sidecar.quota.signals import QuotaSignals
from sidecar.quota.store import MemoryQuotaStore, QuotaStore
from sidecar.routing.table import RouteTable

FINAL = Chunk(text="ok", finish_reason=FinishReason.STOP, usage=Usage(10, 1))
POLICY = Policy.model_validate(
    {
        "default_route": "r",
        "deployments": {"a": {"provider": "echo", "model": "a", "price": {"input_per_million": 1}}},
        "routes": {"r": {"deployments": ["a"]}},
        "tiers": {"free": {"requests_per_minute": 1_000_000_000}},
        "quota": {
            "limits": [
                {"name": "tokens", "metric": "tokens", "window": "day", "limit": 1e15},
                {"name": "usd", "metric": "usd", "scope": "tenant", "window": "month", "limit": 1e9},
                {"name": "inflight", "metric": "concurrency", "limit": 100},
            ]
        },
    }
)
TABLE = RouteTable.from_policy(POLICY)


async def terminal(call: Call) -> AsyncGenerator[Chunk, None]:
    call.record.served_by(TABLE.resolve("").targets[0])
    call.record.upstream_finished(FINAL.finish_reason, FINAL.usage or Usage())
    yield FINAL


def call(i: int) -> Call:
    return bench_call(
        params=GenerationParams(max_tokens=64), tenant_id="bench", user_id=f"user{i % 100}", tier="free"
    )


def layer(store: QuotaStore | None) -> Handler:
    if store is None:
        return terminal
    assert POLICY.quota is not None
    service = QuotaService(POLICY.quota, POLICY.tiers, store, CLOCK, QuotaSignals())
    return QuotaLayer(terminal, quota=service, table=TABLE)


async def measure(handler: Handler, calls: int) -> tuple[float, float, float]:
    """CPU µs per call, wall µs p50 and p99."""
    for i in range(min(500, calls)):  # warm-up
        async for _chunk in handler(call(i)):
            pass
    walls = []
    started = time.process_time()
    for i in range(calls):
        t0 = time.perf_counter()
        async for _chunk in handler(call(i)):
            pass
        walls.append(time.perf_counter() - t0)
    cpu = (time.process_time() - started) / calls * 1e6
    q = statistics.quantiles(walls, n=100)
    return cpu, q[49] * 1e6, q[98] * 1e6


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not os.path.exists(binary):
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="bench-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            tmp,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.01)
    proc.kill()
    return None


async def main(calls: int) -> None:
    rows = ["| quota layer | CPU µs/call | wall p50 µs | wall p99 µs |", "|---|---|---|---|"]
    cells: list[tuple[str, QuotaStore | None]] = [("none", None), ("memory store", MemoryQuotaStore(CLOCK))]
    redis = start_redis()
    try:
        if redis is not None:
            from sidecar.quota.redis_store import RedisQuotaStore

            store = RedisQuotaStore.from_url(redis[1], CLOCK, prefix="bench", timeout=2.0)
            cells.append(("Redis store", store))
        for name, store in cells:
            cpu, p50, p99 = await measure(layer(store), calls)
            rows.append(f"| {name} | {cpu:.1f} | {p50:.1f} | {p99:.1f} |")
            if store is not None:
                await store.aclose()
    finally:
        if redis is not None:
            redis[0].terminate()
            redis[0].wait()
    sys.stdout.write(f"\nQuota layer alone, {calls} unary calls one at a time, 4 limits per call:\n\n")
    sys.stdout.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5_000)
    uvloop.run(main(parser.parse_args().calls))
