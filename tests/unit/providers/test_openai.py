from __future__ import annotations

import json

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.core.errors import (
    ProviderAuthError,
    ProviderMalformedError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from sidecar.core.types import FinishReason, GenerationParams, Message, Role, Usage
from sidecar.providers import openai
from sidecar.providers.base import ProviderRequest
from sidecar.providers.sse import SseDecoder
from sidecar.providers.stream import StreamAssembler
from tests.support.upstream import fixture

DEPLOYMENT = DeploymentConfig(provider="openai", model="gpt-4o-mini")
MESSAGES = (Message(Role.SYSTEM, "Be brief."), Message(Role.USER, "Hi", name="ann"))


def replay(name: str) -> tuple[str, StreamAssembler]:
    assembler = StreamAssembler()
    text = []
    for event in SseDecoder().feed(fixture(name)):
        chunk = assembler.feed(openai.parse_event(event.data))
        if chunk:
            text.append(chunk.text)
        if assembler.done:
            break
    return "".join(text), assembler


def test_to_wire_maps_every_parameter() -> None:
    params = GenerationParams(max_tokens=50, temperature=0.2, top_p=0.9, stop=("END",), seed=7)
    body = openai.to_wire(ProviderRequest(MESSAGES, params, stream=True), DEPLOYMENT)
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi", "name": "ann"},
        ],
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_to_wire_leaves_unset_parameters_to_the_provider() -> None:
    body = openai.to_wire(ProviderRequest(MESSAGES, GenerationParams(), stream=False), DEPLOYMENT)
    assert set(body) == {"model", "messages"}


def test_max_completion_tokens_field_for_newer_models() -> None:
    d = DEPLOYMENT.model_copy(update={"max_tokens_field": "max_completion_tokens"})
    body = openai.to_wire(ProviderRequest(MESSAGES, GenerationParams(max_tokens=9), False), d)
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body


def test_parse_recorded_completion() -> None:
    chunk = openai.parse_response(json.loads(fixture("openai/chat_completion.json")))
    assert chunk.text == "Hello! How can I help you today?"
    assert chunk.finish_reason is FinishReason.STOP
    assert chunk.usage == Usage(prompt_tokens=19, completion_tokens=9, cached_tokens=4)


def test_replay_recorded_stream_with_usage_chunk() -> None:
    text, assembler = replay("openai/stream.sse")
    assert text == "Hello! How can I help you today?"
    final = assembler.final()
    assert final.finish_reason is FinishReason.STOP
    assert final.usage == Usage(prompt_tokens=19, completion_tokens=9)


def test_truncated_stream_is_not_a_clean_end() -> None:
    text, assembler = replay("openai/stream_truncated.sse")
    assert text == "Hello! How"
    with pytest.raises(ProviderUnavailableError):
        assembler.final()


def test_error_object_mid_stream_is_classified() -> None:
    with pytest.raises(ProviderUnavailableError, match="server had an error"):
        replay("openai/stream_error.sse")


def test_malformed_event_is_classified() -> None:
    with pytest.raises(ProviderMalformedError):
        replay("openai/stream_malformed.sse")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"type": "requests", "code": "rate_limit_exceeded"}, ProviderRateLimitedError),
        ({"type": "invalid_request_error", "code": "invalid_api_key"}, ProviderAuthError),
        ({"type": "invalid_request_error", "code": "context_length_exceeded"}, ProviderRejectedError),
        ({"type": "server_error"}, ProviderUnavailableError),
    ],
)
def test_embedded_error_types(error: dict[str, str], expected: type[Exception]) -> None:
    with pytest.raises(expected):
        openai.parse_response({"error": {"message": "m", **error}})


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"choices": []},
        {"choices": [{"message": {"content": 5}}]},
        {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": -1}},
        {"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "3"}},
    ],
)
def test_malformed_completions(body: dict[str, object]) -> None:
    with pytest.raises(ProviderMalformedError):
        openai.parse_response(body)


def test_null_content_is_empty_text() -> None:
    chunk = openai.parse_response({"choices": [{"message": {"content": None}, "finish_reason": "length"}]})
    assert chunk.text == "" and chunk.finish_reason is FinishReason.LENGTH


REFUSAL = "I'm sorry, I cannot help with that."


def test_a_refusal_is_its_text_finished_by_the_content_filter() -> None:
    """Structured outputs: a model that declines answers `message.refusal` with `content` null and
    finish_reason "stop". It was an empty answer finished STOP (the refusal lost, the structured
    check and schema_retry taking it for a bad answer worth another deployment)."""
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": REFUSAL},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 9},
    }
    chunk = openai.parse_response(body)
    assert (chunk.text, chunk.finish_reason) == (REFUSAL, FinishReason.CONTENT_FILTER)


def test_a_streamed_refusal_is_its_text_finished_by_the_content_filter() -> None:
    def data(delta: dict[str, object], finish: str | None = None) -> str:
        return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    events = [
        data({"role": "assistant", "content": None, "refusal": ""}),
        data({"refusal": "I'm sorry, "}),
        data({"refusal": "I cannot help with that."}),
        data({}, "stop"),
        json.dumps({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 9}}),
        "[DONE]",
    ]
    assembler = StreamAssembler()
    chunks = [c for e in events if (c := assembler.feed(openai.parse_event(e))) is not None]
    assert "".join(c.text for c in chunks) == REFUSAL
    assert assembler.final().finish_reason is FinishReason.CONTENT_FILTER


def test_a_null_refusal_beside_text_is_an_ordinary_answer() -> None:
    body = {"choices": [{"message": {"content": "Hi", "refusal": None}, "finish_reason": "stop"}]}
    chunk = openai.parse_response(body)
    assert (chunk.text, chunk.finish_reason) == ("Hi", FinishReason.STOP)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("function_call", FinishReason.TOOL_CALLS),
        ("eos_token", FinishReason.STOP),  # a compatible server's own word for a normal end (TGI)
    ],
)
def test_finish_reasons(reason: str, expected: FinishReason) -> None:
    """OpenAI-compatible servers end normal answers in their own words: an unknown one is a stop."""
    data = {"choices": [{"message": {"content": "x"}, "finish_reason": reason}]}
    assert openai.parse_response(data).finish_reason is expected


@pytest.mark.parametrize("reason", ["abort", "error"])
def test_an_answer_the_server_gave_up_on_is_an_upstream_failure(reason: str) -> None:
    """vLLM and SGLang end an aborted request with finish_reason "abort": it was a complete STOP,
    served and cached."""
    with pytest.raises(ProviderUnavailableError):
        openai.parse_response({"choices": [{"message": {"content": "Half"}, "finish_reason": reason}]})
    with pytest.raises(ProviderUnavailableError):
        openai.parse_event(json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}))
