"""Direct-vs-sidecar load benchmark; prints the Markdown table the README shows.

Layout on a 2-core machine (taskset): two loopback upstreams (bench/upstream.py, one per upstream
delay) and the load generator (bench/loadgen.py, one process per run) share CPU 0; the sidecar
(`python -m sidecar serve`) and the bare gRPC server (bench/bare_server.py) are on CPU 1, where only
the one under load does any work. This script only starts, waits and reports: it sits pinned to
CPU 0 and blocked in wait() while a run is measured. Every scenario is run three times with the
same load generator: straight to the upstream (direct), through the sidecar, then through the
bare gRPC server, a grpc.aio + uvloop server answering the same RPCs with a fixed response after
the upstream delay: the floor of any Python gRPC sidecar here, which separates the cost of the
gRPC hop from that of the sidecar's own pipeline (--no-bare skips it). The upstreams and the
servers are started once and reused by every scenario.

    .venv/bin/python bench/bench.py            # the full run (about 4 minutes)
    .venv/bin/python bench/bench.py --quick    # a smoke run (about 20 seconds)
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any

import cpu_profile
import yaml
from common import (
    BARE,
    BENCH,
    DIRECT,
    REPO,
    SIDECAR,
    STREAM,
    UNARY,
    RunResult,
    busy_fractions,
    cpu_ticks,
    process_memory,
)
from report import (
    BAR_SATURATION,
    FOREIGN,
    TOKENS_LONG,
    TOKENS_SHORT,
    Lifecycle,
    Profile,
    Report,
    Row,
    Scenario,
    render,
)

CLIENT_CPU, SIDECAR_CPU = 0, 1  # upstreams + load generator (+ this script) | the sidecar (+ bare server)
READY_SECONDS = 30.0  # bound on a service's start-up
STOP_SECONDS = 5.0  # bound on a process's exit after SIGTERM, before SIGKILL
NOISE_PAUSE_SECONDS = 5.0  # before re-running a scenario that other processes disturbed
LOADGEN_SLACK_SECONDS = 30.0  # start-up and drain allowance on top of warm-up + duration + timeout
PR_SET_PDEATHSIG = 1
IDLE_SETTLE_SECONDS = 2.0
PROFILE_LAG_SECONDS = 0.5  # after the warm-up, before sampling starts


class BenchError(Exception):
    """The benchmark cannot go on (a service died or did not start, a run failed)."""


@dataclass(frozen=True)
class Plan:
    kinds: tuple[str, ...]
    concurrencies: tuple[int, ...]
    delays_ms: tuple[int, ...]
    warmup: float
    duration: float
    timeout: float
    noise_retries: int
    output: Path | None
    bare: bool  # also run every scenario through bench/bare_server.py
    bar: bool  # also the issue-18 bar's own measurements: token streams, idle CPU, time to ready
    idle_seconds: float
    autogroup_nice: int | None  # see Processes

    def scenarios(self) -> list[Scenario]:
        return [
            Scenario(kind, concurrency, delay)
            for kind in self.kinds
            for delay in self.delays_ms
            for concurrency in self.concurrencies
        ]

    def bar_scenarios(self) -> list[Scenario]:
        """Streams of one-token events from an instant upstream: CPU per relayed event at saturation
        (20 and 100 events), and the reported overhead against the client's at one in flight."""
        if not self.bar:
            return []
        return [Scenario(STREAM, 1, 0, TOKENS_LONG)] + [
            Scenario(STREAM, BAR_SATURATION, 0, tokens) for tokens in (TOKENS_SHORT, TOKENS_LONG)
        ]

    def upstreams(self) -> list[tuple[int, int]]:
        """(delay ms, tokens) of every upstream the scenarios need."""
        wanted = {(delay, 0) for delay in self.delays_ms}
        wanted |= {(s.delay_ms, s.tokens) for s in self.bar_scenarios()}
        return sorted(wanted)


