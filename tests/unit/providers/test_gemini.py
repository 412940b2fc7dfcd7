from __future__ import annotations

import json
import logging

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
from sidecar.providers import gemini, gemini_wire
from sidecar.providers.base import ProviderRequest
from sidecar.providers.sse import SseDecoder
from sidecar.providers.stream import StreamAssembler
from tests.support.gemini import request_problems
from tests.support.upstream import fixture

DEPLOYMENT = DeploymentConfig(provider="gemini", model="gemini-2.5-flash")
MESSAGES = (
    Message(Role.SYSTEM, "Be brief."),
    Message(Role.USER, "Hi"),
    Message(Role.ASSISTANT, "Hello."),
    Message(Role.SYSTEM, "Use English."),
    Message(Role.USER, "Again"),
)


def test_to_wire_maps_roles_system_and_every_parameter() -> None:
    params = GenerationParams(max_tokens=50, temperature=1.5, top_p=0.9, stop=("END",), seed=7)
    body = gemini.to_wire(ProviderRequest(MESSAGES, params, stream=True), DEPLOYMENT)
    assert body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello."}]},
            {"role": "user", "parts": [{"text": "Again"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief.\n\nUse English."}]},
        "generationConfig": {
            "maxOutputTokens": 50, "temperature": 1.5, "topP": 0.9, "stopSequences": ["END"], "seed": 7,
        },
    }  # fmt: skip


@pytest.mark.parametrize(
    ("seed", "sent"), [(7, 7), (-(2**31), -(2**31)), (2**31, -(2**31)), (2**40 + 5, 5), (-(2**63), 0)]
)
def test_a_seed_goes_as_the_int32_gemini_takes(seed: int, sent: int) -> None:
    """The edge takes an int64 seed (OpenAI's range); Gemini refuses one past int32 ("Invalid value
    at 'generation_config.seed' (TYPE_INT32)"): a wider seed wraps into it, the same each time."""
    req = ProviderRequest((Message(Role.USER, "hi"),), GenerationParams(seed=seed), stream=False)
    body = gemini.to_wire(req, DEPLOYMENT)
    assert body["generationConfig"]["seed"] == sent
    assert request_problems(body, set()) == []


def test_to_wire_leaves_unset_parameters_to_the_provider() -> None:
    body = gemini.to_wire(ProviderRequest(MESSAGES[1:2], GenerationParams(), stream=False), DEPLOYMENT)
    assert body == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_parse_recorded_answer_counts_thinking_as_output() -> None:
    chunk = gemini.parse_response(json.loads(fixture("gemini/generate_content.json")))
    assert chunk.text == "Hello! How can I help you today?"
    assert chunk.finish_reason is FinishReason.STOP
    assert chunk.usage == Usage(prompt_tokens=7, completion_tokens=14, cached_tokens=2, reasoning_tokens=5)


def test_replay_recorded_stream() -> None:
    assembler, text = StreamAssembler(), []
    for event in SseDecoder().feed(fixture("gemini/stream.sse")):
        chunk = assembler.feed(gemini.parse_event(event.data))
        if chunk:
            text.append(chunk.text)
    assert "".join(text) == "Hello! How can I help you today?"
    final = assembler.final()
    assert final.finish_reason is FinishReason.STOP and final.usage == Usage(7, 9, 0)


def test_truncated_stream_is_not_a_clean_end() -> None:
    assembler = StreamAssembler()
    for event in SseDecoder().feed(fixture("gemini/stream_truncated.sse")):
        assembler.feed(gemini.parse_event(event.data))
    with pytest.raises(ProviderUnavailableError):
        assembler.final()


def test_blocked_prompt_is_a_content_filter_finish() -> None:
    chunk = gemini.parse_response(json.loads(fixture("gemini/blocked.json")))
    assert (chunk.text, chunk.finish_reason) == ("", FinishReason.CONTENT_FILTER)


# Every finishReason the GenerateContentResponse reference documents, and what the caller sees.
DOCUMENTED_FINISHES = [
    ("STOP", FinishReason.STOP),
    ("MAX_TOKENS", FinishReason.LENGTH),
    ("SAFETY", FinishReason.CONTENT_FILTER),
    ("RECITATION", FinishReason.CONTENT_FILTER),
    ("LANGUAGE", FinishReason.CONTENT_FILTER),
    ("OTHER", FinishReason.CONTENT_FILTER),
    ("BLOCKLIST", FinishReason.CONTENT_FILTER),
    ("PROHIBITED_CONTENT", FinishReason.CONTENT_FILTER),
    ("SPII", FinishReason.CONTENT_FILTER),
    ("IMAGE_SAFETY", FinishReason.CONTENT_FILTER),
    ("IMAGE_PROHIBITED_CONTENT", FinishReason.CONTENT_FILTER),
    ("IMAGE_RECITATION", FinishReason.CONTENT_FILTER),
    ("IMAGE_OTHER", FinishReason.CONTENT_FILTER),
    ("FINISH_REASON_UNSPECIFIED", FinishReason.STOP),  # "unused": as if absent, the text a stop
    ("A_REASON_ADDED_LATER", FinishReason.CONTENT_FILTER),  # not vouched for as complete
]


@pytest.mark.parametrize(("reason", "expected"), DOCUMENTED_FINISHES)
def test_finish_reasons(reason: str, expected: FinishReason) -> None:
    """OTHER and LANGUAGE were a STOP: an answer Gemini stopped for a reason it does not give, or
    for the language, was served and cached as complete (an empty one as an empty success)."""
    data = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert gemini.parse_response(data).finish_reason is expected
    event = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert gemini.parse_event(json.dumps(event)).finish_reason is (
        None if reason == gemini.UNSPECIFIED else expected
    )


@pytest.mark.parametrize("reason", ["OTHER", "LANGUAGE", "SAFETY", "SPII", "A_REASON_ADDED_LATER"])
def test_a_stopped_answer_without_content_is_not_an_empty_success(reason: str) -> None:
    data = {"candidates": [{"content": {"role": "model"}, "finishReason": reason}]}
    chunk = gemini.parse_response(data)
    assert (chunk.text, chunk.finish_reason) == ("", FinishReason.CONTENT_FILTER)


@pytest.mark.parametrize("reason", sorted(gemini.UNUSABLE_CALLS))
def test_a_function_call_the_model_got_wrong_is_a_bad_answer(reason: str) -> None:
    data = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    with pytest.raises(ProviderMalformedError):
        gemini.parse_response(data)


def test_an_unspecified_finish_without_content_is_a_bad_answer() -> None:
    with pytest.raises(ProviderMalformedError):
        gemini.parse_response({"candidates": [{"finishReason": "FINISH_REASON_UNSPECIFIED"}]})


BLOCK_REASONS = [
    "SAFETY",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "IMAGE_SAFETY",
    "BLOCK_REASON_UNSPECIFIED",
]


@pytest.mark.parametrize("block", BLOCK_REASONS)
def test_every_prompt_block_reason_is_a_content_filter_finish(block: str) -> None:
    data = {"promptFeedback": {"blockReason": block}, "usageMetadata": {"promptTokenCount": 7}}
    chunk = gemini.parse_response(data)
    assert (chunk.text, chunk.finish_reason) == ("", FinishReason.CONTENT_FILTER)
    assert gemini.parse_event(json.dumps(data)).finish_reason is FinishReason.CONTENT_FILTER


def test_a_blocked_prompt_has_no_answer_whatever_else_the_response_holds() -> None:
    """A block reason beside a candidate's text (a hostile answer): the text was served as a STOP."""
    candidate = {"content": {"parts": [{"text": "the answer anyway"}]}, "finishReason": "STOP"}
    data = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "candidates": [candidate]}
    chunk = gemini.parse_response(data)
    assert (chunk.text, chunk.finish_reason) == ("", FinishReason.CONTENT_FILTER)
    event = gemini.parse_event(json.dumps(data))
    assert (event.text, event.finish_reason) == ("", FinishReason.CONTENT_FILTER)


def test_an_unknown_finish_is_logged_once_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    data = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "NEW_IN_GEMINI_9"}]}
    with caplog.at_level(logging.DEBUG, logger="sidecar.providers"):
        for _ in range(3):
            gemini.parse_response(data)
    noted = [r for r in caplog.records if "NEW_IN_GEMINI_9" in r.getMessage()]
    assert len(noted) == 1 and noted[0].levelno == logging.DEBUG


