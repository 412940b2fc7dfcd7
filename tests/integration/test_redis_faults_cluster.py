"""Four real `sidecar serve` processes on one redis-server that fails while calls run: killed and
started again without its data and with it, SIGSTOPped for longer than the calls' deadlines, and
flushed. Turns with memory, Switch, ClearConversation, fail_closed quotas, idempotent retries and the
response cache all use that Redis. Every failure a caller sees is a classified gRPC error (never
INTERNAL or UNKNOWN), the sidecars recover by themselves when Redis is back, a fail_closed quota
counts exactly the calls it admitted (Redis kept its data), and no request id is charged twice."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sqlite3
import uuid
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import personas_pb2 as pb
from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import Stubs, generate_request, text_of
from tests.support.quota_cluster import OwnRedis, SidecarProcess

pytestmark = pytest.mark.integration
DEADLINE = 2.0
EXPECTED = {  # what a caller may see while Redis fails
    "UNAVAILABLE/SESSION_STORE_UNAVAILABLE",
    "UNAVAILABLE/QUOTA_UNAVAILABLE",
    "UNAVAILABLE/IDEMPOTENCY_STORE_UNAVAILABLE",
    "ABORTED/SWITCH_SUPERSEDED",
    "DEADLINE_EXCEEDED",  # the caller's own deadline (Redis stopped): no status from the server
}


class FailingRedis(OwnRedis):
    def start_empty(self) -> None:
        for f in self.dir.glob("appendonly*"):
            for part in f.glob("*") if f.is_dir() else []:
                part.unlink()
        self.start()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    def pause(self, paused: bool) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP if paused else signal.SIGCONT)


def limit(name: str) -> dict[str, Any]:
    return {
        "limits": [
            {"name": name, "metric": "requests", "scope": "tenant", "window": "day", "limit": 1_000_000,
             "on_store_error": "fail_closed"}
        ]
    }  # fmt: skip


def config(url: str, prefix: str) -> dict[str, Any]:
    redis = {"redis_url": url}
    return {
        "policy": {
            "default_route": "echo",
            "deployments": {
                "echo": {"provider": "echo", "model": "echo-1", "echo": {"first_token_delay_seconds": 0.1}}
            },
            "routes": {"echo": {"deployments": ["echo"]}},
            "routing": {"probes": {"enabled": False}},
            "tier_assignment": {"default": "enterprise"},
            "quota": {
                "store": "redis", **redis, "key_prefix": f"{prefix}q", "store_timeout_seconds": 1.0,
                "timezone": "UTC", "tenants": {"exact": limit("exact-req"), "idem": limit("idem-req")},
            },
            "personas": {
                "personas": [
                    {"id": "p1", "name": "P One", "system_prompt": "You are p1."},
                    {"id": "p2", "name": "P Two", "system_prompt": "You are p2."},
                ],
                "sessions": {"memory": True, "store": "redis", **redis, "key_prefix": f"{prefix}c",
                             "redis": {"timeout_seconds": 1.0}},
            },
        },
        "settings": {
            "idempotency": {"backend": "redis", **redis, "key_prefix": f"{prefix}i:",
                            "redis": {"timeout_seconds": 1.0}},
            "cache": {"enabled": True, "backend": "redis", **redis, "namespace": f"{prefix}k",
                      "timeout_seconds": 0.5},
        },
    }  # fmt: skip


class Cluster:
    def __init__(self, redis: FailingRedis, sidecars: list[SidecarProcess], directory: Path) -> None:
        self.redis, self.sidecars, self.dir = redis, sidecars, directory


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("redis-faults")
    redis = FailingRedis(directory)
    redis.start()
    cfg = config(redis.url, f"f{uuid.uuid4().hex[:6]}")
    sidecars = [SidecarProcess(directory, f"sidecar{i}", cfg) for i in range(4)]
    try:
        for s in sidecars:
            s.spawn()
        for s in sidecars:
            s.wait_ready()
        yield Cluster(redis, sidecars, directory)
    finally:
        for s in sidecars:
            s.stop()
        if redis.process is not None:
            redis.pause(False)
        redis.stop()


class Load:
    """Calls of every kind, round robin over the sidecars, until stopped; each outcome counted."""

    def __init__(self, stubs: list[Stubs], tag: str) -> None:
        self.stubs, self.tag, self.stopped, self.n = stubs, tag, False, 0
        self.seen: collections.Counter[str] = collections.Counter()
        self.unexpected: list[str] = []
        self.admitted = 0  # fail_closed quota calls answered
        self.answers: dict[str, set[str]] = collections.defaultdict(set)  # request id -> answers

    def stub(self) -> Stubs:
        self.n += 1
        return self.stubs[self.n % len(self.stubs)]

    async def outcome(self, call: Awaitable[Any]) -> tuple[str, Any]:
        try:
            reply = await call
        except grpc.aio.AioRpcError as err:
            if err.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
                reason = "DEADLINE_EXCEEDED"
            else:
                reason = f"{err.code().name}/{(await rich(err)).reason}"
            self.seen[reason] += 1
            if reason not in EXPECTED:
                self.unexpected.append(f"{reason}: {err.details()}")
            return reason, None
        self.seen["OK"] += 1
        return "OK", reply

    async def turns(self, u: int) -> None:
        while not self.stopped:
            ids = {"tenant_id": "acme", "user_id": f"{self.tag}u{u}", "conversation_id": "c"}
            await self.outcome(
                self.stub().Generate(generate_request(messages=[user("hi")], **ids), timeout=DEADLINE)
            )
            persona = "p1" if self.n % 2 else "p2"
            await self.outcome(
                self.stub().Switch(pb.SwitchRequest(persona_id=persona, **ids), timeout=DEADLINE)
            )
            if self.n % 5 == 0:
                clear = pb.ClearConversationRequest(**ids)
                await self.outcome(self.stub().ClearConversation(clear, timeout=DEADLINE))

    async def exact(self, u: int) -> None:
        while not self.stopped:
            req = generate_request(tenant_id="exact", user_id=f"x{u}", messages=[user("count me")])
            if (await self.outcome(self.stub().Generate(req, timeout=DEADLINE)))[0] == "OK":
                self.admitted += 1

    async def retries(self, u: int) -> None:
        n = 0
        while not self.stopped:
            n += 1
            rid = f"{self.tag}-{u}-{n}"
            for _ in range(3):  # every request three times, on different sidecars
                req = generate_request(
                    tenant_id="idem", user_id=f"i{u}", request_id=rid, messages=[user(rid)]
                )
                _, reply = await self.outcome(self.stub().Generate(req, timeout=DEADLINE))
                if reply is not None:
                    self.answers[rid].add(text_of(reply))

    async def cached(self, u: int) -> None:
        while not self.stopped:
            config = gen.GenerationConfig(temperature=0.0)
            req = generate_request(tenant_id="acme", user_id=f"k{u}", messages=[user("same")], config=config)
            await self.outcome(self.stub().Generate(req, timeout=DEADLINE))
            await asyncio.sleep(0.02)


async def run_through(cluster: Cluster, tag: str, fault: Any) -> Load:
    channels = [grpc.aio.insecure_channel(s.target) for s in cluster.sidecars]
    load = Load([Stubs(c) for c in channels], tag)
    workers = [
        asyncio.create_task(work(u))
        for u in range(2)
        for work in (load.turns, load.exact, load.retries, load.cached)
    ]
    try:
        await asyncio.sleep(1.0)
        await fault()
        settled: collections.Counter[str] = collections.Counter()
        for _ in range(8):  # recovered: a window of 2 s with every call answered (a stale pooled
            before = collections.Counter(load.seen)  # connection fails once, at most)
            await asyncio.sleep(2.0)
            settled = collections.Counter(load.seen) - before
            if set(settled) == {"OK"} and settled["OK"] > 20:
                break
        assert set(settled) == {"OK"} and settled["OK"] > 20, (tag, settled, load.seen)
    finally:
        load.stopped = True
        await asyncio.gather(*workers)
        for c in channels:
            await c.close()
    assert load.unexpected == [], load.unexpected[:5]
    return load


def charged(cluster: Cluster, tag: str) -> collections.Counter[str]:
    """Request id -> answered calls over every sidecar's ledger (a replay is not recorded)."""
    found: collections.Counter[str] = collections.Counter()
    for s in cluster.sidecars:
        db = sqlite3.connect(str(cluster.dir / f"{s.config.stem}-usage.db"))
        try:
            sql = "SELECT request_id FROM usage_records WHERE tenant = 'idem' AND outcome = 'OK'"
            rows = db.execute(sql).fetchall()
        finally:
            db.close()
        found.update(r for (r,) in rows if r.startswith(f"{tag}-"))
    return found


