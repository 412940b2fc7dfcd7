"""The benchmark's Markdown report: one table per run, plus what the numbers can and cannot say."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from common import STREAM, UNARY, RunResult

CLIENT_BOUND = 0.90  # CPU 0 (load generator + upstream) busier than this: the client limits the rate
SATURATED = 0.90  # CPU 1 (sidecar) busier than this: the sidecar runs flat out
BAR_CPU_MS = 1.0
BAR_RPS = 1000.0
BAR_P50_MS, BAR_P99_MS = 1.0, 3.0
BAR_RSS_MB = 100.0
FOREIGN = 0.15  # CPU busier than the benchmark's own processes account for: something else ran
BAR_CONCURRENCY, BAR_DELAY_MS = 10, 50  # ~200 req/s with a 50 ms upstream


@dataclass(frozen=True)
class Scenario:
    kind: str
    concurrency: int
    delay_ms: int


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    direct: RunResult
    sidecar: RunResult
    rss_mb: float

    @property
    def errors(self) -> int:
        return self.direct.errors + self.sidecar.errors

    @property
    def client_bound(self) -> bool:
        return self.sidecar.cpu_busy.get("cpu0", 0.0) >= CLIENT_BOUND

    @property
    def foreign_load(self) -> float:
        """The most CPU (fraction of a core) used by processes outside the benchmark in either run."""
        return max(max(foreign_load(self.direct).values()), max(foreign_load(self.sidecar).values()))


def foreign_load(result: RunResult) -> dict[str, float]:
    """Per CPU: how busy it was beyond what the benchmark's processes on it used (kernel time included)."""
    window, cpu = result.window_seconds, result.cpu_seconds
    if window <= 0:
        return {"cpu0": 0.0, "cpu1": 0.0}
    ours = {
        "cpu0": (cpu.get("loadgen", 0.0) + cpu.get("upstream", 0.0)) / window,
        "cpu1": cpu.get("sidecar", 0.0) / window,
    }
    return {name: max(0.0, result.cpu_busy.get(name, 0.0) - used) for name, used in ours.items()}


@dataclass(frozen=True)
class Report:
    machine: str
    load_before: dict[str, float]  # per CPU, busy fraction in the second before the benchmark started
    method: str
    rows: tuple[Row, ...]
    idle_rss_mb: float
    peak_rss_mb: float
    wall_seconds: float
    sidecar_log_problems: tuple[str, ...]

    @property
    def errors(self) -> int:
        return sum(row.errors for row in self.rows)


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def pair(p50: float | None, p99: float | None) -> str:
    return f"{ms(p50)} / {ms(p99)}"


def diff(direct: float | None, sidecar: float | None) -> str:
    return "-" if direct is None or sidecar is None else f"{sidecar - direct:+.2f}"


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.0f}"


def table(header: Iterable[str], lines: Iterable[Iterable[str]]) -> list[str]:
    head = list(header)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return out


MAIN_HEADER = (
    "kind", "conc", "upstream delay ms", "direct req/s", "sidecar req/s",
    "direct p50 / p99 ms", "sidecar p50 / p99 ms", "overhead p50 / p99 ms",
    "TTFC direct p50 / p99 ms", "TTFC sidecar p50 / p99 ms", "TTFC overhead p50 / p99 ms",
    "sidecar CPU ms/req", "sidecar RSS MB", "CPU0 / CPU1 busy %", "errors",
)  # fmt: skip