def test_thought_parts_are_not_answer_text() -> None:
    parts = [{"text": "thinking...", "thought": True}, {"text": "answer"}]
    data = {"candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}]}
    assert gemini.parse_response(data).text == "answer"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("RESOURCE_EXHAUSTED", ProviderRateLimitedError),
        ("PERMISSION_DENIED", ProviderAuthError),
        ("UNAUTHENTICATED", ProviderAuthError),
        ("INVALID_ARGUMENT", ProviderRejectedError),
        ("UNAVAILABLE", ProviderUnavailableError),
    ],
)
def test_error_bodies_are_classified(status: str, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        gemini.parse_event(json.dumps({"error": {"code": 1, "message": "m", "status": status}}))


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"candidates": "x"},
        {"candidates": [{"content": {"parts": "x"}}]},
        {"candidates": [{"content": {"parts": [{"text": "x"}]}}], "usageMetadata": {"promptTokenCount": -1}},
        {  # the cached tokens are part of the prompt's
            "candidates": [{"content": {"parts": [{"text": "x"}]}}],
            "usageMetadata": {"promptTokenCount": 3, "cachedContentTokenCount": 4},
        },
    ],
)
def test_malformed_answers(body: object) -> None:
    with pytest.raises(ProviderMalformedError):
        gemini.parse_response(body)


def test_api_key_goes_in_its_own_header() -> None:
    assert gemini.auth_headers("AIza-k") == {"x-goog-api-key": "AIza-k"}


def test_a_prompt_that_starts_with_the_model_gets_a_user_turn_first_and_roles_alternate() -> None:
    """Gemini reads `contents` by position as user, model, user, ... and refuses a history that
    starts with a model turn or does not alternate ("Please ensure that multiturn requests
    alternate between user and model", "function call turn comes immediately after a user turn"),
    as Bedrock's Converse does. Trimming keeps the newest messages and a summary every uncovered
    one, so a remembered conversation's prompt starts with the previous answer on most turns; a
    tool result (sent as user text) followed by the next question is two user turns in a row."""
    msgs = (
        Message(Role.SYSTEM, "Be brief."),
        Message(Role.SYSTEM, "Summary of 4 earlier messages: ..."),
        Message(Role.ASSISTANT, "Paris."),
        Message(Role.ASSISTANT, "It is the capital."),
        Message(Role.TOOL, "21 degrees", tool_call_id="call_1"),
        Message(Role.USER, "And its population?"),
    )
    body = gemini.to_wire(ProviderRequest(msgs, GenerationParams(), stream=False), DEPLOYMENT)
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": gemini_wire.CONTINUED}]},
        {"role": "model", "parts": [{"text": "Paris."}, {"text": "It is the capital."}]},
        {"role": "user", "parts": [{"text": "21 degrees"}, {"text": "And its population?"}]},
    ]
