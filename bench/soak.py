"""Memory soak: RSS of a real `sidecar serve` over a long mixed load with bursts of large requests.

A loopback OpenAI-compatible upstream (bench/upstream.py) and the sidecar run as processes; this
script drives them with a gRPC client: `--concurrency` callers loop on small unary and stream calls,
a scraper GETs /metrics, /readyz and /livez every `--scrape` seconds as Prometheus and the kubelet
would (each a connection of its own), and every `--large-every` seconds a burst of `--large-burst`
large requests arrives (alternately one of about 1.9 MB that is served, `max_total_chars` allows
2 M characters, and one of about 7.9 MB, near the 8 MiB receive limit, that is refused
INVALID_ARGUMENT). RSS is read from /proc every
`--sample` seconds and printed. The verdict uses the samples taken just before each burst (the
settled memory, after the previous burst was served and trimmed): after `--warmup`, their
least-squares slope must stay under `--max-slope` MB/min and the median of their last third may
exceed that of their first third by at most `--max-growth` MB, else FAIL (exit 1).

    .venv/bin/python bench/soak.py --duration 1800             # the 30-minute soak (`make bench`)
    .venv/bin/python bench/soak.py --duration 180 --sample 5   # a short look
    .venv/bin/python bench/soak.py --duration 180 --no-trim --arena-max 0   # glibc defaults, to compare
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import grpc
import yaml
from common import process_memory

from bench import (
    SIDECAR_CPU,
    BenchError,
    Processes,
    Service,
    sidecar_config,
    start_logged,
    start_upstream,
    wait_for_line,
)
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import generation_service_pb2_grpc as svc

CHANNEL_OPTIONS = [("grpc.max_send_message_length", 16 << 20), ("grpc.max_receive_message_length", 16 << 20)]


@dataclass
class Soak:
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (seconds, RSS MB, calls)
    settled: list[tuple[float, float]] = field(default_factory=list)  # just before each burst
    calls: int = 0
    scrapes: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def message(text: str) -> gen.Message:
    return gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text=text)])


def large_requests() -> tuple[gen.GenerateRequest, gen.GenerateRequest]:
    served = gen.GenerateRequest(
        input=gen.GenerationInput(messages=[message(f"part {i} " + "word " * 38_000) for i in range(10)])
    )
    refused = gen.GenerateRequest(
        input=gen.GenerationInput(messages=[message("x" * 190_000) for _ in range(42)])
    )
    return served, refused


async def caller(stub: svc.GenerationServiceStub, soak: Soak, stop: asyncio.Event, n: int) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        text = f"caller {n} call {i}: hello there, a small question"
        try:
            if i % 2:
                await stub.Generate(
                    gen.GenerateRequest(input=gen.GenerationInput(messages=[message(text)])), timeout=30
                )
            else:
                async for _ in stub.StreamGenerate(
                    gen.StreamGenerateRequest(input=gen.GenerationInput(messages=[message(text)])), timeout=30
                ):
                    pass
        except grpc.aio.AioRpcError as err:
            soak.errors[err.code().name] = soak.errors.get(err.code().name, 0) + 1
        soak.calls += 1


async def bursts(stub: svc.GenerationServiceStub, args: argparse.Namespace, soak: Soak, pid: int) -> None:
    served, refused = large_requests()
    started = time.monotonic()
    while time.monotonic() - started < args.duration:
        await asyncio.sleep(args.large_every)
        soak.settled.append((time.monotonic() - started, process_memory(pid).rss_mb))
        for j in range(args.large_burst):
            try:
                await stub.Generate(served if j % 2 == 0 else refused, timeout=60)
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    soak.errors[err.code().name] = soak.errors.get(err.code().name, 0) + 1


def http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as resp:
        resp.read()
        return int(resp.status)


async def scraper(args: argparse.Namespace, soak: Soak, metrics_port: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        for path in ("/metrics", "/readyz", "/livez"):
            try:
                status = await asyncio.to_thread(http_status, f"http://127.0.0.1:{metrics_port}{path}")
            except OSError as exc:
                status, soak.errors[path] = 0, soak.errors.get(path, 0) + 1
                out(f"{path}: {exc}")
            if status != 200:
                soak.errors[path] = soak.errors.get(path, 0) + 1
        soak.scrapes += 1
        await asyncio.sleep(args.scrape)


async def sampler(args: argparse.Namespace, soak: Soak, pid: int, stop: asyncio.Event) -> None:
    started = time.monotonic()
    while not stop.is_set():
        elapsed = time.monotonic() - started
        rss = process_memory(pid).rss_mb
        soak.samples.append((elapsed, rss, soak.calls))
        out(f"{elapsed:8.0f} s  RSS {rss:7.1f} MB  calls {soak.calls}")
        await asyncio.sleep(args.sample)


async def drive(args: argparse.Namespace, sidecar: Service, metrics_port: int) -> Soak:
    soak, stop = Soak(), asyncio.Event()
    pid = sidecar.proc.pid
    async with grpc.aio.insecure_channel(f"127.0.0.1:{sidecar.port}", options=CHANNEL_OPTIONS) as channel:
        stub = svc.GenerationServiceStub(channel)
        background = [asyncio.create_task(caller(stub, soak, stop, n)) for n in range(args.concurrency)]
        background.append(asyncio.create_task(sampler(args, soak, pid, stop)))
        background.append(asyncio.create_task(scraper(args, soak, metrics_port, stop)))
        try:
            await bursts(stub, args, soak, pid)
        finally:
            stop.set()
            await asyncio.gather(*background)
    return soak


def slope_mb_per_min(points: Sequence[tuple[float, float]]) -> float:
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_m = sum(m for _, m in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return 0.0 if var == 0 else 60 * sum((t - mean_t) * (m - mean_m) for t, m in points) / var


def verdict(args: argparse.Namespace, soak: Soak) -> bool:
    judged = [(t, m) for t, m in soak.settled if t >= args.warmup]
    if len(judged) < 3:
        out(f"FAIL: only {len(judged)} settled samples after the warm-up; run longer")
        return False
    third = max(1, len(judged) // 3)
    first, last = median(m for _, m in judged[:third]), median(m for _, m in judged[-third:])
    slope, growth = slope_mb_per_min(judged), last - first
    peak = max(m for _, m, _ in soak.samples)
    out("settled samples (s, MB): " + ", ".join(f"{t:.0f} {m:.1f}" for t, m in judged))
    out(
        f"settled RSS after warm-up: median of the first third {first:.1f} MB, of the last {last:.1f} MB, "
        f"growth {growth:+.1f} MB, slope {slope:+.3f} MB/min over {len(judged)} samples; peak {peak:.1f} MB; "
        f"{soak.calls} calls, {soak.scrapes} rounds of /metrics + /readyz + /livez, "
        f"errors {soak.errors or 'none'}"
    )
    ok = slope <= args.max_slope and growth <= args.max_growth and not soak.errors
    out(f"{'PASS' if ok else 'FAIL'}: slope <= {args.max_slope} MB/min and growth <= {args.max_growth} MB")
    return ok


def start_sidecar(
    procs: Processes, workdir: Path, upstream: Service, args: argparse.Namespace
) -> tuple[Service, int]:
    """The sidecar, and its metrics port."""
    raw = sidecar_config({(0, 0): upstream})
    raw["settings"]["telemetry"] = {
        "metrics": {"address": "127.0.0.1:0"},
        "ledger": {"sqlite_path": str(workdir / "usage.db")},
    }
    raw["settings"]["memory"] = {
        "malloc_arena_max": args.arena_max,
        "trim_after_request_bytes": 0 if args.no_trim else 1024 * 1024,
    }
    config, log = workdir / "sidecar.yaml", workdir / "sidecar.log"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    argv = [sys.executable, "-m", "sidecar", "serve", "--config", str(config)]
    proc = start_logged(procs, SIDECAR_CPU, argv, log)
    ready = json.loads(wait_for_line("sidecar", proc, log, "sidecar serving"))
    return Service("sidecar", proc, int(ready["port"]), log), int(ready["metrics_port"])


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds of load (default 1800)")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    parser.add_argument("--concurrency", type=int, default=4, help="callers of small requests")
    parser.add_argument("--large-every", type=float, default=15.0, help="seconds between large bursts")
    parser.add_argument("--large-burst", type=int, default=6, help="large requests per burst")
    parser.add_argument("--warmup", type=float, help="seconds not judged (default: a fifth of --duration)")
    parser.add_argument("--max-slope", type=float, default=0.25, help="MB/min allowed in settled RSS")
    parser.add_argument("--max-growth", type=float, default=10.0, help="MB allowed, last third over first")
    parser.add_argument("--scrape", type=float, default=2.0, help="seconds between /metrics+probe rounds")
    parser.add_argument("--arena-max", type=int, default=2, help="settings.memory.malloc_arena_max")
    parser.add_argument("--no-trim", action="store_true", help="settings.memory.trim_after_request_bytes: 0")
    args = parser.parse_args(argv)
    if args.warmup is None:
        args.warmup = args.duration / 5
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, Processes() as procs:
        workdir = Path(tmp)
        upstream = start_upstream(procs, workdir, 0)
        sidecar, metrics_port = start_sidecar(procs, workdir, upstream, args)
        trim = "off" if args.no_trim else "on"
        out(f"sidecar pid {sidecar.proc.pid}; arena max {args.arena_max}; trim {trim}")
        try:
            soak = asyncio.run(drive(args, sidecar, metrics_port))
        except BenchError as exc:
            out(f"FAIL: {exc}")
            return 1
        return 0 if verdict(args, soak) else 1


if __name__ == "__main__":
    sys.exit(main())
