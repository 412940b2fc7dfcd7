"""Gemini's tools, their calls and results, signatures, structured output and images, both ways."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.core.errors import ModelOutputError, ProviderMalformedError, ProviderRejectedError
from sidecar.core.types import (
    Chunk,
    FinishReason,
    GenerationParams,
    Image,
    Message,
    Reasoning,
    ResponseFormat,
    Role,
    ThinkingBlock,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)
from sidecar.providers import gemini, gemini_wire
from sidecar.providers.base import Capabilities, ProviderRequest, wire_body
from sidecar.providers.sse import SseDecoder, SseEvent
from sidecar.providers.stream import StreamAssembler
from tests.support.gemini import request_problems
from tests.support.upstream import fixture

DEPLOYMENT = DeploymentConfig(provider="gemini", model="gemini-2.5-flash")
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "const": "C"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER = ToolSpec("get_weather", "Current weather in a city", json.dumps(SCHEMA))
SIGNATURE = "CiQBcsjafGx3b1dXk4rYqOVRaI1Qf0M0pWd1u2l7S6yq0h1kQ0IKfAFyyNp8"
QUESTION = Message(Role.USER, "Weather in Paris and Tokyo?")


def body_of(*messages: Message, **params: Any) -> dict[str, Any]:
    return gemini.to_wire(ProviderRequest(messages, GenerationParams(**params), stream=False), DEPLOYMENT)


def test_an_assistant_message_with_nothing_to_say_is_not_sent() -> None:
    """A message of only its signature (an answer whose text was empty, sent back as it came): Gemini
    refuses an empty text part ("required oneof field 'data' must have one initialized field");
    the user turns around it become one."""
    empty = Message(Role.ASSISTANT, "", thinking=(gemini_wire.signed_block(SIGNATURE),))
    body = body_of(QUESTION, empty, Message(Role.USER, "Still there?"))
    assert request_problems(body, {SIGNATURE}) == []
    both = [{"text": QUESTION.text}, {"text": "Still there?"}]
    assert body["contents"] == [{"role": "user", "parts": both}]
    alone = body_of(Message(Role.SYSTEM, "Be brief."), empty)
    assert request_problems(alone, {SIGNATURE}) == []
    assert alone["contents"] == [{"role": "user", "parts": [{"text": gemini_wire.CONTINUED}]}]


def call(data: dict[str, Any]) -> dict[str, Any]:
    """A one-candidate answer of these parts."""
    return {"candidates": [{"content": {"parts": data["parts"], "role": "model"}, **data.get("extra", {})}]}


# --- request: tools and tool choice ---------------------------------------------------------------


def test_tools_are_function_declarations_with_the_json_schema_as_given() -> None:
    bare = ToolSpec("now")
    body = body_of(QUESTION, tools=(WEATHER, bare))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "parametersJsonSchema": SCHEMA,
                },
                {"name": "now"},
            ]
        }
    ]
    assert "toolConfig" not in body  # the model's own choice: Gemini's default AUTO


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("named", "get_weather"), {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ],
)
def test_tool_choice_is_the_function_calling_config(choice: ToolChoice, config: dict[str, Any]) -> None:
    body = body_of(QUESTION, tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=False)
    assert body["toolConfig"] == {"functionCallingConfig": config}


# --- answers: function calls ----------------------------------------------------------------------


def test_function_calls_are_tool_calls_with_a_tool_calls_finish() -> None:
    chunk = gemini.parse_response(json.loads(fixture("gemini/function_call.json")))
    assert chunk.text == "Let me look that up."
    assert chunk.finish_reason is FinishReason.TOOL_CALLS
    paris, tokyo = chunk.tool_calls
    assert (paris.index, paris.name, json.loads(paris.arguments)) == (0, "get_weather", {"city": "Paris"})
    assert (tokyo.index, json.loads(tokyo.arguments)) == (1, {"city": "Tokyo", "days": 2})
    # Gemini gave no ids: the sidecar's own, distinct, never sent back to Gemini, the same for the
    # same answer (parsing is pure), another for another answer
    assert paris.id.startswith(gemini_wire.SYNTHETIC_ID_PREFIX) and paris.id != tokyo.id
    again = json.loads(fixture("gemini/function_call.json"))
    assert gemini.parse_response(again).tool_calls == chunk.tool_calls
    again["responseId"] = "another"
    assert {c.id for c in gemini.parse_response(again).tool_calls}.isdisjoint({paris.id, tokyo.id})
    assert chunk.thinking_blocks == (gemini_wire.signed_block(SIGNATURE, paris.id),)
    assert chunk.usage == Usage(prompt_tokens=71, completion_tokens=115, reasoning_tokens=77)
    # what the quota meter and an interrupted stream's estimate count as output
    assert "get_weather" in chunk.output and '"Tokyo"' in chunk.output


def test_a_call_id_gemini_gave_is_kept() -> None:
    answer = call(
        {"parts": [{"functionCall": {"id": "fc-7", "name": "now"}}], "extra": {"finishReason": "STOP"}}
    )
    [c] = gemini.parse_response(answer).tool_calls
    assert (c.id, c.name, c.arguments) == ("fc-7", "now", "{}")


def assistant_of(chunk: Chunk) -> Message:
    """The assistant message the caller (or memory) sends back for an answer."""
    calls = tuple(ToolCall(d.id, d.name, d.arguments) for d in chunk.tool_calls)
    return Message(Role.ASSISTANT, chunk.text, tool_calls=calls, thinking=chunk.thinking_blocks)


def test_the_next_turn_sends_the_calls_their_signature_and_the_results_back() -> None:
    chunk = gemini.parse_response(json.loads(fixture("gemini/function_call.json")))
    answer = assistant_of(chunk)
    paris, tokyo = answer.tool_calls
    results = (
        Message(Role.TOOL, '{"sky": "sunny", "temperature_c": 21}', tool_call_id=paris.id),
        Message(Role.TOOL, "rain, 14 C", tool_call_id=tokyo.id),
    )
    body = body_of(QUESTION, answer, *results, Message(Role.USER, "Thanks. Umbrella?"), tools=(WEATHER,))
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Tokyo?"}]},
        {
            "role": "model",
            "parts": [
                {"text": "Let me look that up."},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": SIGNATURE,
                },
                {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo", "days": 2}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"sky": "sunny", "temperature_c": 21},
                    }
                },
                {"functionResponse": {"name": "get_weather", "response": {"output": "rain, 14 C"}}},
                {"text": "Thanks. Umbrella?"},
            ],
        },
    ]


def test_ids_gemini_issued_go_back_on_the_call_and_its_result() -> None:
    answer = Message(
        Role.ASSISTANT,
        "",
        tool_calls=(ToolCall("fc-7", "get_weather", '{"city": "Paris"}'),),
        thinking=(gemini_wire.signed_block(SIGNATURE, "fc-7"), gemini_wire.signed_block("c2lnMg==")),
    )
    result = Message(Role.TOOL, "[1, 2]", tool_call_id="fc-7")
    model, response = body_of(QUESTION, answer, result)["contents"][1:]
    # a signature on text with no text to carry it is left out (Gemini asks only the call's back)
    assert model["parts"] == [
        {
            "functionCall": {"id": "fc-7", "name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": SIGNATURE,
        }
    ]
    assert response["parts"] == [
        {"functionResponse": {"id": "fc-7", "name": "get_weather", "response": {"output": "[1, 2]"}}}
    ]


def test_a_signed_text_part_gets_its_signature_back() -> None:
    answer = call({"parts": [{"text": "Hi.", "thoughtSignature": "c2ln"}], "extra": {"finishReason": "STOP"}})
    chunk = gemini.parse_response(answer)
    assert chunk.finish_reason is FinishReason.STOP
    model = body_of(QUESTION, assistant_of(chunk), Message(Role.USER, "Go on"))["contents"][1]
    assert model == {"role": "model", "parts": [{"text": "Hi.", "thoughtSignature": "c2ln"}]}


def test_other_providers_thinking_blocks_are_not_sent_to_gemini() -> None:
    anthropic = (ThinkingBlock(text="hm", signature="EqQB"), ThinkingBlock(redacted="EmwKAhgB"))
    broken = (ThinkingBlock(redacted='{"gemini": nope'), ThinkingBlock(redacted='{"gemini":"call","id":5}'))
    answer = Message(
        Role.ASSISTANT, "Hi.", tool_calls=(ToolCall("c1", "now", ""),), thinking=anthropic + broken
    )
    model = body_of(QUESTION, answer)["contents"][1]
    unsigned = {
        "functionCall": {"id": "c1", "name": "now", "args": {}},
        "thoughtSignature": gemini_wire.UNSIGNED,
    }
    assert model["parts"] == [{"text": "Hi."}, unsigned]


def test_calls_gemini_did_not_sign_carry_its_stand_in_on_the_first() -> None:
    """A turn another provider served (a route fell back), or calls the application wrote: Gemini 3
    refuses a function-call turn whose first call has no signature, and skips checking this one."""
    calls = (ToolCall("call_A1", "get_weather", '{"city": "Paris"}'), ToolCall("call_B2", "now", "{}"))
    model = body_of(QUESTION, Message(Role.ASSISTANT, "", tool_calls=calls))["contents"][1]
    assert model["parts"] == [
        {
            "functionCall": {"id": "call_A1", "name": "get_weather", "args": {"city": "Paris"}},
            "thoughtSignature": "skip_thought_signature_validator",
        },
        {"functionCall": {"id": "call_B2", "name": "now", "args": {}}},
    ]


@pytest.mark.parametrize(
    ("arguments", "args"),
    [
        ('{"city": "Paris"', {"unparsed_arguments": '{"city": "Paris"'}),  # cut by max_tokens
        ("[1, 2]", {"unparsed_arguments": "[1, 2]"}),
        ("NaN", {"unparsed_arguments": "NaN"}),
        ("", {}),
    ],
)
def test_arguments_that_are_no_json_object_go_back_as_an_object_holding_them(
    arguments: str, args: dict[str, Any]
) -> None:
    answer = Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "get_weather", arguments),))
    [part] = body_of(QUESTION, answer)["contents"][1]["parts"]
    assert part["functionCall"] == {"id": "c1", "name": "get_weather", "args": args}


def test_arguments_nested_too_deeply_are_refused_before_anything_is_sent() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    answer = Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "f", '{"a": ' + deep + "}"),))
    req = ProviderRequest((QUESTION, answer), GenerationParams(), stream=False)
    with pytest.raises(ProviderRejectedError, match="nothing was sent"):
        wire_body(gemini.to_wire, req, DEPLOYMENT)


# --- streams --------------------------------------------------------------------------------------


def replay(name: str) -> tuple[list[Chunk], Chunk]:
    parse, assembler, chunks = gemini.StreamParser(), StreamAssembler(), []
    for event in SseDecoder().feed(fixture(name)):
        if (chunk := assembler.feed(parse(event))) is not None:
            chunks.append(chunk)
    return chunks, assembler.final()


def test_a_stream_numbers_whole_calls_across_events_and_finishes_with_tool_calls() -> None:
    chunks, final = replay("gemini/function_call_stream.sse")
    calls = [d for c in chunks for d in c.tool_calls]
    assert [(d.index, d.name, json.loads(d.arguments)) for d in calls] == [
        (0, "get_weather", {"city": "Paris"}),
        (1, "get_weather", {"city": "Tokyo", "days": 2}),
    ]
    assert all(d.id.startswith(gemini_wire.SYNTHETIC_ID_PREFIX) for d in calls)
    blocks = [b for c in chunks for b in c.thinking_blocks]
    assert blocks == [gemini_wire.signed_block(SIGNATURE, calls[0].id)]
    assert final.finish_reason is FinishReason.TOOL_CALLS
    assert final.usage == Usage(prompt_tokens=71, completion_tokens=115, reasoning_tokens=77)


def test_each_stream_numbers_its_own_calls() -> None:
    assert replay("gemini/function_call_stream.sse")[0][1].tool_calls[0].index == 0
    assert replay("gemini/function_call_stream.sse")[0][1].tool_calls[0].index == 0


def test_a_stream_without_calls_still_finishes_with_stop() -> None:
    parse = gemini.StreamParser()
    event = call({"parts": [{"text": "Hi"}], "extra": {"finishReason": "STOP"}})
    assert parse(SseEvent("message", json.dumps(event))).finish_reason is FinishReason.STOP


# --- hostile answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "problem"),
    [
        ({"functionCall": {"args": {"city": "Paris"}}}, "without its name"),
        ({"functionCall": {"name": "", "args": {}}}, "without its name"),
        ({"functionCall": {"name": 7}}, "without its name"),
        ({"functionCall": {"name": "f", "args": "city=Paris"}}, "args is not an object"),
        ({"functionCall": {"name": "f", "args": [1]}}, "args is not an object"),
        ({"functionCall": {"name": "f", "id": 3}}, "id is not a string"),
        ({"functionCall": {"name": "f", "id": "x" * 129}}, "id is not a string of at most 128"),
        ({"functionCall": "get_weather"}, "not an object"),
        ({"functionCall": {"name": "f"}, "thoughtSignature": 1}, "thoughtSignature"),
        ({"functionCall": {"name": "f", "args": {"a": "x" * 300_000}}}, "args longer than"),
        ({"functionCall": {"name": "f" * 65}}, "name longer than 64"),
    ],
)
def test_a_hostile_function_call_is_a_bad_answer(part: dict[str, Any], problem: str) -> None:
    answer = call({"parts": [part], "extra": {"finishReason": "STOP"}})
    with pytest.raises(ProviderMalformedError, match=problem):
        gemini.parse_response(answer)
    with pytest.raises(ProviderMalformedError, match=problem):
        gemini.StreamParser()(SseEvent("message", json.dumps(answer)))


def test_args_too_deep_to_write_back_are_a_bad_answer() -> None:
    deep: dict[str, Any] = {}
    for _ in range(5000):
        deep = {"a": deep}
    answer = call({"parts": [{"functionCall": {"name": "f", "args": deep}}]})
    with pytest.raises(ModelOutputError, match="nested too deeply"):  # the model's, not the wire's
        gemini.parse_response(answer)


def test_more_parts_than_a_message_can_carry_back_are_a_bad_answer() -> None:
    """The edge takes at most 64 content parts a message (signature blocks, text, calls): an answer
    of thousands of tiny calls could not go back (and memory would keep it whole)."""
    part = {"functionCall": {"name": "f"}}
    assert len(gemini.parse_response(call({"parts": [part] * 64})).tool_calls) == 64
    for parts in (
        [part] * 65,
        [{"text": "Hi"}, part] + [part] * 63,
        [{**part, "thoughtSignature": "c2ln"}] + [part] * 63,
    ):
        with pytest.raises(ProviderMalformedError, match="more than 64 parts"):
            gemini.parse_response(call({"parts": parts}))
    parse, event = gemini.StreamParser(), SseEvent("message", json.dumps(call({"parts": [part] * 32})))
    parse(event), parse(event)  # 64 across a stream's events
    with pytest.raises(ProviderMalformedError, match="more than 64 parts"):
        parse(SseEvent("message", json.dumps(call({"parts": [{"text": "Hi"}]}))))


def test_two_calls_with_one_id_are_a_bad_answer() -> None:
    """The application's results name the call they answer, and Anthropic and Converse refuse a
    history whose calls share an id: an answer repeating one could not go back."""
    part = {"functionCall": {"name": "f", "args": {}, "id": "c1"}}
    with pytest.raises(ProviderMalformedError, match="same id"):
        gemini.parse_response(call({"parts": [part, part]}))
    parse, event = gemini.StreamParser(), SseEvent("message", json.dumps(call({"parts": [part]})))
    assert parse(event).tool_calls[0].id == "c1"
    with pytest.raises(ProviderMalformedError, match="same id"):
        parse(event)  # in a later event of the same stream


@pytest.mark.parametrize("reason", ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"])
def test_a_function_call_gemini_itself_calls_unusable_is_a_bad_answer(reason: str) -> None:
    """The model's output, not a broken wire: the call fails, the deployment's health does not."""
    with pytest.raises(ModelOutputError, match=reason):
        gemini.parse_response(call({"parts": [], "extra": {"finishReason": reason}}))


# --- structured output and images -----------------------------------------------------------------


def test_a_json_schema_is_the_response_json_schema() -> None:
    fmt = ResponseFormat("json_schema", "weather", json.dumps(SCHEMA), strict=True)
    config = body_of(QUESTION, response_format=fmt, max_tokens=20)["generationConfig"]
    assert config == {
        "maxOutputTokens": 20,
        "responseMimeType": "application/json",
        "responseJsonSchema": SCHEMA,
    }


def test_json_object_asks_for_json_without_a_schema_and_text_for_nothing() -> None:
    assert body_of(QUESTION, response_format=ResponseFormat("json_object"))["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    assert "generationConfig" not in body_of(QUESTION, response_format=ResponseFormat("text"))


def test_images_are_inline_data_or_file_data_before_the_text() -> None:
    images = (
        Image(data=b"\x89PNG\r\n", mime_type="image/png"),
        Image(url="data:image/jpeg;base64,/9j/4AAQ"),
        Image(url="data:image/svg+xml,%3Csvg%2F%3E"),
        Image(url="https://example.com/a/cat.JPG?size=large"),
        Image(url="https://example.com/render?id=7"),
    )
    [content] = body_of(Message(Role.USER, "What is this?", images=images))["contents"]
    assert content["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
        {"inlineData": {"mimeType": "image/svg+xml", "data": "PHN2Zy8+"}},
        {"fileData": {"fileUri": "https://example.com/a/cat.JPG?size=large", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "https://example.com/render?id=7"}},
        {"text": "What is this?"},
    ]


def test_gemini_declares_tools_structured_output_and_images() -> None:
    caps = Capabilities.of(DEPLOYMENT, gemini.GeminiProvider.supports)
    assert (caps.tools, caps.json_schema, caps.images, caps.reasoning) == (True, True, True, False)


def test_a_gemini_signature_is_not_sent_to_anthropic() -> None:
    """A route falling back from Gemini to Anthropic after a tool turn: Anthropic would refuse the
    Gemini block as a redacted thinking block it did not sign (PROVIDER_REJECTED, no fallback)."""
    from sidecar.providers import anthropic

    own = ThinkingBlock(text="hm", signature="EqQB")
    answer = Message(
        Role.ASSISTANT,
        "",
        tool_calls=(ToolCall("c1", "now", "{}"),),
        thinking=(gemini_wire.signed_block(SIGNATURE, "c1"), own),
    )
    messages = (QUESTION, answer, Message(Role.TOOL, "12:00", tool_call_id="c1"))
    body = anthropic.to_wire(ProviderRequest(messages, GenerationParams(), stream=False), DEPLOYMENT)
    assert [b["type"] for b in body["messages"][1]["content"]] == ["thinking", "tool_use"]


# --- reasoning (a deployment whose `capabilities` say `reasoning: true`) ---------------------------


@pytest.mark.parametrize(
    ("reasoning", "thinking"),
    [
        (Reasoning(effort="low"), {"thinkingBudget": 2048}),
        (Reasoning(effort="high", include_thinking=True), {"thinkingBudget": 24576, "includeThoughts": True}),
        (Reasoning(budget_tokens=5000), {"thinkingBudget": 5000}),
    ],
)
def test_reasoning_is_the_thinking_config(reasoning: Reasoning, thinking: dict[str, Any]) -> None:
    assert body_of(QUESTION, reasoning=reasoning)["generationConfig"] == {"thinkingConfig": thinking}


def test_asking_only_to_see_thinking_sets_no_thinking_config() -> None:
    """As for Anthropic: thinking is asked for with an effort or a budget (a model that does not
    think would refuse a thinkingConfig); include_thinking alone only streams what there is."""
    assert "generationConfig" not in body_of(QUESTION, reasoning=Reasoning(include_thinking=True))


def test_thought_parts_are_thinking_unary_and_streamed() -> None:
    parts = [{"text": "Paris is in France.", "thought": True}, {"text": "Sunny."}]
    chunk = gemini.parse_response(call({"parts": parts, "extra": {"finishReason": "STOP"}}))
    assert (chunk.thinking, chunk.text) == ("Paris is in France.", "Sunny.")
    event = gemini.StreamParser()(SseEvent("message", json.dumps(call({"parts": parts[:1]}))))
    assert (event.thinking, event.text) == ("Paris is in France.", "")


@pytest.mark.parametrize(
    ("model", "both"),
    [
        ("gemini-2.5-flash", False),
        ("gemini-2.0-flash-001", False),
        ("models/gemini-1.5-pro", False),
        ("gemini-3-flash-preview", True),
        ("gemini-3.1-pro-preview", True),
    ],
)
def test_only_gemini_3_takes_tools_with_a_json_answer(model: str, both: bool) -> None:
    caps = gemini_wire.capabilities(DeploymentConfig(provider="gemini", model=model))
    assert caps.json_with_tools is both and caps.json_schema and caps.tools
    assert caps.lacks(frozenset({"tools", "json_schema", "json_with_tools"})) == (
        [] if both else ["json_with_tools"]
    )
    assert "image/gif" not in caps.image_formats and "image/png" in caps.image_formats
