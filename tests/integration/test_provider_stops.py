"""How an answer ended, through the real server: hostile but well-formed upstream answers that
stop for a reason other than the model's own end (Gemini's OTHER, LANGUAGE, a block; Converse's
filters and malformed output; a reason added after this sidecar was built), against the strict
loopback Gemini and Bedrock. A stopped answer is served as it came with FINISH_REASON_CONTENT_FILTER
(an empty one is never an empty success), is not cached, and is not the deployment's failure."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request, text_of
from tests.support.bedrock import Answer, StrictBedrock
from tests.support.eventstream import event
from tests.support.gemini import GeminiFake, Turn
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
ENV = {"GEMINI_KEY": "AIzaSyTest-gemini-0123456789"}
AWS = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
IDS = {"tenant_id": "t1", "user_id": "u1"}
ZERO = gen.GenerationConfig(temperature=0.0)
CACHE = {"cache": {"enabled": True, "namespace": "stops"}}
ECHO = {"provider": "echo", "model": "echo-1"}


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


def policy(deployments: dict[str, Any]) -> dict[str, Any]:
    return {
        "settings": CACHE,
        "policy": {
            "default_route": "r",
            "deployments": deployments,
            "routes": {"r": {"deployments": list(deployments), "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
        },
    }


def gemini(url: str) -> dict[str, Any]:
    return {"provider": "gemini", "model": "gemini-3-flash-preview", "base_url": url,
            "api_key": {"env": "GEMINI_KEY"}}  # fmt: skip


async def ask(s: Any, stream: bool, text: str = "Tell me.") -> tuple[str, gen.ResponseSummary]:
    fields = {"messages": [user(text)], "config": ZERO, **IDS}
    if not stream:
        reply = await s.stub.Generate(generate_request(**fields))
        return text_of(reply), reply.summary
    events = [e async for e in s.stub.StreamGenerate(stream_request(**fields))]
    return "".join(e.delta.text for e in events), events[-1].result.summary


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(
    ("turn", "text"),
    [
        (Turn([], "OTHER"), ""),  # stopped, for a reason Gemini does not give, before a word
        (Turn([{"text": "Je vais"}], "LANGUAGE"), "Je vais"),  # stopped for the language
        (Turn([], "SPII"), ""),
        (Turn([{"text": "Half an"}], "SOMETHING_GEMINI_ADDS_IN_2027"), "Half an"),
    ],
    ids=["other", "language", "spii", "unknown"],
)
async def test_a_gemini_answer_stopped_by_gemini(
    serve: Any, fake: GeminiFake, stream: bool, turn: Turn, text: str
) -> None:
    """OTHER and LANGUAGE (and any reason added since) were STOP: the empty or cut answer was
    served as complete and cached, so the same question got it again without asking Gemini."""
    fake.push(turn, turn)
    s = await serve(policy({"d": gemini(fake.url)}), ENV)
    for _ in range(2):
        got, summary = await ask(s, stream)
        assert (got, summary.finish_reason) == (text, gen.FINISH_REASON_CONTENT_FILTER)
        assert not summary.cache_hit and [a.outcome for a in summary.attempts] == ["OK"]
    assert len(fake.bodies) == 2  # asked again: a stopped answer is not cached


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_blocked_gemini_prompt(serve: Any, fake: GeminiFake, stream: bool) -> None:
    blocked = b'{"promptFeedback": {"blockReason": "OTHER"}, "usageMetadata": {"promptTokenCount": 9}}'
    raw = b"data: " + blocked + b"\r\n\r\n" if stream else blocked
    fake.push(Turn([], raw=raw), Turn([], raw=raw))
    s = await serve(policy({"d": gemini(fake.url)}), ENV)
    for _ in range(2):
        got, summary = await ask(s, stream)
        assert (got, summary.finish_reason) == ("", gen.FINISH_REASON_CONTENT_FILTER)
        assert summary.usage.prompt_tokens == 9 and not summary.cache_hit
    assert len(fake.bodies) == 2


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS[1])
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def bedrock(url: str) -> dict[str, Any]:
    return {"provider": "bedrock", "model": "anthropic.claude-3-5-haiku-20241022-v1:0", "base_url": url,
            "bedrock": {"region": "eu-west-1"}}  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(
    ("answer", "text"),
    [
        (([], "content_filtered"), ""),
        (([{"text": "Half an"}], "a_stop_converse_adds_later"), "Half an"),
    ],
    ids=["filtered", "unknown"],
)
async def test_a_converse_answer_stopped_by_bedrock(
    serve: Any, stream: bool, answer: Answer, text: str
) -> None:
    """A stopReason added since was STOP: served as complete and cached."""
    server = await StrictBedrock(lambda body: answer, AWS, "eu-west-1").start()
    try:
        s = await serve(policy({"b": bedrock(server.url)}))
        for _ in range(2):
            got, summary = await ask(s, stream)
            assert (got, summary.finish_reason) == (text, gen.FINISH_REASON_CONTENT_FILTER)
            assert not summary.cache_hit and [a.outcome for a in summary.attempts] == ["OK"]
        assert len(server.bodies) == 2 and server.refusals == []
    finally:
        await server.close()


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_malformed_converse_output_goes_to_the_next_deployment(serve: Any, stream: bool) -> None:
    """malformed_model_output was a STOP: the empty answer served as complete. It is a bad answer,
    as Gemini's MALFORMED_FUNCTION_CALL: the route's next deployment answers."""
    server = await StrictBedrock(lambda body: ([], "malformed_model_output"), AWS, "eu-west-1").start()
    try:
        s = await serve(policy({"b": bedrock(server.url), "echo": ECHO}))
        got, summary = await ask(s, stream, "echo me")
        assert summary.finish_reason == gen.FINISH_REASON_STOP and got
        assert summary.served_by.deployment == "echo"
        assert summary.attempts[0].outcome != "OK"
    finally:
        await server.close()


def sse(*events: dict[str, Any], names: bool = False) -> list[bytes]:
    return [
        (f"event: {e['type']}\n" if names else "").encode() + b"data: " + json.dumps(e).encode() + b"\n\n"
        for e in events
    ]


def openai_chunk(text: str, finish: str | None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}  # fmt: skip


def openai_events(first: str, then: str) -> list[bytes]:
    return [*sse(openai_chunk("Part of it", first), openai_chunk("", then)), b"data: [DONE]\n\n"]


def anthropic_events(stops: list[str]) -> list[bytes]:
    start = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "m",
             "usage": {"input_tokens": 5, "output_tokens": 1}}  # fmt: skip
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Part of it"}},
        {"type": "content_block_stop", "index": 0},
    ]
    events += [
        {"type": "message_delta", "delta": {"stop_reason": s}, "usage": {"output_tokens": 3}} for s in stops
    ]
    return sse(*events, {"type": "message_stop"}, names=True)


def gemini_events(finishes: list[str]) -> list[bytes]:
    usage = {"promptTokenCount": 5, "candidatesTokenCount": 3}
    first = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Part of it"}]}}]}
    empty = {"role": "model", "parts": []}
    rest = [{"candidates": [{"content": empty, "finishReason": f}], "usageMetadata": usage} for f in finishes]
    return sse(first, *rest)


def bedrock_frames(stops: list[str]) -> list[bytes]:
    frames = [event("messageStart", {"role": "assistant"}),
              event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Part of it"}}),
              event("contentBlockStop", {"contentBlockIndex": 0})]  # fmt: skip
    frames += [event("messageStop", {"stopReason": s}) for s in stops]
    return [
        *frames,
        event("metadata", {"usage": {"inputTokens": 5, "outputTokens": 3}, "metrics": {"latencyMs": 9}}),
    ]


# A stream that reports the content filter, then a normal end: a hostile upstream undoing the filter
# (or Azure's asynchronous filter, which may report content_filter after stop, the other way round).
FILTER_THEN_STOP = {
    "openai": (lambda: openai_events("content_filter", "stop"), {}),
    "anthropic": (lambda: anthropic_events(["refusal", "end_turn"]), {}),
    "gemini": (lambda: gemini_events(["SAFETY", "STOP"]), {}),
    "bedrock": (lambda: bedrock_frames(["guardrail_intervened", "end_turn"]),
                {"content-type": "application/vnd.amazon.eventstream"}),
}  # fmt: skip
STOP_THEN_FILTER = {
    "openai": (lambda: openai_events("stop", "content_filter"), {}),
    "gemini": (lambda: gemini_events(["STOP", "SAFETY"]), {}),
}  # fmt: skip


def hostile(provider: str, url: str, **more: dict[str, Any]) -> dict[str, Any]:
    deployment: dict[str, Any] = {
        "openai": {"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{url}/v1",
                   "api_key": {"env": "K"}},
        "anthropic": {"provider": "anthropic", "model": "claude", "base_url": url, "api_key": {"env": "K"}},
        "gemini": {"provider": "gemini", "model": "gemini-3-flash", "base_url": f"{url}/v1beta",
                   "api_key": {"env": "K"}},
        "bedrock": {"provider": "bedrock", "model": "amazon.nova-lite-v1:0", "base_url": url,
                    "bedrock": {"region": "eu-west-1"}},
    }[provider]  # fmt: skip
    return policy({"d": deployment, **more})


@pytest.mark.parametrize(
    ("provider", "stream"),
    [(p, s) for s in (FILTER_THEN_STOP, STOP_THEN_FILTER) for p in s],
    ids=[f"{p}-{'filter-then-stop' if s is FILTER_THEN_STOP else 'stop-then-filter'}"
         for s in (FILTER_THEN_STOP, STOP_THEN_FILTER) for p in s],
)  # fmt: skip
async def test_a_content_filter_reported_in_a_stream_is_never_undone(
    serve: Any, upstream: Upstream, provider: str, stream: dict[str, Any]
) -> None:
    """Each adapter through the real server: the last finish an upstream reported won, so a
    filtered answer followed by a `stop` was served (and cached) as complete."""
    chunks, headers = stream[provider]
    upstream.push(Reply(chunks=chunks(), headers=headers), Reply(chunks=chunks(), headers=headers))
    s = await serve(hostile(provider, upstream.url), {"K": "sk-test-0123456789abcdef"})
    for _ in range(2):
        got, summary = await ask(s, True)
        assert (got, summary.finish_reason) == ("Part of it", gen.FINISH_REASON_CONTENT_FILTER)
        assert not summary.cache_hit
    assert len(upstream.seen) == 2


async def test_a_blocked_prompt_with_a_candidate_beside_it_is_not_answered(
    serve: Any, fake: GeminiFake
) -> None:
    """promptFeedback.blockReason beside a candidate's text: the text was served as a STOP."""
    candidate = {
        "content": {"role": "model", "parts": [{"text": "the answer anyway"}]},
        "finishReason": "STOP",
    }
    blocked = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "candidates": [candidate]}
    fake.push(Turn([], raw=json.dumps(blocked).encode()))
    s = await serve(policy({"d": gemini(fake.url)}), ENV)
    got, summary = await ask(s, False)
    assert (got, summary.finish_reason) == ("", gen.FINISH_REASON_CONTENT_FILTER)


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_an_answer_an_openai_compatible_server_aborted(
    serve: Any, upstream: Upstream, stream: bool
) -> None:
    """vLLM's finish_reason "abort" (the request aborted, e.g. preempted or the server stopping):
    the half answer was a complete STOP, served and cached. Before anything was sent on, the next
    deployment answers; a stream already under way ends STREAM_INTERRUPTED."""
    choice = {"index": 0, "message": {"role": "assistant", "content": "Half"}, "finish_reason": "abort"}
    whole = {"id": "c", "object": "chat.completion", "model": "m", "choices": [choice]}
    chunks = sse(openai_chunk("Half", None), openai_chunk("", "abort"))
    upstream.push(
        Reply(chunks=[*chunks, b"data: [DONE]\n\n"]) if stream else Reply(body=json.dumps(whole).encode())
    )
    s = await serve(hostile("openai", upstream.url, echo=ECHO), {"K": "sk-test-0123456789abcdef"})
    if not stream:
        got, summary = await ask(s, False, "echo me")
        assert (got, summary.served_by.deployment) == ("echo me", "echo")
        return
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await ask(s, True, "echo me")
    err = await rich(info.value)
    assert err.reason == "STREAM_INTERRUPTED"


