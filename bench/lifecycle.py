"""The sidecar's cost when nothing is asked of it, and how soon it can serve after it starts.

lifecycle.py idle  --target HOST:PORT --pid PID [--seconds 20] [--probe-interval 1]
    Sends a gRPC health Check (as a kubelet's probe does) every --probe-interval seconds for
    --seconds while no call is made, and measures the sidecar's CPU (utime+stime) over that
    window. The sidecar's own upstream health probes run as configured. Prints JSON.

lifecycle.py ready --config FILE [--runs 3] [--cpu 1]
    Starts `python -m sidecar serve --config FILE` (pinned with taskset), and measures the time
    from the process start to the first health Check of orchestrator.v1.GenerationService that
    answers SERVING; then stops it. Repeated --runs times. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from statistics import median

import grpc
import uvloop
from common import REPO, process_cpu_seconds
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE = "orchestrator.v1.GenerationService"
READY_BOUND_SECONDS = 30.0
POLL_SECONDS = 0.005


async def idle(target: str, pid: int, seconds: float, interval: float) -> dict[str, float]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
        checks = 0
        cpu_before, started = process_cpu_seconds(pid), time.perf_counter()
        while time.perf_counter() - started < seconds:
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
            if answer.status != health_pb2.HealthCheckResponse.SERVING:
                raise SystemExit(f"health answered {answer.status}")
            checks += 1
            await asyncio.sleep(interval)
        window = time.perf_counter() - started
        cpu = process_cpu_seconds(pid) - cpu_before
    return {"seconds": window, "cpu_seconds": cpu, "cpu_fraction": cpu / window, "checks": checks}


async def first_serving(target: str, proc: subprocess.Popen[bytes], started: float) -> float:
    """Seconds from `started` to the first SERVING answer for the generation service."""
    while time.perf_counter() - started < READY_BOUND_SECONDS:
        if proc.poll() is not None:
            raise SystemExit(f"the sidecar exited ({proc.returncode}) before it was ready")
        try:
            async with grpc.aio.insecure_channel(target) as channel:
                stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
                answer = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=0.5)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.perf_counter() - started
        except grpc.aio.AioRpcError:
            pass  # not listening yet, or the service is not registered yet
        await asyncio.sleep(POLL_SECONDS)
    raise SystemExit(f"not SERVING within {READY_BOUND_SECONDS:g} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready_once(config: str, cpu: int, ledger: str) -> float:
    """One start: its own port and its own ledger file (a sidecar using the same config may be running)."""
    port = free_port()
    argv = ["taskset", "-c", str(cpu), sys.executable, "-m", "sidecar", "serve", "--config", config]
    env = {
        **os.environ,
        "SIDECAR__SETTINGS__LISTEN__ADDRESS": f"127.0.0.1:{port}",
        "SIDECAR__SETTINGS__TELEMETRY__LEDGER__SQLITE_PATH": ledger,
    }
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return uvloop.run(first_serving(f"127.0.0.1:{port}", proc, started))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    idle_args = sub.add_parser("idle")
    idle_args.add_argument("--target", required=True)
    idle_args.add_argument("--pid", type=int, required=True)
    idle_args.add_argument("--seconds", type=float, default=20.0)
    idle_args.add_argument("--probe-interval", type=float, default=1.0)
    ready_args = sub.add_parser("ready")
    ready_args.add_argument("--config", required=True)
    ready_args.add_argument("--runs", type=int, default=3)
    ready_args.add_argument("--cpu", type=int, default=1)
    args = parser.parse_args()
    if args.command == "idle":
        result = uvloop.run(idle(args.target, args.pid, args.seconds, args.probe_interval))
    else:
        with tempfile.TemporaryDirectory(prefix="sidecar-ready-") as tmp:
            runs = [ready_once(args.config, args.cpu, f"{tmp}/usage-{i}.db") for i in range(args.runs)]
        result = {"runs": runs, "median": median(runs), "max": max(runs)}
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
