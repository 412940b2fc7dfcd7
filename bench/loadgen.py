"""The load generator: closed-loop workers calling the upstream directly or through the sidecar.

`concurrency` workers each send requests back to back. After --warmup seconds the measured
window opens (CPU counters of the watched processes and of every CPU are read), and closes
--duration seconds later (read again); only requests completed inside the window count toward
throughput and latency. Errors are counted over the whole run. Prints one RunResult as JSON.
--via bare drives bench/bare_server.py with the same gRPC client code and checks as --via sidecar.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
import grpc
import uvloop
from common import (
    BARE,
    DIRECT,
    SIDECAR,
    STREAM,
    UNARY,
    RunResult,
    busy_fractions,
    cpu_ticks,
    process_cpu_seconds,
)

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import generation_service_pb2_grpc as generation_svc

PROMPT = "Say hello in one short sentence."
UPSTREAM_MODEL = "bench-model"
ERROR_BACKOFF_SECONDS = 0.01
DRAIN_SLACK_SECONDS = 5.0

# Sends one request; returns the perf_counter() time of its first content chunk (streams) or None, and
# the overhead the sidecar's own summary reports in seconds (None when direct).
Reply = tuple[float | None, float | None]
Send = Callable[[], Awaitable[Reply]]


class RequestFailed(Exception):
    """An answer that arrived but is not a complete, successful one."""


@dataclass(frozen=True)
class Options:
    via: str
    kind: str
    target: str
    route: str
    concurrency: int
    warmup: float
    duration: float
    timeout: float
    stagger: float
    watch: dict[str, int]


@dataclass(frozen=True, slots=True)
class Sample:
    end: float
    latency: float
    ttfc: float | None
    reported_overhead: float | None  # GenerationSummary.overhead of the sidecar's answer


@dataclass
class Tally:
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Snapshot:
    at: float
    processes: dict[str, float]
    cpus: dict[str, tuple[int, int]]


# --- direct: aiohttp straight to the upstream -------------------------------------------------


def upstream_body(stream: bool) -> bytes:
    body: dict[str, Any] = {"model": UPSTREAM_MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return json.dumps(body, separators=(",", ":")).encode()


async def direct_unary(session: aiohttp.ClientSession, url: str, body: bytes) -> Reply:
    async with session.post(url, data=body, headers={"content-type": "application/json"}) as resp:
        data = await resp.read()
        if resp.status != 200 or b'"choices"' not in data:
            raise RequestFailed(f"HTTP {resp.status}")
    return None, None


class SseScanner:
    """Finds, in SSE bytes as they arrive, when the first content event came and whether [DONE] did."""

    def __init__(self) -> None:
        self._buffer = b""
        self.first_content_at: float | None = None
        self.done = False

    def feed(self, data: bytes, now: float) -> None:
        self._buffer += data
        *events, self._buffer = self._buffer.split(b"\n\n")
        for event in events:
            payload = event.removeprefix(b"data: ").strip()
            if payload == b"[DONE]":
                self.done = True
            elif self.first_content_at is None and payload and _has_content(payload):
                self.first_content_at = now


def _has_content(payload: bytes) -> bool:
    choices = json.loads(payload).get("choices") or []
    return any((choice.get("delta") or {}).get("content") for choice in choices)


async def direct_stream(session: aiohttp.ClientSession, url: str, body: bytes) -> Reply:
    scanner = SseScanner()
    async with session.post(url, data=body, headers={"content-type": "application/json"}) as resp:
        if resp.status != 200:
            raise RequestFailed(f"HTTP {resp.status}")
        async for data in resp.content.iter_any():
            scanner.feed(data, time.perf_counter())
    if scanner.first_content_at is None or not scanner.done:
        raise RequestFailed("stream ended without content or without [DONE]")
    return scanner.first_content_at, None


@asynccontextmanager
async def direct_sender(opts: Options) -> AsyncIterator[Send]:
    connector = aiohttp.TCPConnector(limit=opts.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        send = direct_stream if opts.kind == STREAM else direct_unary
        yield partial(send, session, opts.target, upstream_body(opts.kind == STREAM))


# --- via the sidecar: grpc.aio ----------------------------------------------------------------


def sidecar_input(route: str) -> gen.GenerationInput:
    return gen.GenerationInput(
        model=route, messages=[gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text=PROMPT)])]
    )


def reported_overhead(response: gen.GenerateResponse) -> float | None:
    if not response.HasField("summary"):
        return None
    overhead = response.summary.overhead
    return overhead.seconds + overhead.nanos / 1e9


async def sidecar_unary(stub: Any, request: gen.GenerateRequest, seconds: float) -> Reply:
    response: gen.GenerateResponse = await stub.Generate(request, timeout=seconds)
    if not any(part.text for part in response.message.content):
        raise RequestFailed("empty text")
    return None, reported_overhead(response)


async def sidecar_stream(stub: Any, request: gen.StreamGenerateRequest, seconds: float) -> Reply:
    first: float | None = None
    result: gen.GenerateResponse | None = None
    async for event in stub.StreamGenerate(request, timeout=seconds):
        kind = event.WhichOneof("event")
        if kind == "delta" and first is None:
            first = time.perf_counter()
        elif kind == "result":  # the stream ends with the whole GenerateResponse
            result = event.result
    if first is None or result is None:
        raise RequestFailed("stream without a delta or without a summary")
    return first, reported_overhead(result)


@asynccontextmanager
async def sidecar_sender(opts: Options) -> AsyncIterator[Send]:
    async with grpc.aio.insecure_channel(opts.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), timeout=opts.timeout)
        stub = generation_svc.GenerationServiceStub(channel)  # type: ignore[no-untyped-call]
        if opts.kind == STREAM:
            streamed = gen.StreamGenerateRequest(input=sidecar_input(opts.route))
            yield partial(sidecar_stream, stub, streamed, opts.timeout)
        else:
            request = gen.GenerateRequest(input=sidecar_input(opts.route))
            yield partial(sidecar_unary, stub, request, opts.timeout)


# --- the closed loop --------------------------------------------------------------------------


def describe(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"gRPC {exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"[:200]


async def worker(send: Send, stop: asyncio.Event, tally: Tally, seconds: float, offset: float) -> None:
    await asyncio.sleep(offset)
    while not stop.is_set():
        started = time.perf_counter()
        try:
            async with asyncio.timeout(seconds):
                first, overhead = await send()
        except Exception as exc:  # every failure is counted; none stops the run
            tally.errors[describe(exc)] += 1
            await asyncio.sleep(ERROR_BACKOFF_SECONDS)
            continue
        end = time.perf_counter()
        ttfc = None if first is None else first - started
        tally.samples.append(Sample(end, end - started, ttfc, overhead))


def snapshot(watch: dict[str, int]) -> Snapshot:
    processes = {name: process_cpu_seconds(pid) for name, pid in watch.items()}
    processes["loadgen"] = process_cpu_seconds(os.getpid())
    return Snapshot(at=time.perf_counter(), processes=processes, cpus=cpu_ticks())


async def run(opts: Options) -> RunResult:
    tally = Tally()
    stop = asyncio.Event()
    make_sender = direct_sender if opts.via == DIRECT else sidecar_sender  # bare speaks the same gRPC
    async with make_sender(opts) as send:
        offsets = (opts.stagger * i / opts.concurrency for i in range(opts.concurrency))
        tasks = [asyncio.create_task(worker(send, stop, tally, opts.timeout, o)) for o in offsets]
        try:
            before, after = await measure(opts, stop, tasks, tally)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return summarize(opts, tally, before, after)


async def measure(
    opts: Options, stop: asyncio.Event, tasks: list[asyncio.Task[None]], tally: Tally
) -> tuple[Snapshot, Snapshot]:
    """Warm up, take the window's two snapshots, then stop the workers and let them finish."""
    await asyncio.sleep(opts.warmup)
    before = snapshot(opts.watch)
    await asyncio.sleep(opts.duration)
    after = snapshot(opts.watch)
    stop.set()
    _, pending = await asyncio.wait(tasks, timeout=opts.timeout + DRAIN_SLACK_SECONDS)
    if pending:
        tally.errors["still running when the drain timed out"] += len(pending)
    return before, after


