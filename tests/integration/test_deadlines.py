"""Defect 1: a caller's own deadline is never a deployment's failure, whichever clock fires first.

A real loopback upstream answers in 1 s; callers give 300 ms. Every call must end DEADLINE_EXCEEDED
(the pipeline's own verdict, and what the client sees), no attempt may count against the deployment
(breaker closed, no PROVIDER_TIMEOUT), and a later call with a long deadline is served.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar.app import build_pipeline
from sidecar.core.clock import SystemClock
from sidecar.core.errors import DeadlineExceededError
from sidecar.core.layer import collect
from sidecar.deps import build_deps
from sidecar.routing.breaker import BreakerState
from tests.conftest import make_config, user
from tests.support.api import generate_request, stream_request, text_of
from tests.support.calls import make_call
from tests.support.prometheus import quiet_telemetry
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
ENV = {"KEY": "sk-canary-secret-value-0123456789"}
CALLS = 40


def slow_policy(url: str, **route: Any) -> dict[str, Any]:
    """One deployment behind a breaker that opens after 5 failures, with retries and a first-token
    timeout longer than the callers' deadlines (each of them a clock that could fire first)."""
    return {
        "default_route": "r",
        "deployments": {
            "slow": {"provider": "openai", "model": "m", "base_url": f"{url}/v1", "api_key": {"env": "KEY"}}
        },
        "routes": {
            "r": {
                "deployments": ["slow"],
                "retry": {"max_attempts": 3},
                "first_token_timeout_seconds": 0.5,
                **route,
            }
        },
        "routing": {"breaker": {"min_requests": 5, "failure_ratio": 0.2}},
    }


def slow_upstream(upstream: Upstream) -> None:
    upstream.default = Reply.json("openai/chat_completion.json", delay=1.0)


async def test_tight_deadlines_in_the_pipeline_are_the_callers_own(
    upstream: Upstream, tmp_path: Path
) -> None:
    slow_upstream(upstream)
    raw = {"settings": {"telemetry": quiet_telemetry(tmp_path)}, "policy": slow_policy(upstream.url)}
    cfg = make_config(raw, ENV, tmp_path)
    clock = SystemClock()
    deps = build_deps(cfg, clock)
    pipeline = build_pipeline(cfg, deps)

    async def one(i: int) -> BaseException | None:
        call = make_call(clock, stream=bool(i % 2), timeout=0.3 - (i % 5) * 0.01)
        try:
            await collect(pipeline, call)
        except BaseException as exc:
            assert call.record.attempts, "the upstream was called"
            assert all(a.outcome == "DEADLINE_EXCEEDED" for a in call.record.attempts), call.record.attempts
            return exc
        return None

    try:
        outcomes = await asyncio.gather(*(one(i) for i in range(CALLS)))
        assert all(isinstance(o, DeadlineExceededError) for o in outcomes), outcomes
        assert deps.routing.breakers.get("slow").state() is BreakerState.CLOSED
        assert deps.routing.stats.get("slow").snapshot().last_error is None
        upstream.default = Reply.json("openai/chat_completion.json")
        text, _ = await collect(pipeline, make_call(clock, stream=False, timeout=5.0))
        assert text == "Hello! How can I help you today?"
    finally:
        await deps.http.aclose()


async def test_tight_deadlines_through_the_server_leave_the_breaker_closed(
    serve: Any, upstream: Upstream
) -> None:
    slow_upstream(upstream)
    s = await serve({"policy": slow_policy(upstream.url)}, ENV)

    async def one(i: int) -> grpc.StatusCode:
        request = [user("Hi")]
        try:
            if i % 2:
                await s.stub.Generate(generate_request(messages=request), timeout=0.3)
            else:
                async for _ in s.stub.StreamGenerate(stream_request(messages=request), timeout=0.3):
                    pass
        except grpc.aio.AioRpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    codes = await asyncio.gather(*(one(i) for i in range(CALLS)))
    assert set(codes) == {grpc.StatusCode.DEADLINE_EXCEEDED}
    await asyncio.sleep(0.2)  # the server side of the last calls unwinds
    routing = s.sidecar.deps.routing
    assert routing.breakers.get("slow").state() is BreakerState.CLOSED
    assert routing.stats.get("slow").snapshot().last_error is None
    upstream.default = Reply.json("openai/chat_completion.json")
    reply = await s.stub.Generate(generate_request(messages=[user("Hi")]), timeout=5.0)
    assert text_of(reply) == "Hello! How can I help you today?"
