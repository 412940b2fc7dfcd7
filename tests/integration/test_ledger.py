"""The usage ledger end to end: GetUsage over real calls, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import stat
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from sidecar._gen.orchestrator.v1 import usage_pb2
from sidecar.core.clock import SystemClock
from sidecar.ledger.postgres import PostgresLedger
from tests.conftest import admin_socket, echo_policy, user
from tests.integration.helpers import rich
from tests.integration.test_routing import ENV, deployment, policy, retry, tried
from tests.support.api import generate_request, stream_request
from tests.support.ledger import check_aggregates, check_cost_micros, check_experiment_cost_micros
from tests.support.relay import Relay
from tests.support.upstream import Reply, Upstream, fixture

pytestmark = pytest.mark.integration


async def fresh_database(url: str) -> str:
    """A new empty database on the session's PostgreSQL; its URL."""
    import asyncpg

    name = f"ledger_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return url.rsplit("/", 1)[0] + f"/{name}"


async def test_postgres_aggregates(postgres_url: str) -> None:
    store = PostgresLedger(await fresh_database(postgres_url), clock=SystemClock(), timeout=10)
    await store.open()
    try:
        await check_aggregates(store)
    finally:
        await store.aclose()


async def test_postgres_cost_micros_add_up_to_the_calls_own(postgres_url: str) -> None:
    store = PostgresLedger(await fresh_database(postgres_url), clock=SystemClock(), timeout=10)
    await store.open()
    try:
        await check_cost_micros(store)
    finally:
        await store.aclose()


async def test_postgres_experiment_cost_adds_up_its_calls_own(postgres_url: str) -> None:
    store = PostgresLedger(await fresh_database(postgres_url), clock=SystemClock(), timeout=10)
    await store.open()
    try:
        await check_experiment_cost_micros(store)
    finally:
        await store.aclose()


def stamp(seconds: float) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromNanoseconds(int(seconds * 1e9))
    return t


def usage_request(tenant: str, group_by: int, user_id: str = "") -> usage_pb2.GetUsageRequest:
    import time

    now = time.time()
    return usage_pb2.GetUsageRequest(
        tenant_id=tenant,
        user_id=user_id,
        start_time=stamp(now - 3600),
        end_time=stamp(now + 3600),
        group_by=group_by,
    )


PRICED = echo_policy(
    deployments={
        "echo": {
            "provider": "echo",
            "model": "echo-1",
            "price": {"input_per_million": 1e6, "output_per_million": 2e6},
        }
    },
    routes={"echo": {"deployments": ["echo"]}, "other": {"deployments": ["echo"]}},
)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_get_usage_attributes_cost_per_user(
    serve: Any, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    ledger: dict[str, Any] = {"backend": backend, "sqlite_path": str(tmp_path / "ledger.db")}
    if backend == "postgres":
        ledger["postgres_url"] = await fresh_database(request.getfixturevalue("postgres_url"))
    s = await serve(
        {
            "policy": PRICED,
            "settings": {
                "telemetry": {"metrics": {"enabled": False}, "ledger": ledger},
                "admin": admin_socket(),
            },
        }
    )
    spent: dict[str, float] = {}
    for who, text, route, stream in [
        ("alice", "one two", "echo", False),
        ("alice", "three", "other", True),
        ("bob", "four five six", "echo", False),
    ]:
        req = dict(messages=[user(text)], tenant_id="acme", user_id=who, model=route)
        if stream:
            events = [e async for e in s.stub.StreamGenerate(stream_request(**req))]
            cost = events[-1].result.summary.cost_micros
        else:
            cost = (await s.stub.Generate(generate_request(**req))).summary.cost_micros
        spent[who] = spent.get(who, 0.0) + cost
    with pytest.raises(grpc.aio.AioRpcError):
        await s.stub.Generate(
            generate_request(messages=[user("x")], tenant_id="acme", user_id="bob", model="nope")
        )

    groups = (await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER))).groups
    by_user = {g.key: g for g in groups}
    assert set(by_user) == {"alice", "bob"}
    assert by_user["alice"].cost_micros == pytest.approx(spent["alice"], abs=2) and spent["alice"] > 0
    assert by_user["bob"].cost_micros == pytest.approx(spent["bob"], abs=2)
    assert (by_user["alice"].requests, by_user["alice"].errors) == (2, 0)
    assert (by_user["bob"].requests, by_user["bob"].errors) == (2, 1)
    assert by_user["alice"].latency_p99.ToNanoseconds() >= by_user["alice"].latency_p50.ToNanoseconds() > 0

    routes = (await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_ROUTE, "alice"))).groups
    assert {g.key: g.requests for g in routes} == {"echo": 1, "other": 1}
    models = (await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_MODEL))).groups
    assert {g.key: g.requests for g in models} == {"echo-1": 3, "": 1}
    days = (await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_DAY))).groups
    assert sum(g.requests for g in days) == 4
    assert (await s.stub.GetUsage(usage_request("someone-else", usage_pb2.USAGE_GROUP_BY_USER))).groups == []


