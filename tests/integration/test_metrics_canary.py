"""Canaries: a known secret and prompt never reach logs or metrics; tenants and users never grow series."""

from __future__ import annotations

import asyncio
import io
import urllib.request
from typing import Any

import grpc
import pytest

from tests.conftest import echo_policy, user
from tests.support.api import generate_request, text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

SECRET = "sk-CANARYsecret0123456789abcdef"
TOKEN = "canary-shared-token-0123456789"
PROMPT = "canary prompt: seventeen violet giraffes"


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


async def test_secret_and_prompt_never_reach_logs_or_metrics(
    serve: Any, upstream: Upstream, json_logs: io.StringIO
) -> None:
    base = {"provider": "openai", "model": "m", "base_url": f"{upstream.url}/v1", "api_key": {"env": "KEY"}}
    policy = {
        "default_route": "r",
        "deployments": {"d": base},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
    }
    s = await serve(
        {"policy": policy, "settings": {"auth": {"token": {"env": "TOKEN"}}}}, {"KEY": SECRET, "TOKEN": TOKEN}
    )
    auth = [("authorization", f"Bearer {TOKEN}")]
    upstream.push(
        Reply.json("openai/chat_completion.json"),
        # an upstream error that echoes the key and the prompt back
        Reply(status=500, body=f'{{"error":{{"message":"bad key {SECRET} for {PROMPT}"}}}}'.encode()),
        Reply(status=401, body=f'{{"error":{{"message":"Incorrect API key provided: {SECRET}"}}}}'.encode()),
    )
    request = generate_request(
        messages=[user(PROMPT)], tenant_id="acme", user_id="alice", metadata={"note": PROMPT}
    )
    assert text_of(await s.stub.Generate(request, metadata=auth))
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await s.stub.Generate(request, metadata=auth)
        assert SECRET not in (caught.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError):
        await s.stub.Generate(request, metadata=[("authorization", f"Bearer {TOKEN}x")])
    metrics = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    logs = json_logs.getvalue()
    assert logs, "the calls logged nothing at all"
    for text in (metrics, logs):
        for canary in (SECRET, TOKEN, PROMPT, "giraffes", "acme", "alice"):
            assert canary not in text, canary


async def test_a_flood_of_tenants_and_users_does_not_grow_the_series(serve: Any) -> None:
    s = await serve({"policy": echo_policy()})

    async def one(i: int) -> None:
        await s.stub.Generate(generate_request(messages=[user("hi")], tenant_id=f"t{i}", user_id=f"u{i}"))

    await one(0)
    before = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    await asyncio.gather(*(one(i) for i in range(1, 300)))
    after = await asyncio.to_thread(scrape, s.sidecar.metrics_port)

    def series(text: str) -> set[str]:
        return {line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}

    assert series(after) == series(before)
    ok = [line for line in after.splitlines() if line.startswith('sidecar_requests_total{code="OK"')]
    assert [float(line.rsplit(" ", 1)[1]) for line in ok] == [300]


async def test_allow_listed_tenants_are_capped(serve: Any) -> None:
    metrics = {"address": "127.0.0.1:0", "tenant_label_allow": ["t1", "t2", "t3"], "max_label_series": 2}
    s = await serve({"policy": echo_policy(), "settings": {"telemetry": {"metrics": metrics}}})
    for i in range(50):
        await s.stub.Generate(generate_request(messages=[user("hi")], tenant_id=f"t{i % 5}", user_id=f"u{i}"))
    text = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    rows = [line for line in text.splitlines() if line.startswith("sidecar_attributed_requests_total{")]
    assert len(rows) == 3  # two opted-in series, then one `other`
    assert sum(float(r.rsplit(" ", 1)[1]) for r in rows) == 50
