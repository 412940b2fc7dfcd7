"""The chart's alerts fire on the first event of their kind, seen by a real Prometheus scraping a real
sidecar. A labelled counter whose series is only created by its first increment appears in
Prometheus already at its first value, and `increase()` / `rate()` over a series that never changed
after it appeared is 0: such an alert missed the whole first burst (and a one-off burst entirely)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import echo_policy, user
from tests.support.api import generate_request
from tests.support.prometheus import query, start_prometheus

pytestmark = pytest.mark.integration

RULES = Path(__file__).resolve().parents[2] / "charts" / "orchestrator-sidecar" / "rules" / "alerts.yaml"


def alert_expr(name: str) -> str:
    """The one-line `expr:` of alert `name` in the chart's rules (a Helm template, not plain YAML)."""
    found = re.search(rf"- alert: {name}\n\s+expr: (.+)\n", RULES.read_text())
    assert found, f"no one-line expr for {name} in {RULES}"
    return found.group(1)


async def until_at_least(base: str, promql: str, least: float) -> None:
    """Poll until the query's one sample is at least `least`."""
    result: list[dict[str, Any]] = []
    for _ in range(100):
        result = await asyncio.to_thread(query, base, promql)
        if len(result) == 1 and float(result[0]["value"][1]) >= least:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{promql} never reached {least}: {result}")


async def test_the_first_burst_of_ledger_drops_fires_the_alert(serve: Any, tmp_path: Path) -> None:
    """One queue overflow (the writer holds one record for a minute, the queue takes one more, the
    rest of a burst is dropped), never repeated: OrchestratorSidecarLedgerDrops must fire on it."""
    ledger = {"queue_size": 1, "flush_interval_seconds": 60}
    s = await serve({"policy": echo_policy(), "settings": {"telemetry": {"ledger": ledger}}})
    with start_prometheus(tmp_path, f"127.0.0.1:{s.sidecar.metrics_port}") as base:
        # a few scrapes of the sidecar before the burst, as a running Prometheus has
        await until_at_least(base, "count_over_time(sidecar_build_info[1m])", 3)
        for _ in range(6):
            await s.stub.Generate(generate_request(messages=[user("one two three")]))
        dropped = 'sidecar_ledger_dropped_records_total{cause="queue_full"}'
        await until_at_least(base, dropped, 4)  # six calls: one held by the writer, one queued
        await asyncio.sleep(1.0)  # about five more scrapes of the same value: the alert had its chance
        fired = await asyncio.to_thread(query, base, alert_expr("OrchestratorSidecarLedgerDrops"))
        assert [r["metric"]["cause"] for r in fired] == ["queue_full"]


async def test_the_first_calls_shed_at_capacity_fire_the_alert(serve: Any, tmp_path: Path) -> None:
    """A one-off burst over the admission capacity, never repeated: OrchestratorSidecarCallsShed
    must fire on it, so the series of every priority is there at 0 before the first shed."""
    slow = {"provider": "echo", "model": "echo-1", "echo": {"first_token_delay_seconds": 1.0}}
    policy = {**echo_policy(deployments={"echo": slow}), "admission": {"capacity": 1, "queue_size": 0}}
    s = await serve({"policy": policy})
    with start_prometheus(tmp_path, f"127.0.0.1:{s.sidecar.metrics_port}") as base:
        await until_at_least(base, "count_over_time(sidecar_build_info[1m])", 3)
        calls = [s.stub.Generate(generate_request(messages=[user("one two")])) for _ in range(3)]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert sum(isinstance(o, Exception) for o in outcomes) == 2  # one served, two shed at once
        await until_at_least(base, 'sidecar_admission_shed_total{priority="normal"}', 2)
        await asyncio.sleep(1.0)  # more scrapes of the same value: the alert had its chance
        fired = await asyncio.to_thread(query, base, alert_expr("OrchestratorSidecarCallsShed"))
        assert [r["metric"]["priority"] for r in fired] == ["normal"]