AZURE_FILTERED = {
    "error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {"violence": {"filtered": True, "severity": "high"}},
        },
    }
}


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_a_prompt_azures_filter_refuses_is_a_filtered_answer(
    serve: Any, upstream: Upstream, stream: bool
) -> None:
    """Azure refuses a prompt its content filter flags with HTTP 400 code content_filter: it was
    PROVIDER_REJECTED (INVALID_ARGUMENT, as a malformed request), where Gemini's blocked prompt and
    Converse's guardrail are a CONTENT_FILTER finish. Now the same: an empty answer finished
    CONTENT_FILTER, nothing charged for tokens (Azure bills none), not cached, not the next
    deployment's to answer."""
    filtered = Reply(status=400, body=json.dumps(AZURE_FILTERED).encode())
    upstream.push(filtered, filtered)
    azure = {"provider": "azure", "model": "gpt-4o-mini", "base_url": upstream.url, "api_key": {"env": "K"},
             "azure": {"deployment": "chat", "api_version": "2024-10-21"}}  # fmt: skip
    raw = policy({"d": azure, "echo": ECHO})
    s = await serve(raw, {"K": "azure-test-key-0123456789abcdef"})
    for _ in range(2):
        got, summary = await ask(s, stream, "echo me")
        assert (got, summary.finish_reason) == ("", gen.FINISH_REASON_CONTENT_FILTER)
        assert summary.served_by.deployment == "d" and not summary.cache_hit
        assert (summary.usage.prompt_tokens, summary.usage.completion_tokens, summary.cost_micros) == (
            0,
            0,
            0,
        )
    assert len(upstream.seen) == 2