def percentile_ms(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted seconds, in milliseconds."""
    if not values:
        return None
    return values[max(0, math.ceil(q * len(values)) - 1)] * 1000


def summarize(opts: Options, tally: Tally, before: Snapshot, after: Snapshot) -> RunResult:
    window = [s for s in tally.samples if before.at <= s.end <= after.at]
    latencies = sorted(s.latency for s in window)
    ttfcs = sorted(s.ttfc for s in window if s.ttfc is not None)
    reported = sorted(s.reported_overhead for s in window if s.reported_overhead is not None)
    cpu = {name: after.processes[name] - before.processes[name] for name in after.processes}
    return RunResult(
        via=opts.via,
        kind=opts.kind,
        concurrency=opts.concurrency,
        window_seconds=after.at - before.at,
        completed=len(window),
        errors=sum(tally.errors.values()),
        error_samples=dict(tally.errors.most_common(3)),
        p50_ms=percentile_ms(latencies, 0.50),
        p99_ms=percentile_ms(latencies, 0.99),
        ttfc_p50_ms=percentile_ms(ttfcs, 0.50),
        ttfc_p99_ms=percentile_ms(ttfcs, 0.99),
        reported_overhead_p50_ms=percentile_ms(reported, 0.50),
        cpu_seconds=cpu,
        cpu_busy=busy_fractions(before.cpus, after.cpus),
    )


def parse_watch(items: Sequence[str]) -> dict[str, int]:
    pairs = (item.partition("=") for item in items)
    return {name: int(pid) for name, _, pid in pairs}


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--via", choices=(DIRECT, SIDECAR, BARE), required=True)
    parser.add_argument("--kind", choices=(UNARY, STREAM), required=True)
    parser.add_argument("--target", required=True, help="direct: the upstream URL; sidecar, bare: host:port")
    parser.add_argument("--route", default="", help="the sidecar route alias (GenerateRequest.model)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request bound, seconds")
    parser.add_argument(
        "--stagger",
        type=float,
        default=0.0,
        help="spread the workers' first requests evenly over this many seconds (against lockstep bursts)",
    )
    parser.add_argument("--watch", action="append", default=[], metavar="NAME=PID", help="CPU to account")
    args = parser.parse_args(argv)
    return Options(
        via=args.via,
        kind=args.kind,
        target=args.target,
        route=args.route,
        concurrency=args.concurrency,
        warmup=args.warmup,
        duration=args.duration,
        timeout=args.timeout,
        stagger=args.stagger,
        watch=parse_watch(args.watch),
    )


def main() -> int:
    result = uvloop.run(run(parse_options()))
    sys.stdout.write(result.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