async def used(cluster: Cluster, tenant: str, name: str) -> tuple[int, int]:
    async with grpc.aio.insecure_channel(cluster.sidecars[0].target) as channel:
        got = await Stubs(channel).GetQuota(quota_pb2.GetQuotaRequest(tenant_id=tenant, user_id="u"))
    found = next(x for x in got.limits if x.name == name)
    return found.used, found.reserved


async def test_redis_killed_and_started_again_with_its_data(cluster: Cluster) -> None:
    start = await used(cluster, "exact", "exact-req")

    async def fault() -> None:
        cluster.redis.kill()
        await asyncio.sleep(2.0)
        cluster.redis.start()

    load = await run_through(cluster, "persist", fault)
    assert load.seen["UNAVAILABLE/QUOTA_UNAVAILABLE"] > 0  # the outage was seen
    await asyncio.sleep(1.5)  # the last settles
    done, reserved = await used(cluster, "exact", "exact-req")
    assert (done - start[0], reserved) == (load.admitted, 0)  # fail_closed: exactly what it admitted
    await asyncio.sleep(1.0)
    answered = charged(cluster, "persist")
    assert len(answered) > 10 and {r: n for r, n in answered.items() if n > 1} == {}


async def test_redis_stopped_for_longer_than_the_deadlines(cluster: Cluster) -> None:
    async def fault() -> None:
        cluster.redis.pause(True)
        await asyncio.sleep(3 * DEADLINE)
        cluster.redis.pause(False)

    load = await run_through(cluster, "stop", fault)
    assert load.seen["DEADLINE_EXCEEDED"] > 0
    await asyncio.sleep(1.0)
    answered = charged(cluster, "stop")
    assert len(answered) > 10 and {r: n for r, n in answered.items() if n > 1} == {}
    assert all(len(a) == 1 for a in load.answers.values())  # each request answered the same


async def test_redis_started_again_without_its_data(cluster: Cluster) -> None:
    async def fault() -> None:
        cluster.redis.kill()
        await asyncio.sleep(1.0)
        cluster.redis.start_empty()

    await run_through(cluster, "empty", fault)


async def test_redis_flushed(cluster: Cluster) -> None:
    async def fault() -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(cluster.redis.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()

    await run_through(cluster, "flush", fault)
