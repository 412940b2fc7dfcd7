"""The benchmark's Markdown report: one table per run, plus what the numbers can and cannot say."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from common import STREAM, UNARY, RunResult

CLIENT_BOUND = 0.90  # CPU 0 (load generator + upstream) busier than this: the client limits the rate
SATURATED = 0.90  # CPU 1 (sidecar) busier than this: the sidecar runs flat out
# The bar of issue 18 (every figure with the full default pipeline on).
BAR_UNARY_CPU_MS = 0.6  # CPU per unary call at saturation (>= 1,650 calls/s on one core)
BAR_STREAM_CPU_MS = 1.0  # CPU per 20-chunk stream at saturation
BAR_LOW_LOAD_RATIO = 1.5  # CPU per call at low load against saturation
BAR_P50_MS, BAR_P99_MS = 1.0, 2.5  # added latency / time to first chunk, 50 ms upstream
BAR_RSS_MB = 80.0
BAR_IDLE_CPU = 0.005  # of a core, with health probes on
BAR_READY_SECONDS = 1.0
BAR_EVENT_US = 30.0  # sidecar CPU per relayed one-token upstream event at saturation
BAR_REPORTED_RATIO = 0.10  # the summary's overhead against the client's measurement
FOREIGN = 0.15  # CPU busier than the benchmark's own processes account for: something else ran
BAR_CONCURRENCIES, BAR_DELAY_MS = (1, 10), 50  # ~20 and ~200 req/s with a 50 ms upstream
BAR_SATURATION = 100  # calls in flight for the token-stream CPU runs
TOKENS_SHORT, TOKENS_LONG = 20, 100  # one-token events per stream in the token-stream runs


Pair = tuple[float | None, float | None]  # p50, p99 in ms


@dataclass(frozen=True)
class Scenario:
    kind: str
    concurrency: int
    delay_ms: int
    tokens: int = 0  # one-token upstream events per stream; 0: the recorded stream.sse


@dataclass(frozen=True)
class Profile:
    rps: float
    cpu_ms: float  # sidecar CPU per call in the sampled window
    table: tuple[str, ...]  # Markdown rows from bench/cpu_profile.py


@dataclass(frozen=True)
class Lifecycle:
    idle_cpu_fraction: float  # of a core, over the idle window, health Check once a second
    idle_checks: int
    ready_seconds: list[float]  # process start to the first SERVING health answer, per start


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    direct: RunResult
    sidecar: RunResult
    rss_mb: float
    bare: RunResult | None = None  # through bench/bare_server.py; None with --no-bare

    @property
    def results(self) -> tuple[RunResult, ...]:
        return (self.direct, self.sidecar) if self.bare is None else (self.direct, self.sidecar, self.bare)

    @property
    def errors(self) -> int:
        return sum(result.errors for result in self.results)

    @property
    def client_bound(self) -> bool:
        return is_client_bound(self.sidecar)

    @property
    def foreign_load(self) -> float:
        """The most CPU (fraction of a core) used by processes outside the benchmark in any of its runs."""
        return max(max(foreign_load(result).values()) for result in self.results)


def is_client_bound(result: RunResult) -> bool:
    return result.cpu_busy.get("cpu0", 0.0) >= CLIENT_BOUND


def foreign_load(result: RunResult) -> dict[str, float]:
    """Per CPU: how busy it was beyond what the benchmark's processes on it used (kernel time included)."""
    window, cpu = result.window_seconds, result.cpu_seconds
    if window <= 0:
        return {"cpu0": 0.0, "cpu1": 0.0}
    ours = {
        "cpu0": (cpu.get("loadgen", 0.0) + cpu.get("upstream", 0.0)) / window,
        "cpu1": (cpu.get("sidecar", 0.0) + cpu.get("bare", 0.0)) / window,  # both sit on CPU 1
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
    bar_rows: tuple[Row, ...] = ()  # the token-stream runs
    lifecycle: Lifecycle | None = None
    features: str = ""
    profile: Profile | None = None

    @property
    def errors(self) -> int:
        return sum(row.errors for row in (*self.rows, *self.bar_rows))


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def pair(p50: float | None, p99: float | None) -> str:
    return f"{ms(p50)} / {ms(p99)}"


def diff(direct: float | None, sidecar: float | None) -> str:
    return "-" if direct is None or sidecar is None else f"{sidecar - direct:+.2f}"


def pair_diff(minuend: Pair, subtrahend: Pair) -> str:
    return f"{diff(subtrahend[0], minuend[0])} / {diff(subtrahend[1], minuend[1])}"


def percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.0f}"


