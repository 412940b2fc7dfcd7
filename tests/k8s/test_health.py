"""The kubelet's probes on the sidecar's metrics port: /livez while the process answers, /readyz only
while it serves calls (not before it started, not while it drains)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from sidecar.telemetry.server import MetricsServer
from tests.conftest import echo_policy, user
from tests.support.api import generate_request, text_of

pytestmark = pytest.mark.integration


async def status(port: int, path: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status


async def test_readyz_follows_the_readiness_flag() -> None:
    server = MetricsServer(CollectorRegistry(), "127.0.0.1:0")
    await server.start()
    try:
        assert await status(server.port, "/livez") == 200
        assert await status(server.port, "/readyz") == 503  # not serving yet
        server.readiness.set(True)
        assert await status(server.port, "/readyz") == 200
        assert await status(server.port, "/healthz") == 200
    finally:
        await server.stop()


async def test_the_sidecar_is_ready_while_serving_and_not_while_draining(serve: Any) -> None:
    slow = {"provider": "echo", "model": "echo-1", "echo": {"first_token_delay_seconds": 1.0}}
    s = await serve({"policy": echo_policy(deployments={"echo": slow})})
    port = s.sidecar.metrics_port
    assert await status(port, "/readyz") == 200
    call = asyncio.ensure_future(s.stub.Generate(generate_request(messages=[user("still answered")])))
    await asyncio.sleep(0.2)  # the call is in flight
    stopping = asyncio.ensure_future(s.sidecar.stop(5.0))
    for _ in range(50):
        if await status(port, "/readyz") == 503:
            break
        await asyncio.sleep(0.02)
    assert await status(port, "/readyz") == 503  # draining: the kubelet takes the pod out of rotation
    assert await status(port, "/livez") == 200  # but does not restart it
    assert text_of(await call) == "still answered"  # the in-flight call finishes
    await stopping
