"""One tool loop served by four providers in turn, conversation memory on, through the real server:
OpenAI, Gemini 3, Claude on Bedrock (thinking), then Anthropic each answer one turn (as a route
falling back between them would), and the strict loopback Gemini and Bedrock take every history
memory replays to them (tests/support/gemini.py, tests/support/bedrock.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.support.api import generate_request
from tests.support.bedrock import Answer, StrictBedrock
from tests.support.gemini import GeminiFake, Turn
from tests.support.tools import run_tools, weather_tool
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
AWS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SIG = "CiQBcsjafGx3b1dXk4rYqOVRaI1Qf0M0pWd1u2l7S6yq0h1kQ0IKfAFyyNp8"
ENV = {"GEMINI_KEY": "AIzaSyTest-gemini-0123456789", "OPENAI_KEY": "sk-test-0123456789abcdef",
       "ANTHROPIC_KEY": "sk-ant-test-0123456789abcdef"}  # fmt: skip
IDS = {"tenant_id": "t1", "user_id": "u1", "conversation_id": "c1"}
ROME = {"toolUse": {"toolUseId": "tooluse_rome", "name": "get_weather", "input": {"city": "Rome"}}}
THOUGHT = {"reasoningContent": {"reasoningText": {"text": "Rome next.", "signature": "EqQBsig"}}}


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS[1])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def claude(body: dict[str, Any]) -> Answer:
    return [THOUGHT, ROME], "tool_use"


@pytest.fixture
async def bedrock() -> AsyncIterator[StrictBedrock]:
    server = await StrictBedrock(claude, AWS, "eu-west-1").start()
    yield server
    assert server.refusals == []
    await server.close()


@pytest.fixture
async def gemini() -> AsyncIterator[GeminiFake]:
    server = GeminiFake()
    app = web.Application()
    app.router.add_post("/v1beta/models/{action}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1beta"
    yield server
    assert server.refusals == []
    await runner.cleanup()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream().start()
    yield server
    await server.close()


def config(upstream: Upstream, gemini: GeminiFake, bedrock: StrictBedrock) -> dict[str, Any]:
    deployments = {
        "openai": {"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{upstream.url}/v1",
                   "api_key": {"env": "OPENAI_KEY"}},
        "gemini": {"provider": "gemini", "model": "gemini-3-flash-preview", "base_url": gemini.url,
                   "api_key": {"env": "GEMINI_KEY"}},
        "bedrock": {"provider": "bedrock", "model": "anthropic.claude-sonnet-4-20250514-v1:0",
                    "base_url": bedrock.url, "bedrock": {"region": "eu-west-1"},
                    "capabilities": {"reasoning": True}},
        "anthropic": {"provider": "anthropic", "model": "claude-sonnet-4-5", "base_url": upstream.url,
                      "api_key": {"env": "ANTHROPIC_KEY"}},
    }  # fmt: skip
    return {
        "policy": {
            "default_route": "openai",
            "deployments": deployments,
            "routes": {name: {"deployments": [name], "retry": {"max_attempts": 1}} for name in deployments},
            "routing": {"probes": {"enabled": False}},
            "personas": {"sessions": {"memory": True, "max_history_messages": 50}},
        }
    }


async def test_a_tool_loop_goes_on_across_four_providers(
    serve: Any, upstream: Upstream, gemini: GeminiFake, bedrock: StrictBedrock
) -> None:
    s = await serve(config(upstream, gemini, bedrock), ENV)
    tools = [weather_tool()]
    thinking = gen.GenerationConfig(max_tokens=4096, reasoning=gen.ReasoningConfig(budget_tokens=2048))
    upstream.push(Reply.json("openai/parallel_tool_calls.json"))
    gemini.push(
        Turn([{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": SIG}])
    )
    upstream.push(Reply.json("anthropic/tool_use.json"))
    messages = [user("Weather in Paris, Tokyo, Oslo and Rome?")]
    for model in ("openai", "gemini", "bedrock", "anthropic"):
        config_ = thinking if model == "bedrock" else None
        reply = await s.stub.Generate(
            generate_request(model=model, messages=messages, tools=tools, config=config_, **IDS)
        )
        assert reply.summary.served_by.deployment == model
        assert reply.summary.finish_reason == gen.FINISH_REASON_TOOL_CALLS
        messages = run_tools(reply.message)
    assert len(gemini.bodies) == 1 and len(bedrock.bodies) == 1
    assert "additionalModelRequestFields" not in bedrock.bodies[0]  # the loop's last turn is Gemini's
