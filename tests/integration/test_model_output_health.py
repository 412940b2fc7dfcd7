"""Whose failure an unusable answer is, through the real server: output the model wrote wrong
(Gemini's MALFORMED_FUNCTION_CALL, Converse's malformed_model_output / malformed_tool_use) fails
that call (the route's next deployment answers it; STREAM_INTERRUPTED once a chunk was sent), but
does not count against the deployment. One tenant whose prompt reliably makes the model write a
broken call used to open the breaker of a deployment every tenant shares. A broken wire (an answer
that is not JSON) still opens it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.support.api import generate_request, stream_request
from tests.support.bedrock import Answer, StrictBedrock
from tests.support.gemini import GeminiFake, Turn

pytestmark = pytest.mark.integration
ENV = {"GEMINI_KEY": "AIzaSyTest-gemini-0123456789"}
AWS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
ECHO = {"provider": "echo", "model": "echo-1"}
CALLS = 8  # the breaker below trips at 3 outcomes, half of them failures
GOOD = Turn([{"text": "Fine."}])


@pytest.fixture
async def fake() -> AsyncIterator[GeminiFake]:
    server = GeminiFake()
    app = web.Application()
    app.router.add_post("/v1beta/models/{action}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1beta"
    yield server
    assert server.refusals == []
    await runner.cleanup()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS[1])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def policy(shared: dict[str, Any]) -> dict[str, Any]:
    """One deployment every tenant shares, then echo; a breaker quick to trip."""
    return {
        "policy": {
            "default_route": "r",
            "deployments": {"shared": shared, "echo": ECHO},
            "routes": {"r": {"deployments": ["shared", "echo"], "retry": {"max_attempts": 2}}},
            "routing": {
                "probes": {"enabled": False},
                "breaker": {"min_requests": 3, "failure_ratio": 0.5, "cooldown_seconds": 60},
            },
        },
    }


def gemini(url: str) -> dict[str, Any]:
    return {"provider": "gemini", "model": "gemini-3-flash-preview", "base_url": url,
            "api_key": {"env": "GEMINI_KEY"}}  # fmt: skip


def bedrock(url: str) -> dict[str, Any]:
    return {"provider": "bedrock", "model": "anthropic.claude-3-5-haiku-20241022-v1:0", "base_url": url,
            "bedrock": {"region": "eu-west-1"}}  # fmt: skip


async def ask(s: Any, tenant: str, stream: bool) -> gen.ResponseSummary:
    fields = {"messages": [user("echo me")], "tenant_id": tenant, "user_id": "u1"}
    if not stream:
        return (await s.stub.Generate(generate_request(**fields))).summary
    events = [e async for e in s.stub.StreamGenerate(stream_request(**fields))]
    return events[-1].result.summary


async def bad_tenant_then_good(s: Any, stream: bool) -> gen.ResponseSummary:
    """CALLS calls of the bad tenant, each answered (by echo, after the shared deployment's
    unusable answer) or, streamed after a first chunk, interrupted; then the good tenant's call."""
    for _ in range(CALLS):
        try:
            summary = await ask(s, "t-bad", stream)
        except grpc.aio.AioRpcError as err:  # the unusable answer came after a first chunk
            assert stream and err.code() == grpc.StatusCode.UNAVAILABLE, err
            continue
        assert summary.served_by.deployment == "echo"
        assert [a.outcome for a in summary.attempts][:1] == ["MODEL_OUTPUT_UNUSABLE"]
    return await ask(s, "t-good", stream)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_malformed_gemini_calls_of_one_tenant_leave_the_breaker_closed(
    serve: Any, fake: GeminiFake, stream: bool
) -> None:
    """Each malformed answer falls back to echo without a retry on the shared deployment (the
    call's own prompt: its retry would spend that deployment's retry budget), and the breaker stays
    closed: the other tenant is served by the shared deployment."""
    # streamed, a first chunk ("I'll") reaches the caller before the finish: STREAM_INTERRUPTED
    fake.push(*[Turn([{"text": "I'll"}], "MALFORMED_FUNCTION_CALL") for _ in range(CALLS)], GOOD)
    s = await serve(policy(gemini(fake.url)), ENV)
    summary = await bad_tenant_then_good(s, stream)
    assert summary.served_by.deployment == "shared", [a.outcome for a in summary.attempts]
    assert [a.outcome for a in summary.attempts] == ["OK"]
    assert len(fake.bodies) == CALLS + 1  # never retried on the same deployment


@pytest.mark.parametrize("stop", ["malformed_model_output", "malformed_tool_use"])
async def test_malformed_converse_output_of_one_tenant_leaves_the_breaker_closed(
    serve: Any, stop: str
) -> None:
    answers: list[Answer] = [([], stop)] * CALLS + [([{"text": "Fine."}], "end_turn")]
    server = await StrictBedrock(lambda body: answers.pop(0), AWS, "eu-west-1").start()
    try:
        s = await serve(policy(bedrock(server.url)))
        summary = await bad_tenant_then_good(s, stream=False)
        assert summary.served_by.deployment == "shared", [a.outcome for a in summary.attempts]
        assert server.refusals == [] and len(server.bodies) == CALLS + 1
    finally:
        await server.close()


async def test_a_broken_wire_still_opens_the_breaker(serve: Any, fake: GeminiFake) -> None:
    """An answer that is not JSON is the deployment's failure: retried, counted, and the breaker
    opens; the next calls go to echo without asking the shared deployment."""
    fake.push(*[Turn([], raw=b"{not json") for _ in range(CALLS)], GOOD)
    s = await serve(policy(gemini(fake.url)), ENV)
    outcomes = [[a.outcome for a in (await ask(s, "t-bad", False)).attempts] for _ in range(3)]
    assert outcomes[0] == ["PROVIDER_BAD_RESPONSE", "PROVIDER_BAD_RESPONSE", "OK"]
    assert len(fake.bodies) < 6  # the breaker opened within the second call's attempts
    asked = len(fake.bodies)
    summary = await ask(s, "t-good", False)
    assert summary.served_by.deployment == "echo" and len(fake.bodies) == asked  # not asked
