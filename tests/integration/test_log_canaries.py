"""The model's answer never reaches the logs (unless capture_content.logs is on): an answer that
fails its requested format is quoted to the caller (`metadata.violation`), never in the log line of
the failed call, at any level."""

from __future__ import annotations

import io
import json
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import system, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, rpc_error
from tests.support.tools import struct
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

ANSWER_CANARY = "ANSWER-CANARY-the-secret-plan-4c1d"
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def assistant(text: str) -> gen.Message:
    return gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(text=text)])


def completion(content: str) -> Reply:
    body = {
        "id": "c1",
        "object": "chat.completion",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    return Reply(status=200, body=json.dumps(body).encode())


def stream(content: str) -> Reply:
    first = {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": content}}]}
    last = {
        "id": "c",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    chunks = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in (first, last)] + [b"data: [DONE]\n\n"]
    return Reply(chunks=chunks, headers={"content-type": "text/event-stream"})


def openai_at(upstream: Upstream, **extra: Any) -> dict[str, Any]:
    """An OpenAI-wire deployment on the loopback upstream (key from $K)."""
    return {
        "provider": "openai",
        "model": "m",
        "base_url": f"{upstream.url}/v1",
        "api_key": {"env": "K"},
        **extra,
    }


def one_route(deployment: dict[str, Any], **policy: Any) -> dict[str, Any]:
    """Route "r" over deployment "d" alone, one attempt, probes off."""
    return {
        "default_route": "r",
        "deployments": {"d": deployment},
        "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
        "routing": {"probes": {"enabled": False}},
        **policy,
    }


def rejected_quoting(upstream: Upstream, quoted: str) -> None:
    """The upstream's next answer: a 400 whose message quotes `quoted` back, as OpenAI's do."""
    echoed = {"error": {"message": f"you sent: {quoted}", "type": "invalid_request_error"}}
    upstream.push(Reply(status=400, body=json.dumps(echoed).encode()))


@pytest.mark.parametrize("schema_retry", [False, True])
async def test_an_answer_failing_its_format_is_not_logged(
    serve: Any, upstream: Upstream, json_logs: io.StringIO, schema_retry: bool
) -> None:
    deployment = openai_at(upstream)
    route: dict[str, Any] = {"deployments": ["d"], "retry": {"max_attempts": 1}}
    if schema_retry:
        route = {
            "deployments": ["d", "e"],
            "retry": {"max_attempts": 1},
            "schema_retry": {"enabled": True, "hold_streams": True},
        }
    policy = {
        "default_route": "r",
        "deployments": {"d": deployment, "e": deployment},
        "routes": {"r": route},
        "routing": {"probes": {"enabled": False}},
    }
    s = await serve({"policy": policy}, {"K": "sk-test-0123456789abcdef"})
    answer = json.dumps({"a": ANSWER_CANARY})
    fmt = gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="s", schema=struct(SCHEMA)))
    request = generate_request(messages=[user("give me json")], response_format=fmt)
    attempts = 2 if schema_retry else 1
    upstream.push(*[completion(answer)] * attempts, *[stream(answer)] * attempts)
    for call in (
        lambda: s.stub.Generate(request),
        lambda: s.stub.StreamGenerate(gen.StreamGenerateRequest(input=request.input)),
    ):
        err = await rich(await rpc_error(call))
        assert err.reason == "SCHEMA_VALIDATION_FAILED"
        assert ANSWER_CANARY in err.info.metadata["violation"]  # the caller is told what is wrong
    logs = json_logs.getvalue()
    assert "SCHEMA_VALIDATION_FAILED" in logs  # the failures were logged
    assert ANSWER_CANARY not in logs
    assert "secret-plan" not in logs


async def test_conversation_history_quoted_by_an_upstream_is_masked(
    serve: Any, upstream: Upstream, json_logs: io.StringIO
) -> None:
    """The history the sidecar puts before a call's messages is the call's prompt text too: an
    upstream error that quotes it back (at INFO and WARNING) has it masked like the new messages."""
    earlier, answered = "HISTORY-CANARY earlier question 7a1f", "HISTORY-CANARY-ANSWER a reply 93be"
    personas = {"personas": [{"id": "maya", "name": "Maya", "system_prompt": "You are Maya."}]}
    policy = one_route(openai_at(upstream), personas=personas)
    s = await serve({"policy": policy}, {"K": "sk-test-0123456789abcdef"})
    upstream.push(completion(answered))
    rejected_quoting(upstream, f"{earlier} / {answered} / now")
    ids = {"tenant_id": "acme", "user_id": "alice", "conversation_id": "c1", "memory": True}
    await s.stub.Generate(generate_request(messages=[user(earlier)], **ids))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user("and now?")], **ids))
    assert (await rich(info.value)).reason == "PROVIDER_REJECTED"
    assert "HISTORY-CANARY" in json.dumps(upstream.seen[1].body)  # the history was sent upstream
    logs = json_logs.getvalue()
    assert "PROVIDER_REJECTED" in logs
    assert "HISTORY-CANARY" not in logs