def main_cells(row: Row) -> list[str]:
    d, s, sc = row.direct, row.sidecar, row.scenario
    stream = sc.kind == STREAM
    errors = "0" if row.errors == 0 else f"⚠ {row.errors} (direct {d.errors}, sidecar {s.errors})"
    return [
        sc.kind,
        str(sc.concurrency),
        str(sc.delay_ms),
        f"{d.rps:.0f}",
        f"{s.rps:.0f}" + (" ‡" if row.client_bound else ""),
        pair(d.p50_ms, d.p99_ms),
        pair(s.p50_ms, s.p99_ms),
        f"{diff(d.p50_ms, s.p50_ms)} / {diff(d.p99_ms, s.p99_ms)}",
        pair(d.ttfc_p50_ms, d.ttfc_p99_ms) if stream else "-",
        pair(s.ttfc_p50_ms, s.ttfc_p99_ms) if stream else "-",
        f"{diff(d.ttfc_p50_ms, s.ttfc_p50_ms)} / {diff(d.ttfc_p99_ms, s.ttfc_p99_ms)}" if stream else "-",
        ms(s.cpu_ms_per_request("sidecar")),
        f"{row.rss_mb:.0f}",
        f"{percent(s.cpu_busy.get('cpu0'))} / {percent(s.cpu_busy.get('cpu1'))}",
        errors,
    ]


CPU_HEADER = (
    "kind", "conc", "upstream delay ms", "sidecar ms/req", "upstream ms/req", "loadgen ms/req",
    "CPU0 / CPU1 busy % (via sidecar)", "CPU0 busy % (direct)", "other load % of a core", "limited by",
)  # fmt: skip


def limited_by(result: RunResult) -> str:
    if result.cpu_busy.get("cpu0", 0.0) >= CLIENT_BOUND:
        return "CPU 0: load generator + upstream"
    if result.cpu_busy.get("cpu1", 0.0) >= SATURATED:
        return "CPU 1: the sidecar"
    return "neither core (latency-bound)"


def cpu_cells(row: Row) -> list[str]:
    s, sc = row.sidecar, row.scenario
    return [
        sc.kind,
        str(sc.concurrency),
        str(sc.delay_ms),
        ms(s.cpu_ms_per_request("sidecar")),
        ms(s.cpu_ms_per_request("upstream")),
        ms(s.cpu_ms_per_request("loadgen")),
        f"{percent(s.cpu_busy.get('cpu0'))} / {percent(s.cpu_busy.get('cpu1'))}",
        percent(row.direct.cpu_busy.get("cpu0")),
        percent(row.foreign_load) + (" ⚠" if row.foreign_load >= FOREIGN else ""),
        limited_by(s),
    ]


def find(rows: Iterable[Row], kind: str, concurrency: int, delay_ms: int) -> Row | None:
    wanted = Scenario(kind, concurrency, delay_ms)
    return next((row for row in rows if row.scenario == wanted), None)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def bar_lines(report: Report) -> Iterator[str]:
    """The DESIGN.md performance bar, checked against the rows this run has."""
    rows = report.rows
    top = max((row.scenario.concurrency for row in rows), default=0)
    for kind in (UNARY, STREAM):
        row = find(rows, kind, top, 0)
        cpu = row.sidecar.cpu_ms_per_request("sidecar") if row else None
        if row is not None and cpu is not None:
            capacity = 1000 / cpu if cpu > 0 else float("inf")
            yield (
                f"- {verdict(cpu <= BAR_CPU_MS)} CPU per proxied {kind} request ≤ {BAR_CPU_MS:g} ms, i.e. "
                f"≥ {BAR_RPS:.0f} req/s per core (instant upstream, conc {top}): {cpu:.2f} ms, i.e. "
                f"~{capacity:.0f} req/s per core of sidecar CPU; measured {row.sidecar.rps:.0f} req/s"
                + (" (client-bound ‡)" if row.client_bound else "")
            )
    for kind, pick in ((UNARY, _latency), (STREAM, _ttfc)):
        row = find(rows, kind, BAR_CONCURRENCY, BAR_DELAY_MS)
        if row is not None:
            yield _overhead_line(kind, row, pick)
    yield (
        f"- {verdict(report.peak_rss_mb < BAR_RSS_MB)} RSS under load < {BAR_RSS_MB:g} MB: "
        f"peak (VmHWM) {report.peak_rss_mb:.0f} MB, idle {report.idle_rss_mb:.0f} MB"
    )


