"""Whitespace-only text, through the real server, against the strict loopback Anthropic and Bedrock
(both refuse a text block that is empty or only whitespace: "text content blocks must contain
non-whitespace text", "The text field in the ContentBlock object ... is blank").

A user message of whitespace alone is nothing to ask: INVALID_ARGUMENT naming the part, before
anything is reserved or sent, on every route. Whitespace beside other content (an image, the
model's own whitespace before its tool calls, an empty tool result, a blank system message, a
prefill ending in a space) is taken: the adapters leave out or trim what their provider refuses."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import quota_pb2
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.anthropic import StrictAnthropic
from tests.support.api import generate_request, stream_request
from tests.support.bedrock import StrictBedrock

pytestmark = pytest.mark.integration
KEY = "sk-ant-test-0123456789abcdef"
AWS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
IDS = {"tenant_id": "acme", "user_id": "ann"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
CALL = gen.ToolCall(id="tooluse_A1", name="get_time", arguments='{"zone": "UTC"}')
TOOL = gen.Tool(name="get_time", description="The time in a zone.")


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS[1])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


@pytest.fixture
async def anthropic() -> AsyncIterator[StrictAnthropic]:
    server = await StrictAnthropic(
        lambda body: ([{"type": "text", "text": "Noon."}], "end_turn"), KEY
    ).start()
    yield server
    await server.close()


@pytest.fixture
async def bedrock() -> AsyncIterator[StrictBedrock]:
    server = await StrictBedrock(lambda body: ([{"text": "Noon."}], "end_turn"), AWS, "eu-west-1").start()
    yield server
    await server.close()


def config(anthropic: str, bedrock: str) -> dict[str, Any]:
    deployments = {
        "anthropic": {"provider": "anthropic", "model": "claude-sonnet-4-5", "base_url": anthropic,
                      "api_key": {"env": "ANT_KEY"}},
        "bedrock": {"provider": "bedrock", "model": "anthropic.claude-3-5-haiku-20241022-v1:0",
                    "base_url": bedrock, "bedrock": {"region": "eu-west-1"}},
    }  # fmt: skip
    limits = [{"name": "req", "metric": "requests", "window": "day", "limit": 100}]
    return {
        "policy": {
            "default_route": "anthropic",
            "deployments": deployments,
            "routes": {name: {"deployments": [name], "retry": {"max_attempts": 1}} for name in deployments},
            "routing": {"probes": {"enabled": False}},
            "quota": {"limits": limits},
        }
    }


async def start(serve: Any, anthropic: StrictAnthropic, bedrock: StrictBedrock) -> Any:
    return await serve(config(anthropic.url, bedrock.url), {"ANT_KEY": KEY})


def message(role: int, *parts: gen.ContentPart) -> gen.Message:
    return gen.Message(role=role, content=list(parts))  # type: ignore[arg-type]


def text(value: str) -> gen.ContentPart:
    return gen.ContentPart(text=value)


async def used(s: Any) -> int:
    got = await s.stub.GetQuota(quota_pb2.GetQuotaRequest(**IDS))
    return sum(limit.used for limit in got.limits if limit.name == "req")


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("model", ["anthropic", "bedrock"])
async def test_a_user_message_of_whitespace_alone_is_refused_at_the_edge(
    serve: Any, anthropic: StrictAnthropic, bedrock: StrictBedrock, model: str, stream: bool
) -> None:
    """It went upstream and came back PROVIDER_REJECTED (the provider's 400), after the call was
    admitted; now the caller is told which part, and nothing is sent or charged."""
    s = await start(serve, anthropic, bedrock)
    blank = message(gen.ROLE_USER, text("  \n\t"))
    fields = {"messages": [user("Hello"), message(gen.ROLE_ASSISTANT, text("Hi.")), blank], "model": model}
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if stream:
            async for _ in s.stub.StreamGenerate(stream_request(**fields, **IDS)):
                pass
        else:
            await s.stub.Generate(generate_request(**fields, **IDS))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST")
    assert err.bad_request is not None
    assert [v.field for v in err.bad_request.field_violations] == ["input.messages[2].content[0].text"]
    assert anthropic.bodies == bedrock.bodies == [] and await used(s) == 0


def hostile_history() -> list[gen.Message]:
    """Whitespace everywhere a provider refuses it but the caller may send it: a blank system
    message, whitespace beside an image, the model's whitespace before its tool call (as Claude
    writes it), an empty tool result, whitespace the model answered alone, a prefill ending in a
    space."""
    image = gen.ContentPart(image=gen.Image(data=PNG, mime_type="image/png"))
    return [
        message(gen.ROLE_SYSTEM, text("   ")),
        message(gen.ROLE_USER, text(" \n"), image),
        message(gen.ROLE_ASSISTANT, text("\n\n"), gen.ContentPart(tool_call=CALL)),
        gen.Message(role=gen.ROLE_TOOL, tool_call_id=CALL.id, content=[text(" ")]),
        message(gen.ROLE_ASSISTANT, text("\n")),
        user("And now?"),
        message(gen.ROLE_ASSISTANT, text("It is ")),
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize("model", ["anthropic", "bedrock"])
async def test_whitespace_beside_other_content_goes_as_the_provider_takes_it(
    serve: Any, anthropic: StrictAnthropic, bedrock: StrictBedrock, model: str, stream: bool
) -> None:
    s = await start(serve, anthropic, bedrock)
    fields = {"messages": hostile_history(), "model": model, "tools": [TOOL], **IDS}
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(**fields))]
        summary = events[-1].result.summary
    else:
        summary = (await s.stub.Generate(generate_request(**fields))).summary
    assert summary.finish_reason == gen.FINISH_REASON_STOP
    assert anthropic.refusals == bedrock.refusals == []
    server = anthropic if model == "anthropic" else bedrock
    assert len(server.bodies) == 1 and await used(s) == 1
    sent = server.bodies[0]
    assert "system" not in sent  # a blank system message carries nothing
    if model == "anthropic":
        turns = sent["messages"]
        assert turns[-1] == {"role": "assistant", "content": "It is"}  # the prefill, trimmed
        assert turns[0]["content"][0]["type"] == "image" and len(turns[0]["content"]) == 1
        result = turns[2]["content"][0]
        assert result == {"type": "tool_result", "tool_use_id": CALL.id}  # empty: no content
    else:
        image = sent["messages"][0]["content"]
        assert len(image) == 1 and base64.b64decode(image[0]["image"]["source"]["bytes"]) == PNG
