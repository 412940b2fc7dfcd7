from __future__ import annotations

import json
from collections.abc import AsyncGenerator

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.core.errors import (
    ModelOutputError,
    ProviderAuthError,
    ProviderMalformedError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from sidecar.core.types import FinishReason, GenerationParams, Message, Role, ToolSpec, Usage
from sidecar.providers import bedrock, bedrock_wire
from sidecar.providers.base import ProviderRequest
from sidecar.providers.stream import StreamAssembler
from tests.support.eventstream import converse_stream, event, exception, frame, split_frames
from tests.support.upstream import fixture

DEPLOYMENT = DeploymentConfig(provider="bedrock", model="amazon.nova-lite-v1:0", default_max_tokens=300)
MESSAGES = (Message(Role.SYSTEM, "Be brief."), Message(Role.USER, "Hi"), Message(Role.ASSISTANT, "Hello."))


def test_to_wire_maps_system_roles_and_inference_config() -> None:
    params = GenerationParams(max_tokens=50, temperature=1.4, top_p=0.9, stop=("END",), seed=7)
    body = bedrock.to_wire(ProviderRequest(MESSAGES, params, stream=True), DEPLOYMENT)
    assert body == {
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"text": "Hello."}]},
        ],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 1.0, "topP": 0.9, "stopSequences": ["END"]},
    }


def test_consecutive_messages_of_one_role_are_merged() -> None:
    msgs = (
        Message(Role.USER, "a"),
        Message(Role.USER, "b"),
        Message(Role.ASSISTANT, "c"),
        Message(Role.USER, "d"),
    )
    body = bedrock.to_wire(ProviderRequest(msgs, GenerationParams(), stream=False), DEPLOYMENT)
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "a"}, {"text": "b"}]},
        {"role": "assistant", "content": [{"text": "c"}]},
        {"role": "user", "content": [{"text": "d"}]},
    ]


def test_to_wire_sends_the_deployments_default_max_tokens() -> None:
    body = bedrock.to_wire(ProviderRequest(MESSAGES[1:2], GenerationParams(), stream=False), DEPLOYMENT)
    assert body["inferenceConfig"] == {"maxTokens": 300} and "system" not in body


def test_default_endpoint_follows_the_region() -> None:
    d = DeploymentConfig(provider="bedrock", model="m", bedrock={"region": "eu-central-1"})
    assert d.url() == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    assert d.takes_user_keys()  # the official endpoint: a user's Bedrock API key may go there


def test_parse_recorded_converse_answer() -> None:
    chunk = bedrock.parse_response(json.loads(fixture("bedrock/converse.json")))
    assert chunk.text == "Hello! How can I help you today?"
    assert chunk.finish_reason is FinishReason.STOP
    assert chunk.usage == Usage(prompt_tokens=20, completion_tokens=12, cached_tokens=8)


def replay(frames: list[bytes]) -> tuple[str, StreamAssembler]:
    from botocore.eventstream import EventStreamBuffer

    buffer, assembler, text, parse = EventStreamBuffer(), StreamAssembler(), [], bedrock.StreamParser()
    buffer.add_data(b"".join(frames))
    for m in buffer:
        chunk = assembler.feed(parse(bedrock.EventMessage(m.headers, m.payload)))
        if chunk:
            text.append(chunk.text)
    return "".join(text), assembler


def test_replay_recorded_converse_stream() -> None:
    text, assembler = replay(split_frames(fixture("bedrock/converse_stream.bin")))
    assert text == "Hello! How can I help you today?"
    assert assembler.final().usage == Usage(prompt_tokens=20, completion_tokens=12, cached_tokens=8)


def test_recorded_transcript_is_what_the_encoder_makes() -> None:
    recorded = fixture("bedrock/converse_stream.bin")
    assert b"".join(converse_stream(["Hello", "! How can I", " help you today?"])) == recorded


@pytest.mark.parametrize(
    ("stop", "expected"),
    [
        ("max_tokens", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("guardrail_intervened", FinishReason.CONTENT_FILTER),
        ("content_filtered", FinishReason.CONTENT_FILTER),
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("model_context_window_exceeded", FinishReason.LENGTH),
        ("something_new", FinishReason.CONTENT_FILTER),  # not vouched for as a complete answer
    ],
)
def test_stop_reasons(stop: str, expected: FinishReason) -> None:
    """Every stopReason the Converse reference documents; one added since was a STOP (served and
    cached as a complete answer, an empty one as an empty success)."""
    _, assembler = replay(converse_stream(["x"], stop=stop))
    assert assembler.final().finish_reason is expected
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": stop}
    assert bedrock.parse_response(answer).finish_reason is expected


@pytest.mark.parametrize("stop", ["malformed_model_output", "malformed_tool_use"])
def test_output_the_model_wrote_wrong_is_a_bad_answer(stop: str) -> None:
    """As Gemini's MALFORMED_FUNCTION_CALL: another deployment may do better. It was a STOP."""
    answer = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": stop}
    with pytest.raises(ModelOutputError):  # the model's output, not a broken wire: health untouched
        bedrock.parse_response(answer)
    with pytest.raises(ModelOutputError):
        replay(converse_stream(["x"], stop=stop))


def test_a_stop_reason_that_is_not_a_string_is_a_bad_answer() -> None:
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": 7}
    with pytest.raises(ProviderMalformedError):
        bedrock.parse_response(answer)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("throttlingException", ProviderRateLimitedError),
        ("validationException", ProviderRejectedError),
        ("accessDeniedException", ProviderAuthError),
        ("modelTimeoutException", ProviderTimeoutError),
        ("modelStreamErrorException", ProviderUnavailableError),
        ("internalServerException", ProviderUnavailableError),
        ("serviceUnavailableException", ProviderUnavailableError),
    ],
)
def test_stream_exceptions_are_classified(kind: str, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        replay([exception(kind, "boom")])


def test_error_messages_and_unknown_message_types() -> None:
    with pytest.raises(ProviderUnavailableError, match="InternalFailure"):
        replay(
            [frame({":message-type": "error", ":error-code": "InternalFailure", ":error-message": "x"}, b"")]
        )
    with pytest.raises(ProviderMalformedError):
        replay([frame({":message-type": "mystery"}, b"{}")])
    with pytest.raises(ProviderMalformedError):
        replay([frame({":message-type": "event", ":event-type": "contentBlockDelta"}, b"not json")])


def test_unknown_events_are_skipped() -> None:
    text, _ = replay([event("somethingNew", {"x": 1}), *converse_stream(["ok"])])
    assert text == "ok"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"output": {"message": {"content": "x"}}},
        {"output": {"message": {"content": []}}, "usage": {"inputTokens": "3"}},
    ],
)
def test_malformed_answers(body: object) -> None:
    with pytest.raises(ProviderMalformedError):
        bedrock.parse_response(body)


