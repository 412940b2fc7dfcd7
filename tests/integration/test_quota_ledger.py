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


@pytest.mark.parametrize("end", ["cancelled", "cut"])
async def test_on_a_route_of_two_tokenizers_a_broken_stream_is_charged_as_the_ledger_records_it(
    serve: Any, upstream: Upstream, tmp_path: Path, end: str
) -> None:
    """The quota reserves by the route's largest count (here the Anthropic bound, about 1.3 x
    cl100k), but an answer cut short is the OpenAI deployment's, counted by its own tokenizer: the
    charge must be what the ledger, the metrics and the summary say, not the reservation's bound."""
    ledger = tmp_path / "ledger.db"
    cfg = config(upstream, ledger)
    cfg["policy"]["deployments"]["e"] = {
        "provider": "anthropic",
        "model": "claude",
        "base_url": upstream.url,
        "api_key": {"env": "ANTHROPIC_KEY"},
    }
    cfg["policy"]["routes"]["r"]["deployments"] = ["d", "e"]
    s = await serve(cfg, {"ANTHROPIC_KEY": "ak-0123456789"})
    cut = Reply.sse("openai/stream.sse", chunk_delay=0.3, drop_after=3 if end == "cut" else None)
    upstream.push(cut)
    prompt = [user("Summarise the quarterly report for the operations team, in three short bullet points.")]
    call = s.stub.StreamGenerate(stream_request(messages=prompt, tenant_id="acme", user_id="u"))
    received = 0
    with contextlib.suppress(Exception):  # the cut stream ends STREAM_INTERRUPTED
        async for event in call:
            received += bool(event.delta.text) if event.HasField("delta") else 0
            if received == 2 and end == "cancelled":
                call.cancel()
                break
    await asyncio.sleep(0.3)  # the server sees the cancellation and settles
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(tenant_id="acme"))
    charged = next(limit.used for limit in got.limits if limit.name == "tokens")
    await s.sidecar.stop(0)
    with contextlib.closing(sqlite3.connect(ledger)) as conn:
        rows = conn.execute("SELECT provider, tokens_in + tokens_out FROM usage_records").fetchall()
    assert received >= 2 and charged > 0 and rows == [("openai", charged)]