def table(header: Iterable[str], lines: Iterable[Iterable[str]]) -> list[str]:
    head = list(header)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return out


class Column(NamedTuple):
    header: str
    cell: Callable[[Row], str]
    bare: bool = False  # shown only when the run has the bare gRPC path


def _latency(result: RunResult) -> Pair:
    return result.p50_ms, result.p99_ms


def _ttfc(result: RunResult) -> Pair:
    return result.ttfc_p50_ms, result.ttfc_p99_ms


def _bare(row: Row) -> RunResult:
    assert row.bare is not None  # bare columns are shown only when every row has a bare run
    return row.bare


def _streamed(row: Row, text: str) -> str:
    return text if row.scenario.kind == STREAM else "-"


def _errors(row: Row) -> str:
    if row.errors == 0:
        return "0"
    parts = [f"{result.via} {result.errors}" for result in row.results]
    return f"⚠ {row.errors} ({', '.join(parts)})"


MAIN_COLUMNS = (
    Column("kind", lambda r: r.scenario.kind),
    Column("conc", lambda r: str(r.scenario.concurrency)),
    Column("upstream delay ms", lambda r: str(r.scenario.delay_ms)),
    Column("direct req/s", lambda r: f"{r.direct.rps:.0f}"),
    Column("sidecar req/s", lambda r: f"{r.sidecar.rps:.0f}" + (" ‡" if r.client_bound else "")),
    Column(
        "bare gRPC req/s",
        lambda r: f"{_bare(r).rps:.0f}" + (" ‡" if is_client_bound(_bare(r)) else ""),
        bare=True,
    ),
    Column("direct p50 / p99 ms", lambda r: pair(*_latency(r.direct))),
    Column("sidecar p50 / p99 ms", lambda r: pair(*_latency(r.sidecar))),
    Column("overhead p50 / p99 ms", lambda r: pair_diff(_latency(r.sidecar), _latency(r.direct))),
    Column("bare gRPC p50 / p99 ms", lambda r: pair(*_latency(_bare(r))), bare=True),
    Column(
        "sidecar minus bare p50 / p99 ms",
        lambda r: pair_diff(_latency(r.sidecar), _latency(_bare(r))),
        bare=True,
    ),
    Column("TTFC direct p50 / p99 ms", lambda r: _streamed(r, pair(*_ttfc(r.direct)))),
    Column("TTFC sidecar p50 / p99 ms", lambda r: _streamed(r, pair(*_ttfc(r.sidecar)))),
    Column(
        "TTFC overhead p50 / p99 ms",
        lambda r: _streamed(r, pair_diff(_ttfc(r.sidecar), _ttfc(r.direct))),
    ),
    Column("TTFC bare gRPC p50 / p99 ms", lambda r: _streamed(r, pair(*_ttfc(_bare(r)))), bare=True),
    Column(
        "TTFC sidecar minus bare p50 / p99 ms",
        lambda r: _streamed(r, pair_diff(_ttfc(r.sidecar), _ttfc(_bare(r)))),
        bare=True,
    ),
    Column("sidecar CPU ms/req", lambda r: ms(r.sidecar.cpu_ms_per_request("sidecar"))),
    Column("bare gRPC CPU ms/req", lambda r: ms(_bare(r).cpu_ms_per_request("bare")), bare=True),
    Column("sidecar RSS MB", lambda r: f"{r.rss_mb:.0f}"),
    Column(
        "CPU0 / CPU1 busy %",
        lambda r: f"{percent(r.sidecar.cpu_busy.get('cpu0'))} / {percent(r.sidecar.cpu_busy.get('cpu1'))}",
    ),
    Column("errors", _errors),
)


