"""Every PromQL query of the chart's Grafana dashboard returns data from a real Prometheus scraping a
real sidecar under traffic (answers, streams, an unknown route, quota refusals and near-limit events,
a key backend)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar.cli import main as sidecar_cli
from tests.conftest import echo_policy, user
from tests.k8s.tools import CHART
from tests.support.api import generate_request, stream_request
from tests.support.prometheus import query, start_prometheus

pytestmark = pytest.mark.integration

DASHBOARD = CHART / "dashboards" / "orchestrator-sidecar.json"


def dashboard_queries() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in board["panels"] if p["type"] != "row" for t in p["targets"]]


def policy() -> dict[str, Any]:
    return echo_policy(
        deployments={
            "echo": {
                "provider": "echo",
                "model": "echo-1",
                "price": {"input_per_million": 1, "output_per_million": 2},
            }
        },
        quota={
            "near_limit_levels": [50],
            "limits": [
                {"name": "user-minute-requests", "metric": "requests", "window": "minute", "limit": 3}
            ],
        },
    )


async def traffic(stub: Any, round_: int) -> None:
    """Answers and streams, an unknown route, and a user running into the quota."""
    for i in range(5):  # one user: 3 answered (the second passes 50 %), 2 refused
        request = generate_request(messages=[user(f"hello number {i}")], tenant_id="t1", user_id=f"u{round_}")
        try:
            await stub.Generate(request)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    for i in range(2):
        request = stream_request(messages=[user(f"a stream {i}")], tenant_id="t1", user_id=f"s{round_}{i}")
        assert [e async for e in stub.StreamGenerate(request)][-1].HasField("result")
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Generate(
            generate_request(messages=[user("x")], model="no-such-route", tenant_id="t1", user_id="u2")
        )


async def returns_data(base: str, promql: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for _ in range(150):
        result = await asyncio.to_thread(query, base, promql)
        # a number for at least one series (a route with no streams has no time to first token: NaN)
        if any(r["value"][1] not in ("NaN", "+Inf", "-Inf") for r in result):
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"no data for {promql}: {result}")


async def test_every_dashboard_query_returns_data(serve: Any, tmp_path: Path) -> None:
    kek = tmp_path / "kek"
    assert sidecar_cli(["keys", "new-kek", str(kek)]) == 0
    settings = {
        "keys": {"backend": "local", "local": {"kek_file": str(kek)}, "store_path": str(tmp_path / "keys.db")}
    }
    s = await serve({"settings": settings, "policy": policy()})
    assert s.sidecar.metrics_port
    with start_prometheus(tmp_path, f"127.0.0.1:{s.sidecar.metrics_port}") as base:
        await returns_data(base, "sidecar_build_info")  # one scrape before the traffic: rates have a base
        # Two rounds: Prometheus sees a series appear with the first and its increase with the second.
        await traffic(s.stub, 1)
        await returns_data(base, "sidecar_quota_refusals_total")
        await traffic(s.stub, 2)
        queries = dashboard_queries()
        assert len(queries) >= 15
        for title, promql in queries:
            try:
                await returns_data(base, promql)
            except AssertionError as exc:
                raise AssertionError(f"panel {title!r}: {exc}") from exc
        refusals = await returns_data(base, "sum by (limit) (increase(sidecar_quota_refusals_total[5m]))")
        assert refusals[0]["metric"]["limit"] == "user-minute-requests"