async def test_a_multi_line_prompt_quoted_back_as_json_is_masked(
    serve: Any, upstream: Upstream, json_logs: io.StringIO
) -> None:
    """Upstreams quote the request as JSON: the prompt's newlines and quotes arrive escaped."""
    prompt = 'MULTILINE-CANARY first line\nsecond "quoted" line'
    s = await serve({"policy": one_route(openai_at(upstream))}, {"K": "sk-test-0123456789abcdef"})
    sent = json.dumps({"messages": [{"role": "user", "content": prompt}]})
    rejected_quoting(upstream, sent)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user(prompt)]))
    assert (await rich(info.value)).reason == "PROVIDER_REJECTED"
    logs = json_logs.getvalue()
    assert "PROVIDER_REJECTED" in logs
    assert "MULTILINE-CANARY" not in logs


async def test_a_long_prompt_quoted_back_and_cut_is_masked(
    serve: Any, upstream: Upstream, json_logs: io.StringIO
) -> None:
    """The upstream's text is cut to 300 characters: what is left of a long prompt is masked."""
    prompt = "LONGPROMPT-CANARY " + "and so on " * 100
    s = await serve({"policy": one_route(openai_at(upstream))}, {"K": "sk-test-0123456789abcdef"})
    rejected_quoting(upstream, prompt)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=[user(prompt)]))
    assert (await rich(info.value)).reason == "PROVIDER_REJECTED"
    logs = json_logs.getvalue()
    assert "PROVIDER_REJECTED" in logs
    assert "LONGPROMPT-CANARY" not in logs


async def test_tool_call_arguments_quoted_back_are_masked(
    serve: Any, upstream: Upstream, json_logs: io.StringIO
) -> None:
    """A tool call's arguments in the conversation are the call's content like its text (the
    model's earlier output, sent back by the caller): masked when an upstream quotes them."""
    arguments = '{"q": "ARGS-CANARY the secret query"}'
    deployment = openai_at(upstream, capabilities={"tools": True})
    s = await serve({"policy": one_route(deployment)}, {"K": "sk-test-0123456789abcdef"})
    call = gen.ToolCall(id="c1", name="lookup", arguments=arguments)
    messages = [
        user("look it up"),
        gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(tool_call=call)]),
        gen.Message(role=gen.ROLE_TOOL, tool_call_id="c1", content=[gen.ContentPart(text="a result")]),
        user("go on"),
    ]
    sent = json.dumps({"messages": [{"tool_calls": [{"function": {"arguments": arguments}}]}]})
    rejected_quoting(upstream, sent)
    request = generate_request(messages=messages, tools=[gen.Tool(name="lookup")])
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(request)
    assert (await rich(info.value)).reason == "PROVIDER_REJECTED"
    logs = json_logs.getvalue()
    assert "PROVIDER_REJECTED" in logs
    assert "ARGS-CANARY" not in logs


async def test_a_rolling_summary_quoted_back_is_masked(
    serve: Any, upstream: Upstream, json_logs: io.StringIO
) -> None:
    """The conversation's rolling summary (model-written, of the caller's earlier messages) goes
    into the prompt like the history it replaces: masked when an upstream quotes it back."""
    summary = "SUMMARY-CANARY the user asked about the dashboard twice"
    oai = openai_at(upstream)
    policy = {
        "default_route": "chat",
        "deployments": {"main": oai, "summarizer": oai},
        "routes": {
            "chat": {"deployments": ["main"], "retry": {"max_attempts": 1}},
            "summarize": {"deployments": ["summarizer"], "retry": {"max_attempts": 1}},
        },
        "routing": {"probes": {"enabled": False}},
        "context": {
            "max_recent_messages": 4,
            "summary": {"route": "summarize", "keep_recent_messages": 2, "refresh_tokens": 1},
        },
    }
    s = await serve({"policy": policy}, {"K": "sk-test-0123456789abcdef"})
    conversation = [system("You are Mr Blue.")]
    for i in range(6):
        conversation += [user(f"question {i}: what is on the dashboard today?"), assistant(f"answer {i}")]
    ids = {"tenant_id": "acme", "user_id": "ann", "conversation_id": "c1"}
    upstream.push(completion("an answer"), completion(summary))  # the answer, then the summary
    await s.stub.Generate(generate_request(messages=[*conversation, user("and now?")], **ids))
    assert len(upstream.seen) == 2  # the summary was written
    rejected_quoting(upstream, f"{summary} / and then?")
    later = [*conversation, user("and now?"), assistant("an answer"), user("and then?")]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await s.stub.Generate(generate_request(messages=later, **ids))
    assert (await rich(info.value)).reason == "PROVIDER_REJECTED"
    assert summary in json.dumps(upstream.seen[2].body)  # the summary was in the prompt
    logs = json_logs.getvalue()
    assert "PROVIDER_REJECTED" in logs
    assert "SUMMARY-CANARY" not in logs