async def test_frames_split_across_reads_are_reassembled() -> None:
    raw = fixture("bedrock/converse_stream.bin")

    async def reads() -> AsyncGenerator[bytes, None]:
        for i in range(0, len(raw), 7):  # seven bytes per network read
            yield raw[i : i + 7]

    kinds = [m.headers[":event-type"] async for batch in bedrock.event_messages(reads()) for m in batch]
    assert kinds[0] == "messageStart" and kinds[-1] == "metadata" and len(kinds) == 7


async def test_a_corrupt_frame_is_malformed() -> None:
    good = split_frames(fixture("bedrock/converse_stream.bin"))[0]
    corrupt = good[:-1] + bytes([good[-1] ^ 0xFF])  # message CRC no longer matches

    async def reads() -> AsyncGenerator[bytes, None]:
        yield corrupt

    with pytest.raises(ProviderMalformedError, match="ChecksumMismatch"):
        _ = [batch async for batch in bedrock.event_messages(reads())]


@pytest.mark.timeout(10)
async def test_a_long_message_split_in_small_reads_is_framed_in_linear_time() -> None:
    """An 8 MiB message arriving 64 bytes at a time: its bytes are joined once, when the message is
    whole. Adding each read to botocore's buffer re-joined everything held (~550 GB copied here,
    minutes with the event loop and every other call blocked)."""
    big = event("contentBlockDelta", {"delta": {"text": "x" * (8 << 20)}, "contentBlockIndex": 0})
    raw = big + event("messageStop", {"stopReason": "end_turn"})

    async def reads() -> AsyncGenerator[bytes, None]:
        for i in range(0, len(raw), 64):
            yield raw[i : i + 64]

    kinds = [m.headers[":event-type"] async for batch in bedrock.event_messages(reads()) for m in batch]
    assert kinds == ["contentBlockDelta", "messageStop"]


@pytest.mark.parametrize("length", [0, 15, 2**31])
async def test_a_message_length_out_of_bounds_is_malformed(length: int) -> None:
    async def reads() -> AsyncGenerator[bytes, None]:
        yield length.to_bytes(4, "big") + bytes(12)

    with pytest.raises(ProviderMalformedError):  # botocore says so too; the framer must not wait
        _ = [batch async for batch in bedrock.event_messages(reads())]


def test_a_prompt_that_starts_with_an_assistant_message_gets_a_user_turn_first() -> None:
    """Converse refuses a conversation that does not start with a user message ("A conversation
    must start with a user message"). Trimming keeps the newest messages and a summary keeps every
    uncovered one, so with memory the prompt starts with an assistant answer on most turns (with
    max_recent_messages 10, on every turn from the sixth): each of them failed on a Bedrock route."""
    msgs = (
        Message(Role.SYSTEM, "Be brief."),
        Message(Role.SYSTEM, "Summary of 4 earlier messages: ..."),
        Message(Role.ASSISTANT, "Paris."),
        Message(Role.USER, "And its population?"),
    )
    body = bedrock.to_wire(ProviderRequest(msgs, GenerationParams(), stream=False), DEPLOYMENT)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [{"text": bedrock.CONTINUED}]
    assert body["messages"][1]["content"] == [{"text": "Paris."}]


def test_blank_text_converse_refuses_is_left_out_checked_by_the_strict_fake() -> None:
    """A blank system message, an empty tool result and a prefill ending in whitespace went
    upstream and came back 400 (ValidationException)."""
    from sidecar.core.types import ToolCall
    from tests.support.bedrock import check_converse

    call = ToolCall("tooluse_1", "get_time", "{}")
    messages = (
        Message(Role.SYSTEM, "\n"),
        Message(Role.USER, "What time is it?"),
        Message(Role.ASSISTANT, " ", tool_calls=(call,)),
        Message(Role.TOOL, "  ", tool_call_id="tooluse_1"),
        Message(Role.ASSISTANT, "It is "),
    )
    params = GenerationParams(tools=(ToolSpec("get_time", "The time."),))
    body = bedrock.to_wire(ProviderRequest(messages, params, stream=False), DEPLOYMENT)
    check_converse(body)
    assert "system" not in body
    result = body["messages"][2]["content"][0]["toolResult"]
    assert result["content"] == [{"text": bedrock_wire.NO_OUTPUT}]
    assert body["messages"][-1]["content"] == [{"text": "It is"}]
