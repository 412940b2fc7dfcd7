"""What the benchmark's processes share: /proc readers and the result of one load run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")

UNARY, STREAM = "unary", "stream"
DIRECT, SIDECAR = "direct", "sidecar"
BARE = "bare"  # through bench/bare_server.py: the floor of any Python gRPC sidecar


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_ticks() -> dict[str, tuple[int, int]]:
    """(busy, total) jiffies per CPU ("cpu0", "cpu1", ...) from /proc/stat."""
    ticks: dict[str, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        counts = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
        idle = counts[3] + counts[4]
        ticks[name] = (sum(counts) - idle, sum(counts))
    return ticks


def busy_fractions(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    """How busy each CPU was between two cpu_ticks() readings, 0..1."""
    fractions: dict[str, float] = {}
    for cpu, (busy_after, total_after) in after.items():
        busy_before, total_before = before.get(cpu, (0, 0))
        total = total_after - total_before
        fractions[cpu] = (busy_after - busy_before) / total if total > 0 else 0.0
    return fractions


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    peak_mb: float


def process_memory(pid: int) -> Memory:
    """VmRSS and VmHWM (peak RSS) from /proc/<pid>/status."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB -> MB
    return Memory(rss_mb=values.get("VmRSS", 0.0), peak_mb=values.get("VmHWM", 0.0))


@dataclass(frozen=True)
class RunResult:
    """One load run (one scenario, one way), measured over its window after the warm-up."""

    via: str
    kind: str
    concurrency: int
    window_seconds: float
    completed: int
    errors: int
    error_samples: dict[str, int]
    p50_ms: float | None
    p99_ms: float | None
    ttfc_p50_ms: float | None
    ttfc_p99_ms: float | None
    cpu_seconds: dict[str, float]  # per watched process, and "loadgen" itself, within the window
    cpu_busy: dict[str, float]  # per CPU, within the window
    reported_overhead_p50_ms: float | None = None  # the sidecar's own GenerationSummary.overhead

    @property
    def rps(self) -> float:
        return self.completed / self.window_seconds if self.window_seconds > 0 else 0.0

    def cpu_ms_per_request(self, process: str) -> float | None:
        seconds = self.cpu_seconds.get(process)
        if seconds is None or self.completed == 0:
            return None
        return seconds * 1000 / self.completed

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)


async def until_signalled(max_seconds: float, name: str) -> None:
    """Serve until SIGTERM/SIGINT, or at most `max_seconds` (benchmarks always stop by themselves)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=max_seconds)
    except TimeoutError:
        sys.stderr.write(f"{name}: stopping after --max-seconds {max_seconds}\n")
