"""Where the sidecar's CPU goes at saturation: py-spy samples turned into a per-module cost table.

`record()` samples every thread of the sidecar (py-spy, non-blocking, raw collapsed stacks) while a
load run keeps it busy; `cost_table()` charges each sample to the innermost frame that is the
sidecar's own code (so aiohttp called from sidecar/providers/_http.py counts there), or, for samples
with no sidecar frame, to the event loop (uvloop and the gRPC core's callbacks: native code py-spy
cannot see into) or to the thread it ran on. Multiplied by the CPU per call measured in the same
window, each share becomes microseconds per call.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

SAMPLE_RATE = 250  # per second
_OWN = re.compile(r"\((sidecar/[^:]+):\d+\)")
_ENTRY = ("sidecar/__main__.py", "sidecar/cli.py")  # the process's entry: below every loop frame
_FILE = re.compile(r"\(([^:()]+):\d+\)")
_TOP = 25  # rows shown


def py_spy() -> str | None:
    """The py-spy binary of this interpreter's environment (a dev dependency), or one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record_argv(pid: int, seconds: float, out: Path) -> list[str]:
    """py-spy sampling `pid` for `seconds` into `out`."""
    binary = py_spy()
    if binary is None:
        raise FileNotFoundError("py-spy is not installed (pip install -e '.[dev]')")
    argv = [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    argv += ["--rate", str(SAMPLE_RATE), "--format", "raw", "--nonblocking", "--output", str(out)]
    return argv


def owner(frames: Sequence[str]) -> str:
    """Who a sample is charged to: the innermost sidecar module, else the loop or a named thread."""
    for frame in reversed(frames):
        if (match := _OWN.search(frame)) and match.group(1) not in _ENTRY:
            return match.group(1)
    if any("threading.py" in f for f in frames):
        leaf = _FILE.search(frames[-1])
        where = leaf.group(1).split("/")[0] if leaf else "native"
        if where == "threading.py":  # Thread.run itself: the native wait-and-dispatch of gRPC's poller
            return "(threads, native: gRPC's completion-queue poller)"
        return f"(threads: {where})"
    leaf = _FILE.search(frames[-1]) if frames else None
    library = leaf.group(1).split("/")[0] if leaf else "native"
    if library in ("asyncio", "uvloop") or "runners.py" in frames[-1] or "cli.py" in frames[-1]:
        return "(event loop: uvloop + gRPC core callbacks, native)"
    return f"(event loop: {library}, outside any sidecar frame)"


def samples(raw: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[owner(stack.split(";"))] += int(count)
    return counts


def cost_table(raw: Path, cpu_ms_per_call: float) -> list[str]:
    """Markdown rows: module, share of the sidecar's samples, µs per call."""
    counts = samples(raw)
    total = sum(counts.values())
    if total == 0:
        return ["(no samples)"]
    lines = ["| charged to | share of samples | µs per call |", "|---|---|---|"]
    shown = 0
    for name, count in counts.most_common(_TOP):
        share = count / total
        shown += count
        lines.append(f"| {name} | {share:.1%} | {share * cpu_ms_per_call * 1000:.0f} |")
    rest = (total - shown) / total
    lines.append(f"| (everything else) | {rest:.1%} | {rest * cpu_ms_per_call * 1000:.0f} |")
    lines.append(f"| **total** ({total} samples) | 100% | {cpu_ms_per_call * 1000:.0f} |")
    return lines