async def test_get_usage_rejects_bad_requests_naming_the_field(serve: Any) -> None:
    s = await serve({"policy": echo_policy(), "settings": {"admin": admin_socket()}})
    good = usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER)
    cases = {
        "tenant_id": usage_pb2.GetUsageRequest(
            start_time=good.start_time, end_time=good.end_time, group_by=1
        ),
        "user_id": usage_request("acme", 1, user_id="bad user!"),
        "group_by": usage_request("acme", usage_pb2.USAGE_GROUP_BY_UNSPECIFIED),
        "start_time": usage_pb2.GetUsageRequest(tenant_id="acme", end_time=good.end_time, group_by=1),
        "end_time": usage_pb2.GetUsageRequest(
            tenant_id="acme", start_time=good.end_time, end_time=good.start_time, group_by=1
        ),
    }
    for field, req in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await s.stub.GetUsage(req)
        err = await rich(caught.value)
        assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
        assert field in err.fields, (field, err.fields)
    too_long = usage_pb2.GetUsageRequest(
        tenant_id="acme", start_time=stamp(0), end_time=stamp(400 * 86_400), group_by=1
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await s.stub.GetUsage(too_long)
    assert (await rich(caught.value)).fields == ["end_time"]


async def test_get_usage_without_a_ledger(serve: Any) -> None:
    s = await serve(
        {
            "policy": echo_policy(),
            "settings": {"telemetry": {"ledger": {"backend": "none"}}, "admin": admin_socket()},
        }
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER))
    err = await rich(caught.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "LEDGER_DISABLED")


async def test_get_usage_needs_an_admin_credential(serve: Any) -> None:
    s = await serve(
        {
            "policy": echo_policy(),
            "settings": {
                "auth": {
                    "token": {"env": "TOKEN"},
                    "credentials": [{"name": "ops", "token": {"env": "OPS"}, "allow": ["AdminService"]}],
                },
                "admin": admin_socket(),
            },
        },
        environ={"TOKEN": "sekrit", "OPS": "ops-sekrit"},
    )
    query = usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await s.stub.GetUsage(query)
    assert (await rich(caught.value)).reason == "MISSING_CREDENTIALS"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await s.stub.GetUsage(query, metadata=[("authorization", "Bearer sekrit")])  # data plane only
    assert (await rich(caught.value)).reason == "METHOD_NOT_ALLOWED"
    ok = await s.stub.GetUsage(query, metadata=[("authorization", "Bearer ops-sekrit")])
    assert list(ok.groups) == []


async def test_the_last_calls_before_shutdown_are_on_disk(serve: Any, tmp_path: Path) -> None:
    """A long flush interval keeps the records queued; stopping the sidecar writes every one of them
    before the ledger's SQLite thread closes, and the file is its owner's alone."""
    path = tmp_path / "ledger.db"
    ledger = {"sqlite_path": str(path), "flush_interval_seconds": 60, "batch_size": 7}
    s = await serve(
        {"policy": PRICED, "settings": {"telemetry": {"metrics": {"enabled": False}, "ledger": ledger}}}
    )
    for i in range(30):
        await s.stub.Generate(
            generate_request(messages=[user("hi")], tenant_id="acme", request_id=f"last-{i}")
        )
    await s.sidecar.stop(0)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        found = {r[0] for r in conn.execute("SELECT request_id FROM usage_records")}
    assert found == {f"last-{i}" for i in range(30)}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@contextlib.asynccontextmanager
async def relayed_ledger(
    serve: Any, postgres_url: str, *, frozen: bool = False
) -> AsyncIterator[tuple[Any, Relay]]:
    """A sidecar whose PostgreSQL ledger (a fresh database, 1 s timeouts) is reached through a relay
    that the test can freeze: a network partition."""
    url = await fresh_database(postgres_url)
    host_port = url.rsplit("@", 1)[1].split("/", 1)[0]
    relay = await Relay(int(host_port.rsplit(":", 1)[1])).start()
    if frozen:
        relay.freeze()
    try:
        through = url.replace(host_port, f"127.0.0.1:{relay.port}")
        ledger = {"backend": "postgres", "postgres_url": through, "timeout_seconds": 1}
        settings = {"telemetry": {"ledger": ledger}, "admin": admin_socket()}
        yield await serve({"policy": PRICED, "settings": settings}), relay
    finally:
        await relay.close()


