"""A real Prometheus scrapes the sidecar's /metrics; series and values are asserted through its HTTP API."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.conftest import echo_policy, user
from tests.support.api import generate_request, stream_request, text_of
from tests.support.prometheus import promtool_check, query, start_prometheus
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

POLICY = echo_policy(
    deployments={
        "echo": {
            "provider": "echo",
            "model": "echo-1",
            "price": {"input_per_million": 1e6, "output_per_million": 2e6},
        }
    }
)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.headers["content-type"].startswith("text/plain")
        return str(resp.read().decode())


async def traffic(s: Any) -> float:
    """Three unary calls, two streams, one unknown route; the cost of the good ones."""
    cost = 0.0
    for _ in range(3):
        cost += (
            await s.stub.Generate(generate_request(messages=[user("one two three")]))
        ).summary.cost_micros / 1e6
    for _ in range(2):
        events = [e async for e in s.stub.StreamGenerate(stream_request(messages=[user("a b")]))]
        cost += events[-1].result.summary.cost_micros / 1e6
    with pytest.raises(grpc.aio.AioRpcError):
        await s.stub.Generate(generate_request(messages=[user("x")], model="no-such-route"))
    return cost


async def until(base: str, promql: str, expected: float) -> list[dict[str, Any]]:
    """Poll Prometheus until `promql` has the expected value (a scrape after the traffic)."""
    result: list[dict[str, Any]] = []
    for _ in range(100):
        result = await asyncio.to_thread(query, base, promql)
        if result and float(result[0]["value"][1]) == pytest.approx(expected):
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"{promql} never became {expected}: {result}")


async def until_result(base: str, promql: str) -> list[dict[str, Any]]:
    """Poll until the query has samples, none of them NaN."""
    result: list[dict[str, Any]] = []
    for _ in range(100):
        result = await asyncio.to_thread(query, base, promql)
        if result and all(r["value"][1] != "NaN" for r in result):
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"{promql} gave no numbers: {result}")


async def test_prometheus_scrapes_the_sidecar(serve: Any, tmp_path: Path) -> None:
    s = await serve({"policy": POLICY})
    port = s.sidecar.metrics_port
    assert port
    with start_prometheus(tmp_path, f"127.0.0.1:{port}") as base:
        await until(base, "sidecar_build_info", 1)  # scraped once before the traffic: rates have a base
        cost = await traffic(s)
        text = await asyncio.to_thread(scrape, port)
        check = promtool_check(text)
        assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), check
        await until(base, 'sum(sidecar_requests_total{route="echo",code="OK"})', 5)
        ok = await asyncio.to_thread(query, base, 'sidecar_requests_total{code="OK"}')
        by_stream = {r["metric"]["stream"]: float(r["value"][1]) for r in ok}
        assert by_stream == {"false": 3, "true": 2}
        assert {r["metric"]["provider"] for r in ok} == {"echo"}
        await until(base, 'sidecar_requests_total{route="unknown",code="NOT_FOUND"}', 1)
        await until(base, "sum(sidecar_cost_usd_total)", cost)
        await until(base, 'sum(sidecar_tokens_total{direction="output"})', 3 * 3 + 2 * 2)
        await until(base, "sum(sidecar_overhead_seconds_count)", 6)
        await until(base, "sum(gen_ai_server_time_to_first_token_seconds_count)", 2)
        await until(base, 'sum(gen_ai_client_token_usage_count{gen_ai_token_type="input"})', 5)
        await until(base, "sidecar_in_flight_calls", 0)
        await until(base, 'sidecar_breaker_state{deployment="echo",state="closed"}', 1)
        await until(base, 'sidecar_deployment_healthy{deployment="echo"}', 1)
        # docs/metrics.md's PromQL evaluates to real numbers once the series grew between scrapes
        await traffic(s)
        p99 = await until_result(
            base, "histogram_quantile(0.99, sum by (le, route) (rate(sidecar_overhead_seconds_bucket[5m])))"
        )
        assert {r["metric"]["route"] for r in p99} == {"echo", "unknown"}
        assert all(0 < float(r["value"][1]) <= 0.5 for r in p99)
        per_route = await until_result(base, "sum by (route) (increase(sidecar_cost_usd_total[5m]))")
        cost_by_route = {r["metric"]["route"]: float(r["value"][1]) for r in per_route}
        assert cost_by_route["echo"] > 0 and cost_by_route.get("unknown", 0) == 0


async def test_metrics_are_off_when_disabled(serve: Any) -> None:
    s = await serve({"policy": POLICY, "settings": {"telemetry": {"metrics": {"enabled": False}}}})
    assert s.sidecar.metrics_port is None
    assert text_of(await s.stub.Generate(generate_request(messages=[user("hi")]))) == "hi"


async def test_errors_are_split_by_reason_in_prometheus(
    serve: Any, upstream: Upstream, tmp_path: Path
) -> None:
    """A provider refusing the shared key (401) and a call to an unknown route reach Prometheus as
    sidecar_errors_total series an alert can tell apart by `reason`."""
    for _ in range(2):
        upstream.push(Reply.json("openai/error_401.json", 401))
    policy = {
        "default_route": "keyed",
        "deployments": {
            "openai": {
                "provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1",
                "api_key": {"env": "KEY"},
            }
        },
        "routes": {"keyed": {"deployments": ["openai"], "retry": {"max_attempts": 1}}},
    }  # fmt: skip
    s = await serve({"policy": policy}, {"KEY": "sk-canary-0123456789"})
    port = s.sidecar.metrics_port
    with start_prometheus(tmp_path, f"127.0.0.1:{port}") as base:
        await until(base, "sidecar_build_info", 1)
        for _ in range(2):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await s.stub.Generate(generate_request(messages=[user("x")]))
            assert info.value.code() is grpc.StatusCode.INTERNAL
        with pytest.raises(grpc.aio.AioRpcError):
            await s.stub.Generate(generate_request(messages=[user("x")], model="no-such-route"))
        await until(
            base, 'sidecar_errors_total{route="keyed",code="INTERNAL",reason="PROVIDER_AUTH_FAILED"}', 2
        )
        await until(
            base, 'sidecar_errors_total{route="unknown",code="NOT_FOUND",reason="MODEL_NOT_FOUND"}', 1
        )
        await until(base, 'sum(sidecar_errors_total{reason=~"KEY_.*"}) or vector(0)', 0)
        reasons = await asyncio.to_thread(query, base, "sum by (reason) (sidecar_errors_total)")
        assert {r["metric"]["reason"] for r in reasons} == {"PROVIDER_AUTH_FAILED", "MODEL_NOT_FOUND"}
