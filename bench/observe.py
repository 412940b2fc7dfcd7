"""The outermost layer's own cost per call, in process: `make bench` runs it after the load benchmark.

An ObserveLayer around a terminal handler that answers at once (one chunk, with a target, usage
and one attempt recorded), driven by one coroutine. It reports microseconds of CPU per call for
the bare terminal and for the layer with: metrics only; metrics + ledger queue (SQLite writer
running); metrics + ledger + tracing (real SDK spans, no exporter). The difference from the
bare terminal is what observability adds to every call.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

import uvloop
from calls import CLOCK, bench_call

from sidecar.config.telemetry import TracingConfig
from sidecar.core.layer import Handler
from sidecar.core.types import (
    Attempt,
    Call,
    Chunk,
    FinishReason,
    Price,
    Target,
    Usage,
)
from sidecar.ledger.sqlite import SqliteLedger
from sidecar.ledger.writer import LedgerPolicy, LedgerWriter
from sidecar.pipeline.observe import ObserveLayer
from sidecar.telemetry.metrics import Metrics
from sidecar.telemetry.tracing import Tracing, build_tracing

TARGET = Target("chat", "d", "openai", "gpt-x", Price(1.0, 2.0))
FINAL = Chunk(text="ok", finish_reason=FinishReason.STOP, usage=Usage(10, 1))


async def terminal(call: Call) -> AsyncGenerator[Chunk, None]:
    record = call.record
    record.served_by(TARGET)
    record.upstream_finished(FINAL.finish_reason, FINAL.usage)
    record.attempt_ended(Attempt("d", "openai", "OK", 0.0))
    yield FINAL


def call() -> Call:
    return bench_call(model="chat", tenant_id="acme", user_id="alice", stream=True)


async def measure(handler: Handler, calls: int, between: Callable[[], object] | None = None) -> float:
    """CPU microseconds per call (the ledger writer's own batches included when it runs)."""
    for _ in range(min(1000, calls)):  # warm-up
        async for _chunk in handler(call()):
            pass
    started = time.process_time()
    for i in range(calls):
        async for _chunk in handler(call()):
            pass
        if between is not None and i % 500 == 499:
            await between()  # type: ignore[misc]
    return (time.process_time() - started) / calls * 1e6


def observed(metrics: Metrics, ledger: LedgerWriter | None, tracing: Tracing) -> ObserveLayer:
    return ObserveLayer(
        terminal, metrics=metrics, ledger=ledger, tracing=tracing, routes=("chat",), clock=CLOCK
    )


async def main(calls: int) -> None:
    bare = await measure(terminal, calls)
    metrics_only = await measure(observed(Metrics(), None, Tracing.disabled()), calls)
    with tempfile.TemporaryDirectory() as tmp:
        metrics = Metrics()
        writer = LedgerWriter(
            SqliteLedger(Path(tmp) / "usage.db"),
            LedgerPolicy(queue_size=calls + 1000),
            clock=CLOCK,
            signals=metrics,
        )
        await writer.start()
        with_ledger = await measure(observed(metrics, writer, Tracing.disabled()), calls, writer.flush)
        traced = await measure(
            observed(metrics, writer, build_tracing(TracingConfig(enabled=True))), calls, writer.flush
        )
        await writer.stop()
    rows = [
        "| configuration | µs CPU/call | added by observability |",
        "|---|---|---|",
        f"| terminal alone | {bare:.1f} | |",
        f"| + metrics | {metrics_only:.1f} | {metrics_only - bare:.1f} |",
        f"| + metrics + ledger (SQLite, batches written) | {with_ledger:.1f} | {with_ledger - bare:.1f} |",
        f"| + metrics + ledger + tracing (SDK spans, no exporter) | {traced:.1f} | {traced - bare:.1f} |",
    ]
    sys.stdout.write(f"Observe layer, {calls} calls per row, instant terminal:\n\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    uvloop.run(main(parser.parse_args().calls))
