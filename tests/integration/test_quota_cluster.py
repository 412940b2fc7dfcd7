"""Four real sidecar processes share one Redis: exact admission, kill/restart, streams, Redis outage.

The sidecars use Redis server time and SystemClock, as in production; windows are days in a time
zone where it is around noon when the tests start (`noon_zone`), and every test uses its own tenant,
so the tests are independent of each other and of the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from sidecar.core.tokens import count_tokens
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import Stubs, generate_request, stream_request
from tests.support.quota_cluster import OwnRedis, SidecarProcess

pytestmark = pytest.mark.integration
STREAM_LIMIT = 5000
CHUNK_TOKENS = 2
THREE_THEN_REFUSED = ["OK", "OK", "OK", "REQUEST_QUOTA_EXCEEDED"]


def tenant_limit(name: str, metric: str, limit: int, **extra: Any) -> dict[str, Any]:
    return {
        "limits": [
            {"name": name, "metric": metric, "scope": "tenant", "window": "day", "limit": limit, **extra}
        ]
    }


def noon_zone() -> str:
    """A fixed-offset zone where it is now between 11:00 and 13:00: no day rolls over during a run."""
    offset = 12 - time.gmtime().tm_hour  # local = UTC + offset; Etc/GMT-N is UTC+N (POSIX sign)
    return "Etc/GMT" + (f"-{offset}" if offset > 0 else f"+{-offset}" if offset < 0 else "")


def config(redis_url: str, prefix: str) -> dict[str, Any]:
    echo = {
        "first_token_delay_seconds": 0.2,  # long enough that a killed sidecar has calls in flight
        "chunk_delay_seconds": 0.001,
        "tokens_per_chunk": CHUNK_TOKENS,
    }
    return {
        "policy": {
            "default_route": "echo",
            "deployments": {"echo": {"provider": "echo", "model": "echo-1", "echo": echo}},
            "routes": {"echo": {"deployments": ["echo"]}},
            "routing": {"probes": {"enabled": False}},
            "tier_assignment": {"default": "enterprise"},
            "quota": {
                "store": "redis",
                "redis_url": redis_url,
                "key_prefix": prefix,
                "store_timeout_seconds": 5.0,  # a loaded machine must not turn into fail_open admissions
                "timezone": noon_zone(),
                "output_tokens_estimate": 4,
                "extension_tokens": 4,
                "tenants": {
                    "acc": tenant_limit("acc-requests", "requests", 100),
                    "kill": tenant_limit("kill-requests", "requests", 100),
                    "stream": tenant_limit("stream-tokens", "tokens", STREAM_LIMIT),
                    "open": tenant_limit("open-requests", "requests", 3, on_store_error="fail_open"),
                    "closed": tenant_limit("closed-requests", "requests", 3, on_store_error="fail_closed"),
                },
            },
        }
    }


class Cluster:
    def __init__(self, redis: OwnRedis, sidecars: list[SidecarProcess]) -> None:
        self.redis, self.sidecars = redis, sidecars

    def channels(self) -> list[grpc.aio.Channel]:
        return [grpc.aio.insecure_channel(s.target) for s in self.sidecars]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory: Path = tmp_path_factory.mktemp("quota-cluster")
    redis = OwnRedis(directory)
    redis.start()
    cfg = config(redis.url, f"it:{uuid.uuid4().hex[:8]}")
    sidecars = [SidecarProcess(directory, f"sidecar{i}", cfg) for i in range(4)]
    try:
        for s in sidecars:
            s.spawn()
        for s in sidecars:
            s.wait_ready()
        yield Cluster(redis, sidecars)
    finally:
        for s in sidecars:
            s.stop()
        redis.stop()


def req(tenant: str, i: int, words: int = 3) -> gen.GenerateRequest:
    text = " ".join(f"w{j}" for j in range(words))
    return generate_request(messages=[user(text)], tenant_id=tenant, user_id=f"u{i}")


async def fire(
    stubs: list[Stubs],
    tenant: str,
    n: int,
    start: int = 0,
    progress: tuple[int, asyncio.Event] | None = None,
) -> list[str]:
    """n concurrent unary calls, round robin over the sidecars; each outcome's reason ("OK" or the error).
    `progress` (k, event): the event is set once k calls have finished."""
    finished = 0

    async def one(i: int) -> str:
        nonlocal finished
        try:
            await stubs[i % len(stubs)].Generate(req(tenant, i), timeout=20)
            return "OK"
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                return (await rich(err)).reason
            return err.code().name
        finally:
            finished += 1
            if progress is not None and finished >= progress[0]:
                progress[1].set()

    return list(await asyncio.gather(*(one(i) for i in range(start, start + n))))


async def quota_of(stub: Stubs, tenant: str, name: str) -> quota_pb2.QuotaLimit:
    got = await stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id=tenant, user_id="u0"))
    return next(limit for limit in got.limits if limit.name == name)


async def test_four_sidecars_admit_exactly_the_limit(cluster: Cluster) -> None:
    channels = cluster.channels()
    stubs = [Stubs(c) for c in channels]
    outcomes = await fire(stubs, "acc", 400)
    assert outcomes.count("OK") == 100
    assert outcomes.count("REQUEST_QUOTA_EXCEEDED") == 300
    for stub in stubs:  # every sidecar sees the same shared numbers
        limit = await quota_of(stub, "acc", "acc-requests")
        assert (limit.used, limit.reserved, limit.remaining) == (100, 0, 0)
    for c in channels:
        await c.close()


async def test_a_killed_sidecar_loses_no_counts(cluster: Cluster) -> None:
    channels = cluster.channels()
    stubs = [Stubs(c) for c in channels]
    victim = cluster.sidecars[3]
    serving = asyncio.Event()
    first = asyncio.ensure_future(fire(stubs, "kill", 200, progress=(20, serving)))
    await serving.wait()  # calls are being served: kill one sidecar in the middle of them
    victim.kill()
    before = await first
    victim.restart()
    after = await fire(stubs, "kill", 200, start=200)
    ok = (before + after).count("OK")
    assert 0 < ok <= 100 and "UNAVAILABLE" in before  # some calls died with the process
    limits = [await quota_of(stub, "kill", "kill-requests") for stub in stubs]
    assert {(x.used, x.reserved) for x in limits} == {(limits[0].used, limits[0].reserved)}
    # admitted exactly 100: settled calls plus the reservations the killed process still holds
    assert limits[0].used + limits[0].reserved == 100 and limits[0].used >= ok
    assert after[-100:].count("OK") == 0
    for c in channels:
        await c.close()


async def test_streams_share_a_token_budget_with_no_overshoot(cluster: Cluster) -> None:
    """200 concurrent streams on four sidecars, one 5,000-token daily budget: the total charged is
    within the limit, and every stream is charged exactly what it received (a cut stream gets the part
    of its last chunk that fits, and its RESOURCE_EXHAUSTED says what it was charged)."""
    channels = cluster.channels()
    stubs = [Stubs(c) for c in channels]

    async def stream(i: int) -> tuple[str, int, int]:
        """(outcome, tokens received, tokens charged)."""
        text = " ".join(f"w{j}" for j in range(30))
        request = stream_request(messages=[user(text)], tenant_id="stream", user_id=f"u{i}")
        received = 0
        try:
            async for message in stubs[i % 4].StreamGenerate(request, timeout=60):
                received += count_tokens(message.delta.text) if message.HasField("delta") else 0
                if message.HasField("result"):
                    usage = message.result.summary.usage
                    assert usage.completion_tokens == received
                    return "OK", received, usage.prompt_tokens + usage.completion_tokens
        except grpc.aio.AioRpcError as err:
            detail = await rich(err)
            meta = detail.info.metadata
            charged = (
                int(meta["promptTokens"]) + int(meta["completionTokens"]) if "promptTokens" in meta else 0
            )
            if "completionTokens" in meta:
                assert int(meta["completionTokens"]) == received, (i, dict(meta), received)
            return detail.reason, received, charged
        raise AssertionError("a stream ended without a summary")

    results = await asyncio.gather(*(stream(i) for i in range(200)))
    assert {reason for reason, _, _ in results} <= {"OK", "TOKEN_QUOTA_EXCEEDED"}
    cut = [r for r in results if r[0] == "TOKEN_QUOTA_EXCEEDED" and r[1] > 0]
    limit = await quota_of(stubs[0], "stream", "stream-tokens")
    assert limit.reserved == 0
    assert limit.used <= STREAM_LIMIT  # no overshoot, in tokens
    assert limit.used == sum(charged for _, _, charged in results)  # each charged exactly its share
    assert limit.used > STREAM_LIMIT * 0.9 and cut  # the budget was really spent, and streams were cut
    for c in channels:
        await c.close()


async def test_redis_outage_fail_open_and_fail_closed(cluster: Cluster) -> None:
    channels = cluster.channels()
    stubs = [Stubs(c) for c in channels]
    assert sorted(await fire(stubs, "closed", 4)) == THREE_THEN_REFUSED
    cluster.redis.stop()
    try:
        assert await fire(stubs, "open", 8) == ["OK"] * 8  # fail_open: served, not counted
        closed = await fire(stubs, "closed", 4)
        assert closed == ["UNAVAILABLE"] * 4
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await quota_of(stubs[0], "closed", "closed-requests")
        assert (await rich(info.value)).reason == "QUOTA_UNAVAILABLE"
        assert any("quota store error" in s.log.read_text() for s in cluster.sidecars)
    finally:
        cluster.redis.start()  # same port, same append-only file: the counts come back
    for attempt in itertools.count():
        outcome = (await fire(stubs, "closed", 1))[0]
        if outcome == "REQUEST_QUOTA_EXCEEDED":
            break
        assert outcome == "UNAVAILABLE" and attempt < 50, outcome  # a stale connection, once per sidecar
    assert sorted(await fire(stubs, "open", 4)) == THREE_THEN_REFUSED
    for c in channels:
        await c.close()
