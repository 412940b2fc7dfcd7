"""A provider's limits on images are part of routing's capability fit: through the real server, a
route of a strict loopback Bedrock (tests/support/bedrock.py: at most 3.75 MB an image) and a strict
loopback Gemini (tests/support/gemini.py: no GIF) sends each image where it can go, and refuses one
no deployment can take before anything is sent, naming the image and why for each deployment."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.integration.helpers import rich
from tests.support.anthropic import StrictAnthropic
from tests.support.api import generate_request, stream_request, text_of
from tests.support.bedrock import Answer, StrictBedrock
from tests.support.gemini import GeminiFake, Turn

pytestmark = pytest.mark.integration
AWS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
ENV = {"GEMINI_KEY": "AIzaSyTest-gemini-0123456789"}
IDS = {"tenant_id": "t1", "user_id": "u1"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
GIF = b"GIF89a" + bytes(64)
OVER_CONVERSE = 4_000_000  # the edge takes 5 MiB an image, Converse 3.75 MB


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS[1])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def describe(body: dict[str, Any]) -> Answer:
    return [{"text": "A picture, seen by Bedrock."}], "end_turn"


@pytest.fixture
async def bedrock() -> AsyncIterator[StrictBedrock]:
    server = await StrictBedrock(describe, AWS, "eu-west-1").start()
    yield server
    assert server.refusals == []
    await server.close()


@pytest.fixture
async def gemini() -> AsyncIterator[GeminiFake]:
    server = GeminiFake()
    app = web.Application(client_max_size=64 * 1024 * 1024)  # inline images of megabytes
    app.router.add_post("/v1beta/models/{action}", server.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1beta"
    yield server
    assert server.refusals == []
    await runner.cleanup()


def config(bedrock: StrictBedrock, gemini: GeminiFake, order: list[str]) -> dict[str, Any]:
    deployments = {
        "b": {
            "provider": "bedrock",
            "model": "anthropic.claude-3-5-haiku-20241022-v1:0",
            "base_url": bedrock.url,
            "bedrock": {"region": "eu-west-1"},
        },
        "g": {
            "provider": "gemini",
            "model": "gemini-3-flash-preview",
            "base_url": gemini.url,
            "api_key": {"env": "GEMINI_KEY"},
        },
    }
    return {
        "policy": {
            "default_route": "r",
            "deployments": deployments,
            "routes": {"r": {"deployments": order, "strategy": "priority", "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
        }
    }


def image(data: bytes, mime: str) -> gen.Message:
    part = gen.ContentPart(image=gen.Image(data=data, mime_type=mime))
    return gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text="What is this?"), part])


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_an_image_over_converses_limit_goes_to_the_next_deployment(
    serve: Any, bedrock: StrictBedrock, gemini: GeminiFake, stream: bool
) -> None:
    """Bedrock first: a 4 MB image is not Bedrock's to refuse for the whole route; Gemini takes it."""
    gemini.push(Turn([{"text": "A picture, seen by Gemini."}]))
    s = await serve(config(bedrock, gemini, ["b", "g"]), ENV)
    request = {"messages": [image(PNG + bytes(OVER_CONVERSE), "image/png")], **IDS}
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(**request))]
        summary, text = events[-1].result.summary, text_of(events[-1].result)
    else:
        reply = await s.stub.Generate(generate_request(**request))
        summary, text = reply.summary, text_of(reply)
    assert (summary.served_by.deployment, text) == ("g", "A picture, seen by Gemini.")
    assert bedrock.bodies == [] and len(gemini.bodies) == 1


async def test_a_gif_goes_past_gemini_to_bedrock(
    serve: Any, bedrock: StrictBedrock, gemini: GeminiFake
) -> None:
    s = await serve(config(bedrock, gemini, ["g", "b"]), ENV)
    reply = await s.stub.Generate(generate_request(messages=[image(GIF, "image/gif")], **IDS))
    assert (reply.summary.served_by.deployment, text_of(reply)) == (
        "b",
        "A picture, seen by Bedrock.",
    )
    assert gemini.bodies == [] and bedrock.bodies[0]["messages"][0]["content"][0]["image"]["format"] == "gif"