@dataclass(frozen=True)
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass(frozen=True)
class Services:
    upstreams: dict[tuple[int, int], Service]  # by (delay in ms, tokens per stream; 0: stream.sse)
    sidecar: Service
    bare: Service | None  # None with --no-bare

    @property
    def all(self) -> tuple[Service, ...]:
        servers = (self.sidecar,) if self.bare is None else (self.sidecar, self.bare)
        return (*self.upstreams.values(), *servers)

    def check_alive(self) -> None:
        for service in self.all:
            if service.proc.poll() is not None:
                raise BenchError(f"{service.name} exited ({service.proc.returncode}): {tail(service.log)}")


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if this script dies without cleaning up (e.g. SIGKILL)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """Every process the benchmark starts. Leaving the block stops them all, however it is left.

    Each starts a session of its own, and so, where the kernel groups sessions for the scheduler
    (/proc/sys/kernel/sched_autogroup_enabled), an autogroup of its own: a process's nice value then
    only ranks it inside its session, never against other sessions' work. `autogroup_nice` sets the
    autogroup's own nice (/proc/PID/autogroup; below 0 needs root), the only priority that counts there.
    """

    def __init__(self, autogroup_nice: int | None = None) -> None:
        self._started: list[subprocess.Popen[bytes]] = []
        self._autogroup_nice = autogroup_nice

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    def start(self, cpu: int, argv: Sequence[str], stdout: IO[bytes] | int | None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            ["taskset", "-c", str(cpu), *argv],  # taskset execs: proc.pid is the program's own pid
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT if stdout not in (None, subprocess.PIPE) else None,
            start_new_session=True,  # Ctrl-C reaches this script only; it stops the others in order
            preexec_fn=_die_with_parent,
        )
        self._started.append(proc)
        if self._autogroup_nice is not None:
            Path(f"/proc/{proc.pid}/autogroup").write_text(str(self._autogroup_nice))
        return proc

    def stop_all(self) -> None:
        running = [proc for proc in self._started if proc.poll() is None]
        for proc in running:
            proc.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_SECONDS)


def tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def wait_for_line(name: str, proc: subprocess.Popen[bytes], log: Path, needle: str) -> str:
    """The first line of `log` containing `needle`, waiting at most READY_SECONDS."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if needle in line:
                return line
        if proc.poll() is not None:
            raise BenchError(f"{name} exited ({proc.returncode}) before it was ready:\n{tail(log)}")
        time.sleep(0.05)
    raise BenchError(f"no {needle!r} within {READY_SECONDS:g} s in {log}:\n{tail(log)}")


def start_logged(procs: Processes, cpu: int, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return procs.start(cpu, argv, out)


def start_upstream(procs: Processes, workdir: Path, delay_ms: int, tokens: int = 0) -> Service:
    name, log = f"upstream ({delay_ms} ms, {tokens} tokens)", workdir / f"upstream-{delay_ms}ms-{tokens}.log"
    argv = [sys.executable, str(BENCH / "upstream.py"), "--delay", str(delay_ms / 1000)]
    argv += ["--tokens", str(tokens)]
    proc = start_logged(procs, CLIENT_CPU, argv, log)
    ready = json.loads(wait_for_line(name, proc, log, '"listening"'))
    return Service(name, proc, int(ready["port"]), log)


def route_name(delay_ms: int, tokens: int = 0) -> str:
    return f"bench-{delay_ms}ms" + (f"-{tokens}tok" if tokens else "")


def sidecar_config(upstreams: dict[tuple[int, int], Service]) -> dict[str, Any]:
    return {
        "settings": {
            "listen": {"address": "127.0.0.1:0"},  # the bound port is read from the "sidecar serving" line
            "log_level": "INFO",  # that line is INFO; nothing is logged at INFO per successful call
            "shutdown_grace_seconds": 1,
        },
        "policy": {
            "default_route": route_name(*min(upstreams)),
            "deployments": {
                f"up-{route_name(*key)}": {
                    "provider": "openai",
                    "model": "bench-model",
                    "base_url": f"http://127.0.0.1:{service.port}/v1",
                }
                for key, service in upstreams.items()
            },
            "routes": {route_name(*key): {"deployments": [f"up-{route_name(*key)}"]} for key in upstreams},
        },
    }


def start_sidecar(procs: Processes, workdir: Path, upstreams: dict[tuple[int, int], Service]) -> Service:
    config, log = workdir / "sidecar.yaml", workdir / "sidecar.log"
    raw = sidecar_config(upstreams)
    # the full telemetry is on, as in production: /metrics (on a free port) and the usage ledger
    raw["settings"]["telemetry"] = {
        "metrics": {"address": "127.0.0.1:0"},
        "ledger": {"sqlite_path": str(workdir / "usage.db")},
    }
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    argv = [sys.executable, "-m", "sidecar", "serve", "--config", str(config)]
    proc = start_logged(procs, SIDECAR_CPU, argv, log)
    ready = json.loads(wait_for_line("sidecar", proc, log, "sidecar serving"))
    return Service("sidecar", proc, int(ready["port"]), log)


def start_bare(procs: Processes, workdir: Path, delays_ms: Sequence[int]) -> Service:
    """bench/bare_server.py on the sidecar's CPU, answering the sidecar's route names after their delays."""
    log = workdir / "bare.log"
    argv = [sys.executable, str(BENCH / "bare_server.py")]
    for delay in delays_ms:
        argv += ["--route", f"{route_name(delay)}={delay / 1000}"]
    proc = start_logged(procs, SIDECAR_CPU, argv, log)
    ready = json.loads(wait_for_line("bare gRPC server", proc, log, '"listening"'))
    return Service("bare gRPC server", proc, int(ready["port"]), log)


def start_services(procs: Processes, workdir: Path, plan: Plan) -> Services:
    upstreams = {key: start_upstream(procs, workdir, *key) for key in plan.upstreams()}
    sidecar = start_sidecar(procs, workdir, upstreams)
    bare = start_bare(procs, workdir, plan.delays_ms) if plan.bare else None
    return Services(upstreams, sidecar, bare)


def loadgen_argv(plan: Plan, services: Services, scenario: Scenario, via: str) -> list[str]:
    upstream = services.upstreams[(scenario.delay_ms, scenario.tokens)]
    if via == DIRECT:
        target = f"http://127.0.0.1:{upstream.port}/v1/chat/completions"
    else:
        server = services.bare if via == BARE else services.sidecar
        assert server is not None, via
        target = f"127.0.0.1:{server.port}"
    # every process on the two CPUs is watched, the idle server too: its CPU is not "other load"
    watch = {"sidecar": services.sidecar.pid, "upstream": upstream.pid}
    if services.bare is not None:
        watch[BARE] = services.bare.pid
    return [
        sys.executable, str(BENCH / "loadgen.py"),
        "--via", via, "--kind", scenario.kind, "--target", target,
        "--route", route_name(scenario.delay_ms, scenario.tokens),
        "--concurrency", str(scenario.concurrency),
        "--warmup", str(plan.warmup), "--duration", str(plan.duration), "--timeout", str(plan.timeout),
        "--stagger", str(scenario.delay_ms / 1000),
        *(arg for name, pid in watch.items() for arg in ("--watch", f"{name}={pid}")),
    ]  # fmt: skip


def run_load(procs: Processes, plan: Plan, services: Services, scenario: Scenario, via: str) -> RunResult:
    """One load generator process, waited for (this script stays idle); its JSON result."""
    services.check_alive()
    proc = procs.start(CLIENT_CPU, loadgen_argv(plan, services, scenario, via), subprocess.PIPE)
    bound = plan.warmup + plan.duration + plan.timeout + LOADGEN_SLACK_SECONDS
    try:
        out, _ = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"the load generator ran past {bound:g} s: {scenario} {via}") from exc
    if proc.returncode != 0:
        raise BenchError(f"the load generator failed ({proc.returncode}): {scenario} {via}")
    return RunResult.from_json(out.decode())


def progress(label: str, scenario: Scenario, result: RunResult) -> None:
    tokens = f" {scenario.tokens} tok" if scenario.tokens else ""
    sys.stderr.write(
        f"{label} {scenario.kind:6} conc {scenario.concurrency:3} delay {scenario.delay_ms:2} ms{tokens} "
        f"{result.via:7}: {result.rps:7.0f} req/s  p50 {result.p50_ms or 0:7.2f} ms  "
        f"p99 {result.p99_ms or 0:7.2f} ms  errors {result.errors}\n"
    )


def run_scenario(procs: Processes, plan: Plan, services: Services, scenario: Scenario, label: str) -> Row:
    """The direct run, the run through the sidecar and the sidecar's RSS after both, then the run
    through the bare gRPC server (the first two run just as they do with --no-bare)."""
    results: dict[str, RunResult] = {}
    for via in (DIRECT, SIDECAR):
        results[via] = run_load(procs, plan, services, scenario, via)
        progress(label, scenario, results[via])
    rss = process_memory(services.sidecar.pid).rss_mb
    bare = None
    if services.bare is not None and scenario.tokens == 0:
        bare = run_load(procs, plan, services, scenario, BARE)
        progress(label, scenario, bare)
    return Row(scenario, results[DIRECT], results[SIDECAR], rss, bare)


def run_quietly(procs: Processes, plan: Plan, services: Services, scenario: Scenario, label: str) -> Row:
    """Run a scenario; while other processes loaded the CPUs during it, run it again (bounded)."""
    best = run_scenario(procs, plan, services, scenario, label)
    for attempt in range(plan.noise_retries):
        if best.foreign_load < FOREIGN:
            break
        sys.stderr.write(
            f"{label} noisy: other processes used {best.foreign_load:.0%} of a core; "
            f"retry {attempt + 1}/{plan.noise_retries} in {NOISE_PAUSE_SECONDS:g} s\n"
        )
        time.sleep(NOISE_PAUSE_SECONDS)
        row = run_scenario(procs, plan, services, scenario, label)
        best = min(best, row, key=lambda r: r.foreign_load)
    return best


def run_scenarios(
    procs: Processes, plan: Plan, services: Services, scenarios: list[Scenario]
) -> tuple[Row, ...]:
    return tuple(
        run_quietly(procs, plan, services, scenario, f"[{index}/{len(scenarios)}]")
        for index, scenario in enumerate(scenarios, start=1)
    )


def log_problems(log: Path, limit: int = 5) -> tuple[str, ...]:
    """Lines of the sidecar's log above INFO, or not JSON at all (a traceback, a crash)."""
    problems: list[str] = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            level = json.loads(line).get("level", "")
        except (json.JSONDecodeError, AttributeError):
            level = "RAW"
        if level not in ("DEBUG", "INFO"):
            problems.append(line)
    return tuple(problems[:limit])


