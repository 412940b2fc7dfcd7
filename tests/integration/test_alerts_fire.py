"""The chart's alert rules, as shipped (rendered by helm, `for` set to 0s), loaded into a real
Prometheus that scrapes a real sidecar: each induced fault fires its alert. An alert whose expression
names a series or a label the sidecar does not export, or that misses the first errors of a fault,
never fires here."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from sidecar._gen.orchestrator.v1 import embed_pb2
from tests.conftest import echo_policy, free_port, user
from tests.integration.test_ledger import fresh_database
from tests.support.api import generate_request
from tests.support.prometheus import query, start_prometheus
from tests.support.relay import Relay
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.k8s.test_chart import VALUE_SETS
    from tests.k8s.tools import find, template

    rendered = template(*VALUE_SETS["monitoring"], "--set", "metrics.prometheusRule.for=0s")
    rule = find(rendered, "PrometheusRule")
    for r in rule["spec"]["groups"][0]["rules"]:
        r["for"] = "0s"  # the alerts with a fixed `for:` too: a test cannot wait minutes
    path = tmp_path_factory.mktemp("rules") / "alerts.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    return path


@contextlib.contextmanager
def watching(tmp: Path, s: Any, rules: Path) -> Iterator[str]:
    with start_prometheus(tmp, f"127.0.0.1:{s.sidecar.metrics_port}", rules) as base:
        yield base


async def scraped(base: str, times: int = 3) -> None:
    """A few scrapes of the sidecar before the fault, as a running Prometheus has."""
    for _ in range(100):
        found = await asyncio.to_thread(query, base, "count_over_time(sidecar_build_info[1m])")
        if found and float(found[0]["value"][1]) >= times:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("Prometheus never scraped the sidecar")


async def fires(base: str, alert: str, seconds: float = 10.0) -> list[dict[str, str]]:
    promql = f'ALERTS{{alertname="{alert}",alertstate="firing"}}'
    for _ in range(int(seconds * 10)):
        found = await asyncio.to_thread(query, base, promql)
        if found:
            return [r["metric"] for r in found]
        await asyncio.sleep(0.1)
    raise AssertionError(f"{alert} never fired")


async def call(s: Any, model: str = "") -> None:
    with contextlib.suppress(grpc.aio.AioRpcError):
        await s.stub.Generate(
            generate_request(messages=[user("hello there")], model=model, tenant_id="t", user_id="u")
        )


async def test_a_provider_outage_fires_breaker_open_and_deployment_unhealthy(
    serve: Any, tmp_path: Path, rules: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: every attempt and probe is refused
    policy = {
        "default_route": "r",
        "deployments": {"d": {"provider": "openai", "model": "m", "base_url": dead}},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {
            "probes": {"interval_seconds": 0.2, "jitter_ratio": 0, "unhealthy_after": 1},
            "breaker": {"min_requests": 3, "window_seconds": 60},
        },
    }
    s = await serve({"policy": policy})
    with watching(tmp_path, s, rules) as base:
        await scraped(base)
        for _ in range(5):
            await call(s)
        assert [m["deployment"] for m in await fires(base, "OrchestratorSidecarBreakerOpen")] == ["d"]
        assert [m["deployment"] for m in await fires(base, "OrchestratorSidecarDeploymentUnhealthy")] == ["d"]


async def test_usage_records_lost_to_a_database_gone_mid_run_fire_ledger_drops(
    serve: Any, tmp_path: Path, rules: Path, postgres_url: str
) -> None:
    url = await fresh_database(postgres_url)
    relay = await Relay(urllib.parse.urlsplit(url).port or 5432).start()
    ledger = {
        "backend": "postgres",
        "postgres_url": f"postgresql://postgres@127.0.0.1:{relay.port}/{url.rsplit('/', 1)[1]}",
        "flush_interval_seconds": 0.05,
        "timeout_seconds": 0.5,
    }
    try:
        s = await serve({"policy": echo_policy(), "settings": {"telemetry": {"ledger": ledger}}})
        with watching(tmp_path, s, rules) as base:
            await scraped(base)
            await relay.close()  # the database is gone: the next writes fail, their records dropped
            for _ in range(3):
                await call(s)
            fired = await fires(base, "OrchestratorSidecarLedgerDrops")
            assert [m["cause"] for m in fired] == ["write_failed"]
    finally:
        await relay.close()


@pytest.mark.parametrize("calls", [1, 30])
async def test_a_quota_store_that_is_down_fires_quota_store_down(
    serve: Any, tmp_path: Path, rules: Path, calls: int
) -> None:
    """Redis refuses (nothing listens on its port); the limits fail open, so calls are served, and
    the store's errors are counted. A single failed call, never repeated, fires the alert too."""
    quota = {
        "store": "redis",
        "redis_url": f"redis://127.0.0.1:{free_port()}/0",
        "limits": [{"name": "daily", "metric": "requests", "window": "day", "limit": 1000}],
    }
    s = await serve({"policy": echo_policy(quota=quota)})
    with watching(tmp_path, s, rules) as base:
        await scraped(base)
        for _ in range(calls):
            await call(s)
        fired = await fires(base, "OrchestratorSidecarQuotaStoreDown")
        assert {m["op"] for m in fired} >= {"reserve"}


async def test_an_embedding_key_the_provider_refuses_fires_provider_auth_failed(
    serve: Any, tmp_path: Path, rules: Path, upstream: Upstream
) -> None:
    """The sidecar's key of an embedding deployment is revoked: every Embed fails PROVIDER_AUTH_FAILED
    (INTERNAL), as a Generate on a chat deployment with that key does, and the same alert must say so."""
    refused = b'{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}'
    upstream.push(*[Reply(status=401, body=refused) for _ in range(12)])
    embeddings = {
        "deployments": {
            "remote": {
                "kind": "openai",
                "model": "e",
                "base_url": f"{upstream.url}/v1",
                "api_key": {"env": "K"},
            }
        },
        "routes": {"e": {"deployments": ["remote"]}},
        "default_route": "e",
    }
    s = await serve({"policy": echo_policy(embeddings=embeddings)}, {"K": "sk-revoked"})
    with watching(tmp_path, s, rules) as base:
        await scraped(base)
        for _ in range(6):
            with pytest.raises(grpc.aio.AioRpcError) as refusal:
                await s.stub.Embed(embed_pb2.EmbedRequest(tenant_id="t", user_id="u", texts=["some text"]))
            assert refusal.value.code() == grpc.StatusCode.INTERNAL
            await asyncio.sleep(0.3)  # over a few scrapes, as a steady trickle of calls comes
        fired = await fires(base, "OrchestratorSidecarProviderAuthFailed")
        assert [m["route"] for m in fired] == ["e"]