def _latency(result: RunResult) -> tuple[float | None, float | None]:
    return result.p50_ms, result.p99_ms


def _ttfc(result: RunResult) -> tuple[float | None, float | None]:
    return result.ttfc_p50_ms, result.ttfc_p99_ms


def _overhead_line(
    kind: str, row: Row, pick: Callable[[RunResult], tuple[float | None, float | None]]
) -> str:
    (d50, d99), (s50, s99) = pick(row.direct), pick(row.sidecar)
    what = "latency" if kind == UNARY else "time to first chunk"
    if None in (d50, d99, s50, s99):
        return f"- FAIL {kind} {what} overhead: no data"
    assert d50 is not None and d99 is not None and s50 is not None and s99 is not None
    ok = s50 - d50 < BAR_P50_MS and s99 - d99 < BAR_P99_MS
    return (
        f"- {verdict(ok)} {kind} {what} overhead p50 < {BAR_P50_MS:g} ms and p99 < {BAR_P99_MS:g} ms "
        f"at {row.sidecar.rps:.0f} req/s with a {BAR_DELAY_MS} ms upstream: "
        f"{s50 - d50:+.2f} / {s99 - d99:+.2f} ms"
    )


def render(report: Report) -> str:
    rows = report.rows
    client_bound = [row for row in rows if row.client_bound]
    lines = [f"Benchmark {report.machine}", "", report.method, ""]
    lines += list(_noise(report))
    if client_bound:
        lines.append(
            f"**‡ client-bound:** in {len(client_bound)} of {len(rows)} scenarios CPU 0 (load generator "
            f"+ upstream) was ≥ {CLIENT_BOUND:.0%} busy during the run through the sidecar, so that "
            "req/s is limited by the client, not the sidecar; read the sidecar's CPU ms/req instead."
        )
        lines.append("")
    if report.errors:
        lines += [f"**⚠ FLAGGED: {report.errors} failed requests; the affected rows are not valid.**", ""]
    lines += table(MAIN_HEADER, (main_cells(row) for row in rows))
    lines += [
        "",
        "Where the CPU went (runs through the sidecar unless noted), CPU ms per completed request:",
        "",
    ]
    lines += table(CPU_HEADER, (cpu_cells(row) for row in rows))
    lines += ["", "Against the performance bar (DESIGN.md):", "", *bar_lines(report)]
    lines += list(_problems(report))
    lines += ["", f"Wall time: {report.wall_seconds:.0f} s."]
    return "\n".join(lines) + "\n"


def _noise(report: Report) -> Iterator[str]:
    """Warnings when something outside the benchmark used the CPUs: then no number here is trustworthy."""
    before = ", ".join(f"{cpu} {percent(busy)}%" for cpu, busy in sorted(report.load_before.items()))
    if any(busy >= FOREIGN for busy in report.load_before.values()):
        yield f"**⚠ NOISY: the machine was busy before the benchmark started ({before}).**"
        yield ""
    noisy = [row for row in report.rows if row.foreign_load >= FOREIGN]
    if noisy:
        worst = max(row.foreign_load for row in noisy)
        yield (
            f"**⚠ NOISY: in {len(noisy)} of {len(report.rows)} scenarios other processes used up to "
            f"{percent(worst)}% of a core (see 'other load'); rerun on an idle machine.**"
        )
        yield ""


def _problems(report: Report) -> Iterator[str]:
    samples = [
        f"- {row.scenario.kind} conc {row.scenario.concurrency} delay {row.scenario.delay_ms} ms "
        f"{result.via}: {count} x {message}"
        for row in report.rows
        for result in (row.direct, row.sidecar)
        for message, count in result.error_samples.items()
    ]
    if samples:
        yield from ["", "Errors:", "", *samples]
    if report.sidecar_log_problems:
        yield from ["", "Sidecar log warnings/errors (first few):", ""]
        yield from (f"- `{line[:300]}`" for line in report.sidecar_log_problems)
