"""A history write that fails after the answer was delivered (Redis out of memory, or a replica that
refuses writes) leaves the call a success: a warning line and a store-error metric, never INTERNAL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.integration.test_metrics_keys import scrape
from tests.integration.test_sessions import ANSWER, IDS, KEYS, ask, config
from tests.support.api import text_of
from tests.support.redis import start_redis
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration


async def command(port: int, *args: str) -> None:
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        await client.execute_command(*args)
    finally:
        await client.aclose()


@contextmanager
def two_redis() -> Iterator[tuple[int, int]]:
    with start_redis() as one, start_redis() as two:
        yield one, two


async def out_of_memory(port: int, _other: int) -> None:
    await command(port, "CONFIG", "SET", "maxmemory-policy", "noeviction")
    await command(port, "CONFIG", "SET", "maxmemory", "1")


async def read_only(port: int, other: int) -> None:
    await command(port, "REPLICAOF", "127.0.0.1", str(other))


@pytest.mark.parametrize("breaks", [out_of_memory, read_only], ids=["OOM", "READONLY"])
async def test_a_failed_history_write_keeps_the_answer_a_success(
    serve: Callable[..., Any],
    upstream: Upstream,
    breaks: Callable[[int, int], Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with two_redis() as (port, other):
        s = await serve(config(upstream, store="redis", redis_url=f"redis://127.0.0.1:{port}/0"), KEYS)
        upstream.push(Reply.json("openai/chat_completion.json"), Reply.json("openai/chat_completion.json"))
        upstream.push(Reply.sse("openai/stream.sse"))
        first = await s.stub.Generate(ask("remember me"))
        assert text_of(first) == ANSWER
        await breaks(port, other)
        with caplog.at_level(logging.WARNING):
            second = await s.stub.Generate(ask("and this, please"))  # delivered and charged
            stream = [r async for r in s.stub.StreamGenerate(ask("and a stream"))]
        assert text_of(second) == ANSWER and second.summary.usage.total_tokens > 0
        assert "".join(r.delta.text for r in stream) == ANSWER
        assert stream[-1].result.summary.usage.total_tokens > 0
        lines = [r for r in caplog.records if r.getMessage() == "history not stored"]
        assert len(lines) == 2 and all(r.levelno == logging.WARNING for r in lines)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        m = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
        assert m['sidecar_store_errors_total{op="append",store="sessions"}'] == 2
        assert IDS["conversation_id"] == "c1"