def with_bare(rows: Sequence[Row]) -> bool:
    return bool(rows) and all(row.bare is not None for row in rows)


def main_columns(rows: Sequence[Row]) -> tuple[Column, ...]:
    bare = with_bare(rows)
    return tuple(column for column in MAIN_COLUMNS if bare or not column.bare)


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


def find(rows: Iterable[Row], kind: str, concurrency: int, delay_ms: int, tokens: int = 0) -> Row | None:
    wanted = Scenario(kind, concurrency, delay_ms, tokens)
    return next((row for row in rows if row.scenario == wanted), None)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def bar_lines(report: Report) -> Iterator[str]:
    """The bar of issue 18, each line PASS or FAIL, from the rows and measurements this run has."""
    rows = report.rows
    for kind, pick in ((UNARY, _latency), (STREAM, _ttfc)):
        for concurrency in BAR_CONCURRENCIES:
            row = find(rows, kind, concurrency, BAR_DELAY_MS)
            if row is not None:
                yield _overhead_line(kind, row, pick)
                if row.bare is not None:
                    yield _floor_line(row, row.bare, pick)
    yield from _cpu_lines(report)
    yield (
        f"- {verdict(report.peak_rss_mb <= BAR_RSS_MB)} RSS under load ≤ {BAR_RSS_MB:g} MB: "
        f"peak (VmHWM) {report.peak_rss_mb:.0f} MB, idle {report.idle_rss_mb:.0f} MB"
    )
    yield from _lifecycle_lines(report.lifecycle)
    yield from _event_lines(report)


def _cpu(row: Row | None) -> float | None:
    return None if row is None else row.sidecar.cpu_ms_per_request("sidecar")


def _cpu_lines(report: Report) -> Iterator[str]:
    rows = report.rows
    top = max((row.scenario.concurrency for row in rows), default=0)
    unary = _cpu(find(rows, UNARY, top, 0))
    if unary is not None:
        yield (
            f"- {verdict(unary <= BAR_UNARY_CPU_MS)} CPU per unary call at saturation "
            f"≤ {BAR_UNARY_CPU_MS:g} ms (instant upstream, conc {top}): {unary:.2f} ms, "
            f"i.e. ~{1000 / unary:.0f} calls/s per core"
        )
    stream = _cpu(find(report.bar_rows, STREAM, BAR_SATURATION, 0, TOKENS_SHORT))
    if stream is not None:
        yield (
            f"- {verdict(stream <= BAR_STREAM_CPU_MS)} CPU per {TOKENS_SHORT}-chunk stream at saturation ≤ "
            f"{BAR_STREAM_CPU_MS:g} ms (instant upstream, conc {BAR_SATURATION}): {stream:.2f} ms"
        )
    for kind in (UNARY, STREAM):
        low, high = _cpu(find(rows, kind, 1, BAR_DELAY_MS)), _cpu(find(rows, kind, top, 0))
        if low is not None and high is not None and high > 0:
            yield (
                f"- {verdict(low <= BAR_LOW_LOAD_RATIO * high)} {kind} CPU per call at low load (conc 1, "
                f"{BAR_DELAY_MS} ms upstream) ≤ {BAR_LOW_LOAD_RATIO:g} x at saturation: {low:.2f} ms against "
                f"{high:.2f} ms, {low / high:.1f} x"
            )


