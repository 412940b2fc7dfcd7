"""A real sidecar whose PostgreSQL ledger is down at start, goes down mid-run, stalls, and comes back
(through a TCP relay in front of a real PostgreSQL): calls are never failed or slowed by it, what is
lost is counted, the log has a line when trouble begins and when it ends (not one per batch), the
ledger recovers without a restart, and the sidecar's stop is bounded while the database stalls."""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import usage_pb2
from tests.conftest import admin_socket, echo_policy, free_port, user
from tests.integration.test_ledger import fresh_database, usage_request
from tests.support.api import generate_request
from tests.support.relay import Relay

pytestmark = pytest.mark.integration

TIMEOUT = 0.5  # ledger.timeout_seconds
CALL_BOUND = 0.5  # an echo call takes milliseconds; the ledger must add nothing a caller can see


async def calls(s: Any, who: str, n: int) -> None:
    for i in range(n):
        started = time.monotonic()
        await s.stub.Generate(generate_request(messages=[user(f"{who} {i}")], tenant_id="acme", user_id=who))
        assert time.monotonic() - started < CALL_BOUND, who


async def requests_of(s: Any) -> dict[str, int] | None:
    """GetUsage per user, or None while the ledger answers LEDGER_UNAVAILABLE."""
    try:
        reply = await s.stub.GetUsage(usage_request("acme", usage_pb2.USAGE_GROUP_BY_USER))
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.UNAVAILABLE, err
        return None
    return {g.key: g.requests for g in reply.groups}


async def until(s: Any, want: dict[str, int], seconds: float) -> None:
    got = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = await requests_of(s)
        if got is not None and all(got.get(k) == v for k, v in want.items()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"GetUsage never showed {want}: {got}")


def dropped(s: Any) -> float:
    registry = s.sidecar.deps.telemetry.metrics.registry
    return float(registry.get_sample_value("sidecar_ledger_dropped_records_total", {"cause": "write_failed"}))


async def test_a_postgres_ledger_down_stalled_and_back(
    serve: Any, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar.ledger")
    url = await fresh_database(postgres_url)
    relay, port = Relay(urllib.parse.urlsplit(url).port or 5432), free_port()
    database = url.rsplit("/", 1)[1]
    ledger = {
        "backend": "postgres",
        "postgres_url": f"postgresql://postgres@127.0.0.1:{port}/{database}",
        "flush_interval_seconds": 0.05,
        "timeout_seconds": TIMEOUT,
    }
    raw = {"policy": echo_policy(), "settings": {"telemetry": {"ledger": ledger}, "admin": admin_socket()}}
    s = await serve(raw)  # the database is down at start: the sidecar serves anyway
    try:
        await calls(s, "early", 3)
        assert await requests_of(s) is None
        await relay.start(port)  # back: opened by the writer's next try (1 s, then 2 s later)
        await until(s, {"early": 3}, 10)

        await relay.close()  # down mid-run: connections reset, new ones refused
        await calls(s, "down", 5)
        await asyncio.sleep(0.5)  # the writer tries, fails, drops
        assert await requests_of(s) is None
        await relay.start(port)
        relay.freeze()  # stalled: connections open, nothing answers
        await calls(s, "stalled", 5)
        await asyncio.sleep(3 * TIMEOUT)
        relay.thaw()  # back: recovered without a restart
        await calls(s, "back", 3)
        await until(s, {"early": 3, "back": 3}, 10)
        assert dropped(s) >= 5  # every record written or counted as dropped

        relay.freeze()
        await calls(s, "last", 3)
        started = time.monotonic()
        await s.sidecar.stop(0)  # bounded by the ledger's timeout, not by the stalled database
        assert time.monotonic() - started < 4 * TIMEOUT + 2
    finally:
        relay.thaw()
        await relay.close()
    lines = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name.startswith("sidecar.ledger") and "retention" not in r.getMessage()  # hourly, if due
    ]
    # down at start (the open), down mid-run then stalled (the writes: one episode, no write
    # succeeded between), stalled again at the stop: a line when each begins and one when it ends
    assert [(level, message.split(";")[0]) for level, message in lines] == [
        ("ERROR", "ledger store cannot be opened"),
        ("WARNING", "ledger store opened"),
        ("ERROR", "ledger write failed"),
        ("WARNING", "ledger writes succeed again"),
        ("ERROR", "ledger write failed"),
    ]