def describe_machine() -> str:
    model = next(
        (
            line.partition(":")[2].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return (
        f"{datetime.now().astimezone().isoformat(timespec='seconds')} · nproc {len(os.sched_getaffinity(0))}"
        f" · {model} · Python {platform.python_version()} · grpcio {version('grpcio')}"
        f" · aiohttp {version('aiohttp')} · uvloop {version('uvloop')}"
    )


PIPELINE = (
    "observe, authn, resolve, admission, experiment, persona, context, quota, cache, semantic cache, "
    "structured output, route, key, upstream"
)


def describe_features(config: Path) -> str:
    """Which parts of the default pipeline do work in this run (all of them are in the chain)."""
    from sidecar.config.load import load_config  # the sidecar's own reading of the benchmark's config

    cfg = load_config(config, {})
    telemetry, cache = cfg.settings.telemetry, cfg.settings.cache
    on = {
        "Prometheus metrics (/metrics served)": telemetry.metrics.enabled,
        f"usage ledger ({telemetry.ledger.backend})": telemetry.ledger.backend != "none",
        "upstream health probes": cfg.policy.routing.probes.enabled,
        "circuit breakers, retry budget, routing stats": True,
        "caller authentication": cfg.settings.auth.configured,
        "response cache": cache.enabled,
        "OpenTelemetry tracing": telemetry.tracing.enabled,
    }
    return (
        f"Pipeline: every layer of sidecar/app.py build_pipeline is in the chain ({PIPELINE}), as "
        "`sidecar serve` builds it from the benchmark's config (the defaults plus metrics and ledger). "
        "On: " + ", ".join(name for name, enabled in on.items() if enabled) + ". "
        "Off (the defaults): " + ", ".join(name for name, enabled in on.items() if not enabled) + "."
    )


def describe_method(plan: Plan) -> str:
    cpu1 = (
        "the sidecar and the bare gRPC server (each idle during the other's runs)"
        if plan.bare
        else "the sidecar"
    )
    return (
        f"Closed loop: `conc` workers send back to back; {plan.warmup:g} s warm-up, then "
        f"{plan.duration:g} s measured per run; the workers' first requests are spread over one upstream "
        "delay, so that they do not run in lockstep bursts. Upstream (aiohttp + uvloop serving recorded "
        "OpenAI bytes; `upstream delay` before the answer, or before the first SSE event) and load generator "
        f"pinned to CPU 0, {cpu1} alone on CPU 1. Latency is the whole call; TTFC is the time to the "
        "first content chunk; overhead = sidecar minus direct. Sidecar CPU = its utime+stime over the "
        "window ÷ requests completed in the window; RSS (VmRSS) at the end of each scenario."
        + (
            " Bare gRPC = the same load generator and gRPC calls against bench/bare_server.py, a bare "
            "grpc.aio + uvloop server on CPU 1 that sleeps the upstream delay and returns a fixed answer "
            "(a stream: one delta, one summary, as the sidecar sends for this upstream), with no pipeline "
            "and no upstream call: the floor of any Python gRPC sidecar on this machine. Bare minus direct "
            "is the cost of the gRPC hop, the least overhead such a sidecar could show; sidecar minus bare "
            "is what the sidecar's own pipeline and its upstream call add."
            if plan.bare
            else ""
        )
    )


def parse_csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


def parse_plan(argv: Sequence[str] | None) -> Plan:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: short runs, conc 10 only")
    parser.add_argument("--duration", type=float, help="measured seconds per run (default 5; quick 1)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per run (default 1; quick 0.3)")
    parser.add_argument("--concurrency", type=parse_csv_ints, help="comma list (default 1,10,100; quick 10)")
    parser.add_argument("--delays", type=parse_csv_ints, help="upstream delays in ms (default 0,50)")
    parser.add_argument("--kinds", default=f"{UNARY},{STREAM}", help="comma list of unary,stream")
    parser.add_argument("--timeout", type=float, default=30.0, help="per-request bound, seconds")
    parser.add_argument(
        "--noise-retries", type=int, default=2, help="re-runs of a scenario disturbed by other processes"
    )
    parser.add_argument("--output", type=Path, help="Markdown file (default bench/results.md; none if quick)")
    parser.add_argument(
        "--no-bare", action="store_true", help="skip the runs through the bare gRPC server (bare_server.py)"
    )
    parser.add_argument(
        "--no-bar", action="store_true", help="skip the token streams, idle CPU and time-to-ready runs"
    )
    parser.add_argument("--idle-seconds", type=float, help="idle CPU window (default 20; quick 5)")
    parser.add_argument(
        "--autogroup-nice",
        type=int,
        help="scheduler autogroup nice of every process started (e.g. -10 as root on a shared machine)",
    )
    args = parser.parse_args(argv)
    kinds = tuple(kind for kind in args.kinds.split(",") if kind)
    if not set(kinds) <= {UNARY, STREAM}:
        parser.error(f"--kinds: unknown kind in {args.kinds!r}")
    quick = bool(args.quick)
    return Plan(
        kinds=kinds,
        concurrencies=args.concurrency or ((10,) if quick else (1, 10, 100)),
        delays_ms=args.delays or (0, 50),
        warmup=args.warmup if args.warmup is not None else (0.3 if quick else 1.0),
        duration=args.duration if args.duration is not None else (1.0 if quick else 5.0),
        timeout=args.timeout,
        noise_retries=args.noise_retries,
        output=args.output or (None if quick else BENCH / "results.md"),
        bare=not args.no_bare,
        bar=not args.no_bar,
        idle_seconds=args.idle_seconds or (5.0 if quick else 20.0),
        autogroup_nice=args.autogroup_nice,
    )


def pin_self() -> None:
    """Check the two CPUs exist and keep this script off the sidecar's CPU."""
    available = os.sched_getaffinity(0)
    if not {CLIENT_CPU, SIDECAR_CPU} <= available:
        raise BenchError(
            f"needs CPUs {CLIENT_CPU} and {SIDECAR_CPU}; this process may use {sorted(available)}"
        )
    os.sched_setaffinity(0, {CLIENT_CPU})


def machine_load(seconds: float = 1.0) -> dict[str, float]:
    """How busy each CPU is with nothing of the benchmark running yet."""
    before = cpu_ticks()
    time.sleep(seconds)
    return busy_fractions(before, cpu_ticks())


def run_lifecycle(procs: Processes, argv: Sequence[str], bound: float) -> dict[str, Any]:
    """bench/lifecycle.py on the client's CPU; its JSON result."""
    proc = procs.start(CLIENT_CPU, [sys.executable, str(BENCH / "lifecycle.py"), *argv], subprocess.PIPE)
    try:
        out, _ = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"lifecycle.py {argv[0]} ran past {bound:g} s") from exc
    if proc.returncode != 0:
        raise BenchError(f"lifecycle.py {argv[0]} failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out.decode())
    return result


def measure_lifecycle(procs: Processes, plan: Plan, services: Services, workdir: Path) -> Lifecycle:
    """Idle CPU of the running sidecar with a health probe a second, then time to ready of fresh ones."""
    time.sleep(IDLE_SETTLE_SECONDS)  # the start-up's own work (first upstream probes) is over
    idle = run_lifecycle(
        procs,
        ["idle", "--target", f"127.0.0.1:{services.sidecar.port}", "--pid", str(services.sidecar.pid),
         "--seconds", str(plan.idle_seconds)],
        plan.idle_seconds + LOADGEN_SLACK_SECONDS,
    )  # fmt: skip
    sys.stderr.write(f"idle: {idle['cpu_fraction']:.2%} of a core over {idle['seconds']:.0f} s\n")
    ready = run_lifecycle(
        procs,
        ["ready", "--config", str(workdir / "sidecar.yaml"), "--cpu", str(SIDECAR_CPU)],
        3 * READY_SECONDS,
    )
    sys.stderr.write(f"ready: {ready['median']:.2f} s median of {len(ready['runs'])} starts\n")
    return Lifecycle(
        idle_cpu_fraction=idle["cpu_fraction"], idle_checks=int(idle["checks"]), ready_seconds=ready["runs"]
    )


def run_profile(procs: Processes, plan: Plan, services: Services, workdir: Path) -> Profile | None:
    """One more saturated unary run through the sidecar, sampled with py-spy: the per-module table."""
    if not plan.bar or cpu_profile.py_spy() is None:
        return None
    scenario = Scenario(UNARY, BAR_SATURATION, 0)
    services.check_alive()
    load = procs.start(CLIENT_CPU, loadgen_argv(plan, services, scenario, SIDECAR), subprocess.PIPE)
    time.sleep(plan.warmup + PROFILE_LAG_SECONDS)
    raw = workdir / "profile.txt"
    spy = procs.start(CLIENT_CPU, cpu_profile.record_argv(services.sidecar.pid, plan.duration - 1, raw), None)
    out, _ = load.communicate(timeout=plan.warmup + plan.duration + plan.timeout + LOADGEN_SLACK_SECONDS)
    spy.wait(timeout=READY_SECONDS)
    if load.returncode != 0 or not raw.exists():
        raise BenchError("the profiled run failed")
    result = RunResult.from_json(out.decode())
    cpu = result.cpu_ms_per_request("sidecar") or 0.0
    sys.stderr.write(f"profile: {result.rps:.0f} req/s, {cpu:.2f} ms CPU per call, sampled\n")
    return Profile(rps=result.rps, cpu_ms=cpu, table=tuple(cpu_profile.cost_table(raw, cpu)))


def benchmark(plan: Plan) -> Report:
    started = time.monotonic()
    machine = describe_machine()
    pin_self()
    load_before = machine_load()
    with tempfile.TemporaryDirectory(prefix="sidecar-bench-") as tmp, Processes(plan.autogroup_nice) as procs:
        services = start_services(procs, Path(tmp), plan)
        idle = process_memory(services.sidecar.pid)
        lifecycle = measure_lifecycle(procs, plan, services, Path(tmp)) if plan.bar else None
        rows = run_scenarios(procs, plan, services, plan.scenarios())
        bar_rows = run_scenarios(procs, plan, services, plan.bar_scenarios())
        sampled = run_profile(procs, plan, services, Path(tmp))
        services.check_alive()
        return Report(
            profile=sampled,
            bar_rows=bar_rows,
            lifecycle=lifecycle,
            features=describe_features(Path(tmp) / "sidecar.yaml"),
            machine=machine,
            load_before=load_before,
            method=describe_method(plan),
            rows=rows,
            idle_rss_mb=idle.rss_mb,
            peak_rss_mb=process_memory(services.sidecar.pid).peak_mb,
            wall_seconds=time.monotonic() - started,
            sidecar_log_problems=log_problems(services.sidecar.log),
        )


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_plan(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM unwinds like Ctrl-C: every child is stopped
    try:
        report = benchmark(plan)
    except BenchError as exc:
        sys.stderr.write(f"bench: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("bench: interrupted; every process it started has been stopped\n")
        return 130
    text = render(report)
    sys.stdout.write(text)
    if plan.output is not None:
        plan.output.write_text(text)
        sys.stderr.write(f"bench: wrote {plan.output}\n")
    if report.errors:
        sys.stderr.write(f"bench: FLAGGED: {report.errors} failed requests\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