async def test_an_image_no_deployment_can_take_is_refused_naming_it_for_each(
    serve: Any, bedrock: StrictBedrock, gemini: GeminiFake
) -> None:
    """A 4 MB GIF: too large for Converse, a format Gemini does not read. Refused before any call,
    the violations naming the image and each deployment's reason."""
    s = await serve(config(bedrock, gemini, ["b", "g"]), ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(
            generate_request(messages=[image(GIF + bytes(OVER_CONVERSE), "image/gif")], **IDS)
        )
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CAPABLE_DEPLOYMENT")
    assert err.bad_request is not None
    assert [(v.field, v.description) for v in err.bad_request.field_violations] == [
        (
            "input.messages",
            "image 1 of the prompt: b cannot take it (4000070 bytes; it takes at most 3932160)",
        ),
        (
            "input.messages",
            "image 1 of the prompt: g cannot take it "
            "(image/gif; it reads image/heic, image/heif, image/jpeg, image/png, image/webp)",
        ),
    ]
    assert err.info.metadata["missing"].startswith("b cannot take image 1 of the prompt (4000070 bytes")
    assert bedrock.bodies == [] and gemini.bodies == []


# A PNG whose header says 9000 x 20 px: over Anthropic's and Converse's 8000 px a side.
WIDE = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + struct.pack(">II", 9000, 20) + bytes(64)
ANT_KEY = "sk-ant-test-0123456789abcdef"


@pytest.fixture
async def anthropic() -> AsyncIterator[StrictAnthropic]:
    server = await StrictAnthropic(lambda body: ([{"type": "text", "text": "Seen by Claude."}], "end_turn"),
                                   ANT_KEY).start()  # fmt: skip
    yield server
    assert server.refusals == []
    await server.close()


def with_anthropic(
    bedrock: StrictBedrock,
    gemini: GeminiFake,
    anthropic: StrictAnthropic,
    order: list[str],
    **gemini_caps: Any,
) -> dict[str, Any]:
    raw = config(bedrock, gemini, order)
    deployments = raw["policy"]["deployments"]
    deployments["a"] = {"provider": "anthropic", "model": "claude-sonnet-4-5", "base_url": anthropic.url,
                        "api_key": {"env": "ANT_KEY"}}  # fmt: skip
    deployments["g"]["capabilities"] = gemini_caps
    return raw


@pytest.mark.parametrize("first", ["a", "b"])
async def test_an_image_over_8000_px_goes_to_a_deployment_that_takes_it(
    serve: Any, bedrock: StrictBedrock, gemini: GeminiFake, anthropic: StrictAnthropic, first: str
) -> None:
    """Anthropic and Converse refuse an image over 8000 px a side (400): the route ended there with
    PROVIDER_REJECTED though Gemini, next, takes it. The size is read from the image's header."""
    gemini.push(Turn([{"text": "A picture, seen by Gemini."}]))
    s = await serve(with_anthropic(bedrock, gemini, anthropic, [first, "g"]), {**ENV, "ANT_KEY": ANT_KEY})
    reply = await s.stub.Generate(generate_request(messages=[image(WIDE, "image/png")], **IDS))
    assert (reply.summary.served_by.deployment, text_of(reply)) == ("g", "A picture, seen by Gemini.")
    assert anthropic.bodies == bedrock.bodies == []


async def test_an_image_over_8000_px_no_deployment_takes_is_refused_naming_the_limit(
    serve: Any, bedrock: StrictBedrock, gemini: GeminiFake, anthropic: StrictAnthropic
) -> None:
    s = await serve(with_anthropic(bedrock, gemini, anthropic, ["a", "b"]), {**ENV, "ANT_KEY": ANT_KEY})
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[image(WIDE, "image/png")], **IDS))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CAPABLE_DEPLOYMENT")
    assert err.info.metadata["missing"] == (
        "a cannot take image 1 of the prompt (9000 x 20 px; it takes at most 8000 px a side); "
        "b cannot take image 1 of the prompt (9000 x 20 px; it takes at most 8000 px a side)"
    )
    assert anthropic.bodies == bedrock.bodies == []


async def test_a_request_over_a_deployments_size_goes_to_one_that_takes_it_or_is_refused(
    serve: Any, bedrock: StrictBedrock, gemini: GeminiFake, anthropic: StrictAnthropic
) -> None:
    """Gemini's request limit (inline data as base64 included; 100 MB, here an endpoint's own of
    300 kB): a request over it went to Gemini, which refused it ("Request payload size exceeds the
    limit"), and the route ended PROVIDER_REJECTED. It goes to the next deployment, or, when none
    takes it, is refused naming the limit."""
    gemini.max_request_bytes = 300_000
    env = {**ENV, "ANT_KEY": ANT_KEY}
    big = image(PNG + bytes(250_000), "image/png")  # 333 kB as base64
    s = await serve(with_anthropic(bedrock, gemini, anthropic, ["g", "a"], max_request_bytes=300_000), env)
    reply = await s.stub.Generate(generate_request(messages=[big], **IDS))
    assert (reply.summary.served_by.deployment, text_of(reply)) == ("a", "Seen by Claude.")
    assert gemini.bodies == [] and len(anthropic.bodies) == 1
    alone = await serve(with_anthropic(bedrock, gemini, anthropic, ["g"], max_request_bytes=300_000), env)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await alone.stub.Generate(generate_request(messages=[big], **IDS))
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_CAPABLE_DEPLOYMENT")
    missing = err.info.metadata["missing"]
    assert missing.startswith("g is over max_request_bytes (about 33") and missing.endswith("at most 300000)")
    assert gemini.bodies == []


async def test_a_conversations_21st_image_takes_anthropics_crowded_limit_into_account(
    serve: Any, bedrock: StrictBedrock, gemini: GeminiFake, anthropic: StrictAnthropic
) -> None:
    """Anthropic takes images of up to 8000 px a side, but only 2000 in a request of more than 20.
    Conversation memory keeps https:// images (with their size): the second turn's request holds
    the first turn's 20 and its own. Claude took the 2400 px image in turn 1; it would refuse the
    request of turn 2 (fetching the images itself), which goes to Gemini."""

    def url(n: int, width: int = 100) -> gen.ContentPart:
        return gen.ContentPart(image=gen.Image(url=f"https://img.example/{n}.png", width=width, height=100))

    first = gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text="Look."), url(0, 2400)])
    first.content.extend(url(n) for n in range(1, 20))
    raw = with_anthropic(bedrock, gemini, anthropic, ["a", "g"])
    raw["policy"]["personas"] = {"sessions": {"memory": True, "max_history_messages": 50}}
    s = await serve(raw, {**ENV, "ANT_KEY": ANT_KEY})
    ids = {**IDS, "conversation_id": "c1"}
    reply = await s.stub.Generate(generate_request(messages=[first], **ids))
    assert reply.summary.served_by.deployment == "a"
    gemini.push(Turn([{"text": "Twenty-one pictures."}]))
    second = gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text="And this?"), url(20)])
    reply = await s.stub.Generate(generate_request(messages=[second], **ids))
    assert (reply.summary.served_by.deployment, text_of(reply)) == ("g", "Twenty-one pictures.")
    assert len(anthropic.bodies) == 1 and len(gemini.bodies) == 1
    assert sum("fileData" in p for c in gemini.bodies[0]["contents"] for p in c["parts"]) == 21