async def test_a_partitioned_postgres_bounds_get_usage_and_shutdown(serve: Any, postgres_url: str) -> None:
    """PostgreSQL stops answering (packets dropped, connections left open): calls are still served,
    GetUsage answers LEDGER_UNAVAILABLE within the ledger's timeout instead of hanging, the ledger
    recovers when the network does, and shutdown ends, dropping (and counting) the records it could
    not write, instead of waiting forever."""
    async with relayed_ledger(serve, postgres_url) as (s, relay):
        await s.stub.Generate(generate_request(messages=[user("before")], tenant_id="acme"))
        before = await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER))
        assert sum(g.requests for g in before.groups) == 1

        relay.freeze()
        await s.stub.Generate(generate_request(messages=[user("during")], tenant_id="acme"))
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER), timeout=30)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert (await rich(info.value)).reason == "LEDGER_UNAVAILABLE"
        assert time.monotonic() - started < 10

        relay.thaw()  # healed: the pool reconnects, records are written and read again
        await s.stub.Generate(generate_request(messages=[user("after")], tenant_id="acme"))
        after = await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER), timeout=30)
        # "during" timed out, so its batch counts as dropped; its bytes were still in flight, though,
        # and may land once the network heals (a timeout does not say the server did not commit)
        assert sum(g.requests for g in after.groups) in (2, 3)

        relay.freeze()
        await s.stub.Generate(generate_request(messages=[user("queued")], tenant_id="acme"))
        started = time.monotonic()
        await asyncio.wait_for(s.sidecar.stop(0), 30)
        assert time.monotonic() - started < 10
        ledger_writer = s.sidecar.deps.telemetry.ledger
        assert ledger_writer is not None and ledger_writer.dropped == 2  # "during" and "queued"


async def test_a_sidecar_starts_and_serves_while_its_postgres_is_unreachable(
    serve: Any, postgres_url: str
) -> None:
    """The ledger's database is down when the sidecar starts: it serves calls anyway (GetUsage says
    LEDGER_UNAVAILABLE), keeps their records queued, and writes them once the database answers."""
    async with relayed_ledger(serve, postgres_url, frozen=True) as (s, relay):
        await s.stub.Generate(generate_request(messages=[user("while down")], tenant_id="acme"))
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER), timeout=30)
        assert (await rich(info.value)).reason == "LEDGER_UNAVAILABLE"

        relay.thaw()
        deadline = time.monotonic() + 30
        while True:  # the writer retries the open with a backoff (1 s, then 2 s, ...)
            try:
                found = await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER))
                break
            except grpc.aio.AioRpcError:
                assert time.monotonic() < deadline, "the ledger never opened"
                await asyncio.sleep(0.2)
        assert sum(g.requests for g in found.groups) == 1  # the record queued while it was down


async def test_an_impossible_token_count_is_a_bad_response_and_spoils_no_batch(
    serve: Any, upstream: Upstream, upstream2: Upstream, tmp_path: Path
) -> None:
    """An upstream reporting 2**63 prompt tokens (beyond the int64 of the summary, the ledger and the
    quota store) gave a bad response: the route moves on to the next deployment, the caller gets an
    answer (not INTERNAL), and the usage records of the calls batched with it are all written (one
    unwritable record dropped its whole batch)."""
    body = json.loads(fixture("openai/chat_completion.json"))
    body["usage"] = {"prompt_tokens": 2**63, "completion_tokens": 5, "total_tokens": 2**63 + 5}
    upstream.push(Reply.json("openai/chat_completion.json"), Reply(body=json.dumps(body).encode()))
    upstream2.default = Reply.json("openai/chat_completion.json")
    config = policy({"first": deployment(upstream), "second": deployment(upstream2)}, retry=retry(1))
    s = await serve({"policy": config}, ENV)
    replies = await asyncio.gather(
        *(s.stub.Generate(generate_request(messages=[user("Hi there")], tenant_id="acme")) for _ in range(2))
    )
    assert sorted(tried(r.summary) for r in replies) == [
        [("first", "OK")],
        [("first", "PROVIDER_BAD_RESPONSE"), ("second", "OK")],
    ]
    assert all(r.summary.usage.prompt_tokens == 19 for r in replies)  # as the fixture counts
    await s.sidecar.deps.telemetry.ledger.flush()
    with sqlite3.connect(tmp_path / "usage.db") as db:
        assert db.execute("SELECT COUNT(*), SUM(tokens_in) FROM usage_records").fetchone() == (2, 38)