def _lifecycle_lines(lifecycle: Lifecycle | None) -> Iterator[str]:
    if lifecycle is None:
        return
    idle = lifecycle.idle_cpu_fraction
    yield (
        f"- {verdict(idle < BAR_IDLE_CPU)} idle CPU < {BAR_IDLE_CPU:.1%} of a core with health probes on "
        f"(a gRPC health Check a second, {lifecycle.idle_checks} in the window; upstream probes as "
        f"configured): {idle:.2%}"
    )
    ready = sorted(lifecycle.ready_seconds)
    median = ready[len(ready) // 2]
    yield (
        f"- {verdict(median <= BAR_READY_SECONDS)} ready to serve within {BAR_READY_SECONDS:g} s of the "
        f"process start (first SERVING health answer; median of {len(ready)} starts): {median:.2f} s "
        f"(all: {', '.join(f'{s:.2f}' for s in ready)})"
    )


def _event_lines(report: Report) -> Iterator[str]:
    short = _cpu(find(report.bar_rows, STREAM, BAR_SATURATION, 0, TOKENS_SHORT))
    long = _cpu(find(report.bar_rows, STREAM, BAR_SATURATION, 0, TOKENS_LONG))
    if short is not None and long is not None:
        per_event = (long - short) * 1000 / (TOKENS_LONG - TOKENS_SHORT)
        yield (
            f"- {verdict(per_event <= BAR_EVENT_US)} sidecar CPU per relayed one-token upstream event at "
            f"saturation ≤ {BAR_EVENT_US:g} µs: {per_event:.0f} µs (the slope from {TOKENS_SHORT}- to "
            f"{TOKENS_LONG}-event streams, conc {BAR_SATURATION}; {long * 1000 / TOKENS_LONG:.0f} µs per "
            f"event with the call's own cost spread over its {TOKENS_LONG} events)"
        )
    checks = (
        (find(report.rows, UNARY, 1, BAR_DELAY_MS), f"unary, conc 1, {BAR_DELAY_MS} ms upstream"),
        (find(report.bar_rows, STREAM, 1, 0, TOKENS_LONG), f"{TOKENS_LONG}-event stream, conc 1"),
    )
    for row, what in checks:
        if row is not None:
            yield _reported_line(row, what)


def _reported_line(row: Row, what: str) -> str:
    reported = row.sidecar.reported_overhead_p50_ms
    s50, d50 = row.sidecar.p50_ms, row.direct.p50_ms
    if reported is None or s50 is None or d50 is None:
        return f"- FAIL the summary's overhead against the client's ({what}): no data"
    measured = s50 - d50
    ok = abs(reported - measured) <= BAR_REPORTED_RATIO * abs(measured)
    return (
        f"- {verdict(ok)} the overhead the summary reports matches what a client measures against a direct "
        f"call within {BAR_REPORTED_RATIO:.0%} ({what}, p50): summary {reported:.2f} ms, client "
        f"{measured:.2f} ms (sidecar {s50:.2f} - direct {d50:.2f})"
    )


def _overhead_line(kind: str, row: Row, pick: Callable[[RunResult], Pair]) -> str:
    (d50, d99), (s50, s99) = pick(row.direct), pick(row.sidecar)
    what = "added latency" if kind == UNARY else "time to first chunk overhead"
    if None in (d50, d99, s50, s99):
        return f"- FAIL {kind} {what}: no data"
    assert d50 is not None and d99 is not None and s50 is not None and s99 is not None
    ok = s50 - d50 < BAR_P50_MS and s99 - d99 < BAR_P99_MS
    return (
        f"- {verdict(ok)} {kind} {what} p50 < {BAR_P50_MS:g} ms and p99 < {BAR_P99_MS:g} ms, "
        f"{BAR_DELAY_MS} ms upstream, conc {row.scenario.concurrency} ({row.sidecar.rps:.0f} req/s): "
        f"{s50 - d50:+.2f} / {s99 - d99:+.2f} ms"
    )


def _floor_line(row: Row, bare: RunResult, pick: Callable[[RunResult], Pair]) -> str:
    """What a bare grpc.aio server adds over direct in the same scenario: the least any Python gRPC
    sidecar could show against this criterion (it needs the gRPC hop plus an upstream call at least as
    costly as the direct one)."""
    (d50, d99), (s50, s99), (b50, b99) = pick(row.direct), pick(row.sidecar), pick(bare)
    if None in (d50, d99, s50, s99, b50, b99):
        return "  - floor (bare gRPC server, same scenario): no data"
    assert d50 is not None and d99 is not None and s50 is not None and s99 is not None
    assert b50 is not None and b99 is not None
    return (
        f"  - floor, a bare grpc.aio + uvloop server on CPU 1 (no pipeline, no upstream call), same "
        f"scenario: bare minus direct {b50 - d50:+.2f} / {b99 - d99:+.2f} ms "
        f"at {bare.rps:.0f} req/s"
        + (" ‡" if is_client_bound(bare) else "")
        + f"; sidecar minus bare {s50 - b50:+.2f} / {s99 - b99:+.2f} ms is the sidecar's own pipeline "
        "and upstream call"
    )


def render(report: Report) -> str:
    rows = report.rows
    client_bound = [row for row in rows if row.client_bound]
    bare_bound = [row for row in rows if row.bare is not None and is_client_bound(row.bare)]
    lines = [f"Benchmark {report.machine}", "", report.method, ""]
    lines += list(_noise(report))
    if client_bound:
        lines.append(
            f"**‡ client-bound:** in {len(client_bound)} of {len(rows)} scenarios CPU 0 (load generator "
            f"+ upstream) was ≥ {CLIENT_BOUND:.0%} busy during the run through the sidecar, so that "
            "req/s is limited by the client, not the sidecar; read the sidecar's CPU ms/req instead."
        )
        lines.append("")
    if bare_bound:
        lines.append(
            f"**‡ on bare gRPC req/s:** in {len(bare_bound)} of {len(rows)} scenarios the run through the "
            f"bare gRPC server was client-bound the same way (CPU 0 ≥ {CLIENT_BOUND:.0%} busy)."
        )
        lines.append("")
    if report.errors:
        lines += [f"**⚠ FLAGGED: {report.errors} failed requests; the affected rows are not valid.**", ""]
    columns = main_columns(rows)
    lines += table((c.header for c in columns), ([c.cell(row) for c in columns] for row in rows))
    lines += [
        "",
        "Where the CPU went (runs through the sidecar unless noted), CPU ms per completed request:",
        "",
    ]
    lines += table(CPU_HEADER, (cpu_cells(row) for row in rows))
    if report.bar_rows:
        lines += [
            "",
            f"Token streams: an instant upstream sending one token per SSE event ({TOKENS_SHORT} or "
            f"{TOKENS_LONG} events, then the finish and usage event and [DONE]), as llama.cpp's server does:",
            "",
        ]
        token_columns = (Column("tokens", lambda r: str(r.scenario.tokens)), *main_columns(report.bar_rows))
        cells = ([c.cell(row) for c in token_columns] for row in report.bar_rows)
        lines += table((c.header for c in token_columns), cells)
    lines += ["", "Against the bar (issue 18):", ""]
    if report.features:
        lines += [report.features, ""]
    lines += list(bar_lines(report))
    if report.profile is not None:
        lines += [
            "",
            f"Where a unary call's CPU goes at saturation (conc {BAR_SATURATION}, instant upstream, "
            f"{report.profile.rps:.0f} req/s, {report.profile.cpu_ms:.2f} ms per call; py-spy samples of "
            "every thread, each charged to its innermost frame in the sidecar's own code; see "
            "[analysis.md](analysis.md) for the reading of it):",
            "",
            *report.profile.table,
        ]
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
        for result in row.results
        for message, count in result.error_samples.items()
    ]
    if samples:
        yield from ["", "Errors:", "", *samples]
    if report.sidecar_log_problems:
        yield from ["", "Sidecar log warnings/errors (first few):", ""]
        yield from (f"- `{line[:300]}`" for line in report.sidecar_log_problems)
