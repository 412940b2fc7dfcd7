"""The quota's charge and the usage ledger agree on a stream the caller cancelled after some chunks:
the caller was charged the prompt and the text it received, and the ledger (what GetUsage and
billing read) records the same tokens, not zero."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import user
from tests.support.api import stream_request
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration


def config(upstream: Upstream, ledger: Path) -> dict[str, Any]:
    limits = [{"name": "tokens", "metric": "tokens", "scope": "tenant", "window": "day", "limit": 100_000}]
    return {
        "policy": {
            "default_route": "r",
            "deployments": {"d": {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1"}},
            "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
            "tier_assignment": {"default": "enterprise"},
            "quota": {"limits": limits},
        },
        "settings": {"telemetry": {"ledger": {"sqlite_path": str(ledger)}}},
    }


async def test_a_cancelled_stream_is_in_the_ledger_as_it_was_charged(
    serve: Any, upstream: Upstream, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    s = await serve(config(upstream, ledger))
    upstream.push(Reply.sse("openai/stream.sse", chunk_delay=0.3))
    call = s.stub.StreamGenerate(stream_request(messages=[user("hi there")], tenant_id="acme", user_id="u"))
    received = 0
    async for event in call:
        received += bool(event.delta.text) if event.HasField("delta") else 0
        if received == 2:
            call.cancel()
            break
    await asyncio.sleep(0.3)  # the server sees the cancellation and settles
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
    charged = next(limit.used for limit in got.limits if limit.name == "tokens")
    await s.sidecar.stop(0)  # the ledger's queue is written on the way down
    with contextlib.closing(sqlite3.connect(ledger)) as conn:
        rows = conn.execute("SELECT outcome, tokens_in + tokens_out FROM usage_records").fetchall()
    assert charged > 0 and rows == [("CANCELLED", charged)]
