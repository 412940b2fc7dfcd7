from __future__ import annotations

import json

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.core.errors import ProviderRateLimitedError, ProviderRejectedError, ProviderUnavailableError
from sidecar.core.types import FinishReason, GenerationParams, Message, Role, Usage
from sidecar.providers import anthropic
from sidecar.providers.base import ProviderRequest
from sidecar.providers.sse import SseDecoder
from sidecar.providers.stream import StreamAssembler
from tests.support.upstream import fixture

DEPLOYMENT = DeploymentConfig(provider="anthropic", model="claude-haiku-4-5", default_max_tokens=333)


def replay(raw: bytes) -> tuple[str, StreamAssembler]:
    assembler = StreamAssembler()
    text = []
    for event in SseDecoder().feed(raw):
        chunk = assembler.feed(anthropic.parse_event(event.event, event.data))
        if chunk:
            text.append(chunk.text)
    return "".join(text), assembler


def test_system_messages_become_the_system_field() -> None:
    messages = (
        Message(Role.SYSTEM, "Be brief."),
        Message(Role.USER, "Hi"),
        Message(Role.ASSISTANT, "Hello"),
        Message(Role.SYSTEM, "Answer in French."),
        Message(Role.USER, "Bye"),
    )
    body = anthropic.to_wire(ProviderRequest(messages, GenerationParams(), stream=True), DEPLOYMENT)
    assert body == {
        "model": "claude-haiku-4-5",
        "system": "Be brief.\n\nAnswer in French.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
        "max_tokens": 333,
        "stream": True,
    }


def test_parameters_map_to_anthropic_names_and_ranges() -> None:
    params = GenerationParams(max_tokens=10, temperature=1.7, top_p=0.5, stop=("X",), seed=1)
    body = anthropic.to_wire(ProviderRequest((Message(Role.USER, "q"),), params, False), DEPLOYMENT)
    assert body["max_tokens"] == 10
    assert body["temperature"] == 1.0
    assert body["top_p"] == 0.5
    assert body["stop_sequences"] == ["X"]
    assert "seed" not in body and "stream" not in body and "system" not in body


def test_parse_recorded_message_counts_cached_prompt_tokens() -> None:
    chunk = anthropic.parse_response(json.loads(fixture("anthropic/message.json")))
    assert chunk.text == "Hello! How can I help you today?"
    assert chunk.finish_reason is FinishReason.STOP
    assert chunk.usage == Usage(prompt_tokens=20, completion_tokens=12, cached_tokens=8)


def test_replay_recorded_stream() -> None:
    text, assembler = replay(fixture("anthropic/stream.sse"))
    assert text == "Hello! How can I help you today?"
    assert assembler.done
    final = assembler.final()
    assert final.finish_reason is FinishReason.STOP
    assert final.usage == Usage(prompt_tokens=20, completion_tokens=12, cached_tokens=8)


def test_error_event_mid_stream() -> None:
    with pytest.raises(ProviderUnavailableError, match="overloaded_error"):
        replay(fixture("anthropic/stream_overloaded.sse"))


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("rate_limit_error", ProviderRateLimitedError),
        ("invalid_request_error", ProviderRejectedError),
        ("api_error", ProviderUnavailableError),
        ("overloaded_error", ProviderUnavailableError),
    ],
)
def test_error_types(kind: str, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        anthropic.parse_event("error", json.dumps({"type": "error", "error": {"type": kind, "message": "m"}}))


def test_stop_reasons() -> None:
    delta = {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 3}}
    event = anthropic.parse_event("message_delta", json.dumps(delta))
    assert event.finish_reason is FinishReason.LENGTH and event.usage == Usage(completion_tokens=3)


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("pause_turn", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("model_context_window_exceeded", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("refusal", FinishReason.CONTENT_FILTER),
        ("a_reason_added_later", FinishReason.CONTENT_FILTER),  # not vouched for as complete
    ],
)
def test_every_documented_stop_reason(stop: str, expected: FinishReason) -> None:
    """A stop_reason added since was a STOP: an answer served and cached as complete."""
    message = {"type": "message", "content": [{"type": "text", "text": "x"}], "stop_reason": stop}
    assert anthropic.parse_response(message).finish_reason is expected


def test_unknown_events_are_skipped() -> None:
    assert anthropic.parse_event("thinking_delta_v9", '{"type":"something_new"}').text == ""


def test_stream_without_message_stop_is_broken() -> None:
    raw = fixture("anthropic/stream.sse")
    _, assembler = replay(raw[: raw.index(b"event: message_delta")])
    with pytest.raises(ProviderUnavailableError):
        assembler.final()


def test_whitespace_anthropic_refuses_is_left_out_checked_by_the_strict_fake() -> None:
    """Anthropic refuses a text block of whitespace alone and a prefill ending in whitespace; a
    caller (or memory) sends the model's own whitespace back. It went upstream and came back 400."""
    from sidecar.core.types import ToolCall
    from tests.support.anthropic import check_messages

    call = ToolCall("toolu_1", "get_time", "{}")
    messages = (
        Message(Role.SYSTEM, " "),
        Message(Role.USER, "What time is it?"),
        Message(Role.ASSISTANT, "\n\n", tool_calls=(call,)),
        Message(Role.TOOL, " \n", tool_call_id="toolu_1"),
        Message(Role.ASSISTANT, "\n"),  # an answer of whitespace alone: left out
        Message(Role.USER, "And in Paris?"),
        Message(Role.ASSISTANT, "In Paris it is "),
    )
    body = anthropic.to_wire(ProviderRequest(messages, GenerationParams(), stream=False), DEPLOYMENT)
    check_messages(body)
    assert "system" not in body
    assert body["messages"] == [
        {"role": "user", "content": "What time is it?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_time",
                                           "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"}]},
        {"role": "user", "content": "And in Paris?"},  # Anthropic joins the turns of one role
        {"role": "assistant", "content": "In Paris it is"},
    ]  # fmt: skip


def test_a_user_message_of_whitespace_never_becomes_a_prefill() -> None:
    """The edge refuses it; were one to reach the adapter, it goes as it is (and is refused), never
    left out to leave the assistant's last answer as a prefill to continue."""
    messages = (Message(Role.USER, "hi"), Message(Role.ASSISTANT, "Hello."), Message(Role.USER, " "))
    body = anthropic.to_wire(ProviderRequest(messages, GenerationParams(), stream=False), DEPLOYMENT)
    assert body["messages"][-1] == {"role": "user", "content": " "}
