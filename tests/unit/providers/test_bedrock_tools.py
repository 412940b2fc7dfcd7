"""Bedrock Converse: tools, tool results and images on the request; toolUse blocks in answers and
streams, and what a hostile upstream's tool calls are."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest

from sidecar.config.schema import DeploymentConfig
from sidecar.core.errors import ProviderMalformedError, ProviderRejectedError
from sidecar.core.types import (
    FinishReason,
    GenerationParams,
    Image,
    Message,
    Reasoning,
    ResponseFormat,
    Role,
    ThinkingBlock,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolSpec,
)
from sidecar.providers import bedrock, bedrock_wire, registry
from sidecar.providers.base import ProviderRequest
from sidecar.providers.fit import needs
from sidecar.providers.stream import StreamAssembler
from tests.support.bedrock import check_converse
from tests.support.eventstream import event, tool_use_stream

DEPLOYMENT = DeploymentConfig(provider="bedrock", model="anthropic.claude-3-5-haiku-20241022-v1:0")
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = ToolSpec("get_weather", "Current weather in a city", json.dumps(SCHEMA))
CLOCK = ToolSpec("now")  # no description, no parameters
PNG = b"\x89PNG\r\n\x1a\n" + bytes(40)


def wire(*messages: Message, **params: Any) -> dict[str, Any]:
    return bedrock.to_wire(ProviderRequest(messages, GenerationParams(**params), stream=False), DEPLOYMENT)


def loop(
    arguments: str = '{"city": "Paris"}', call_id: str = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
) -> tuple[Message, ...]:
    return (
        Message(Role.USER, "Weather in Paris?"),
        Message(Role.ASSISTANT, "Let me look.", tool_calls=(ToolCall(call_id, "get_weather", arguments),)),
        Message(Role.TOOL, '{"sky": "sunny"}', tool_call_id=call_id),
    )


def test_tools_go_in_tool_config_as_aws_documents_it() -> None:
    body = wire(Message(Role.USER, "Hi"), tools=(WEATHER, CLOCK))
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "inputSchema": {"json": SCHEMA},
                }
            },
            {"toolSpec": {"name": "now", "inputSchema": {"json": {"type": "object", "properties": {}}}}},
        ]
    }  # no toolChoice: Converse's default is auto


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice("auto"), {"auto": {}}),
        (ToolChoice("required"), {"any": {}}),
        (ToolChoice("named", "get_weather"), {"tool": {"name": "get_weather"}}),
    ],
)
def test_tool_choice(choice: ToolChoice, expected: dict[str, Any]) -> None:
    body = wire(Message(Role.USER, "Hi"), tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=False)
    assert body["toolConfig"]["toolChoice"] == expected


def test_a_tool_loop_goes_back_as_tool_use_and_tool_result_blocks() -> None:
    body = wire(*loop(), Message(Role.USER, "And tomorrow?"), tools=(WEATHER,))
    call_id = "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q"
    assert body["messages"] == [
        {"role": "user", "content": [{"text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"text": "Let me look."},
                {"toolUse": {"toolUseId": call_id, "name": "get_weather", "input": {"city": "Paris"}}},
            ],
        },
        {
            "role": "user",  # the result and the next question: one user turn, the result first
            "content": [
                {"toolResult": {"toolUseId": call_id, "content": [{"text": '{"sky": "sunny"}'}]}},
                {"text": "And tomorrow?"},
            ],
        },
    ]


def test_results_come_first_in_their_user_turn() -> None:
    a, b = ToolCall("call_a", "get_weather", "{}"), ToolCall("call_b", "get_weather", "{}")
    msgs = (
        Message(Role.USER, "Two cities?"),
        Message(Role.ASSISTANT, "\n\n", tool_calls=(a, b)),  # Claude's blank text before its calls
        Message(Role.TOOL, "ra", tool_call_id="call_a"),
        Message(Role.USER, "(no rush)"),
        Message(Role.TOOL, "rb", tool_call_id="call_b"),
    )
    body = wire(*msgs, tools=(WEATHER,))
    assert body["messages"][1]["content"][0] == {  # no blank text block before the calls
        "toolUse": {"toolUseId": "call_a", "name": "get_weather", "input": {}}
    }
    kinds = [next(iter(block)) for block in body["messages"][2]["content"]]
    assert kinds == ["toolResult", "toolResult", "text"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"city": "Par', {"unparsed_arguments": '{"city": "Par'}),  # cut by max_tokens
        ('["Paris"]', {"unparsed_arguments": '["Paris"]'}),  # JSON, not an object
        ("", {}),
    ],
)
def test_arguments_that_are_not_an_object_go_back_as_an_object(arguments: str, expected: Any) -> None:
    body = wire(*loop(arguments), tools=(WEATHER,))
    assert body["messages"][1]["content"][1]["toolUse"]["input"] == expected


def test_an_id_converse_would_refuse_is_replaced_the_same_for_call_and_result() -> None:
    body = wire(*loop(call_id="call:1/ü"), tools=(WEATHER,))
    use = body["messages"][1]["content"][1]["toolUse"]["toolUseId"]
    result = body["messages"][2]["content"][0]["toolResult"]["toolUseId"]
    assert use == result and use.startswith("id_") and len(use) <= 64 and use.replace("_", "").isalnum()


@pytest.mark.parametrize("params", [{"tools": (WEATHER,), "tool_choice": ToolChoice("none")}, {}])
def test_without_tools_to_call_the_history_goes_as_text(params: dict[str, Any]) -> None:
    """Tool choice none (Converse has none) or no tools offered: no toolConfig, so the model cannot
    call one, and the history's toolUse/toolResult blocks, which Converse refuses without a
    toolConfig, go as text."""
    body = wire(*loop(), **params)
    assert "toolConfig" not in body
    assert body["messages"][1]["content"] == [
        {"text": "Let me look."},
        {"text": '[tool call tooluse_kZJMlvQmRJ6eAyJE5GIl7Q: get_weather({"city": "Paris"})]'},
    ]
    assert body["messages"][2]["content"] == [
        {"text": '[result of tool call tooluse_kZJMlvQmRJ6eAyJE5GIl7Q]: {"sky": "sunny"}'}
    ]


def test_thinking_blocks_of_an_earlier_turn_are_not_sent() -> None:
    signed = ThinkingBlock(text="hmm", signature="sig")
    msgs = (Message(Role.USER, "Hi"), Message(Role.ASSISTANT, "Hello", thinking=(signed,)))
    assert wire(*msgs)["messages"][1]["content"] == [{"text": "Hello"}]


@pytest.mark.parametrize("thinking", [False, True])
@pytest.mark.parametrize("text", ["", " \n"])
def test_an_assistant_message_with_nothing_to_say_is_not_sent(text: str, thinking: bool) -> None:
    """A message of only signed thinking (an answer whose text was empty, sent back as it came) or
    of blank text: Converse refuses a blank text block ("The text field in the ContentBlock object
    at messages.1.content.0 is blank"); the user turns around it become one."""
    signed = ThinkingBlock(text="hmm", signature="sig")
    empty = Message(Role.ASSISTANT, text, thinking=(signed,))
    params: dict[str, Any] = {"reasoning": Reasoning(budget_tokens=1024)} if thinking else {}
    body = wire(Message(Role.USER, "Hi"), empty, Message(Role.USER, "Still there?"), **params)
    check_converse(body)
    assert body["messages"] == [{"role": "user", "content": [{"text": "Hi"}, {"text": "Still there?"}]}]
    alone = wire(Message(Role.SYSTEM, "Be brief."), empty, **params)
    check_converse(alone)
    assert alone["messages"] == [{"role": "user", "content": [{"text": bedrock.CONTINUED}]}]


def test_images_go_as_bytes_before_the_text() -> None:
    data_url = "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8jpeg").decode()
    images = (Image(data=PNG, mime_type="image/png"), Image(url=data_url))
    body = wire(Message(Role.USER, "What is this?", images=images))
    assert body["messages"][0]["content"] == [
        {"image": {"format": "png", "source": {"bytes": base64.b64encode(PNG).decode()}}},
        {"image": {"format": "jpeg", "source": {"bytes": base64.b64encode(b"\xff\xd8jpeg").decode()}}},
        {"text": "What is this?"},
    ]


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (Image(url="data:image/svg+xml;base64,PHN2Zz4="), "format 'image/svg+xml'"),
        (Image(url="data:image/png,rawbytes"), "must be base64"),
        (Image(url="data:image/png;base64,not base64!"), "not valid base64"),
        (Image(url="https://example.com/cat.png"), "never an https:// URL"),
        (Image(data=bytes(bedrock_wire.MAX_IMAGE_BYTES + 1), mime_type="image/png"), "at most 3932160"),
    ],
)
def test_an_image_converse_refuses_is_refused_naming_it(image: Image, why: str) -> None:
    first = Message(Role.USER, "a", images=(Image(data=PNG, mime_type="image/png"),))
    with pytest.raises(ProviderRejectedError, match="nothing was sent") as info:
        wire(first, Message(Role.ASSISTANT, "b"), Message(Role.USER, "c", images=(image,)))
    [violation] = info.value.violations
    assert violation.field == "messages"
    assert violation.description.startswith("image 2 of the prompt: ") and why in violation.description


def test_capabilities_routing_sees() -> None:
    caps = registry.capabilities(DEPLOYMENT)
    assert (caps.tools, caps.images, caps.json_schema, caps.reasoning, caps.image_urls) == (
        True, True, False, False, False,
    )  # fmt: skip
    assert bedrock.BedrockProvider(DEPLOYMENT, http=None, api_key=None).capabilities == caps  # type: ignore[arg-type]
    url_image = (Message(Role.USER, "x", images=(Image(url="https://example.com/a.png"),)),)
    assert caps.lacks(needs(GenerationParams(), url_image)) == ["image_urls"]
    data_image = (Message(Role.USER, "x", images=(Image(data=PNG, mime_type="image/png"),)),)
    assert caps.lacks(needs(GenerationParams(tools=(WEATHER,)), data_image)) == []
    off = DeploymentConfig(provider="bedrock", model="m", capabilities={"tools": False})
    assert registry.capabilities(off).lacks(frozenset({"tools"})) == ["tools"]


# --- answers ------------------------------------------------------------------------------------


def answer(*blocks: dict[str, Any], stop: str = "tool_use") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": list(blocks)}},
        "stopReason": stop,
        "usage": {"inputTokens": 410, "outputTokens": 58, "totalTokens": 468},
    }


USE = {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}}


def test_tool_use_blocks_of_an_answer_are_tool_calls() -> None:
    second = {"toolUse": {"toolUseId": "tooluse_2", "name": "now", "input": {}}}
    thought = {"reasoningContent": {"reasoningText": {"text": "hmm", "signature": "s"}}}
    chunk = bedrock.parse_response(answer(thought, {"text": "Looking."}, USE, second))
    assert chunk.text == "Looking." and chunk.finish_reason is FinishReason.TOOL_CALLS
    assert chunk.tool_calls == (
        ToolCallDelta(0, "tooluse_1", "get_weather", '{"city": "Paris"}'),
        ToolCallDelta(1, "tooluse_2", "now", "{}"),
    )


def test_more_calls_than_an_application_can_send_back_is_a_bad_answer() -> None:
    uses = [{"toolUse": {"toolUseId": f"t{i}", "name": "now", "input": {}}} for i in range(65)]
    assert len(bedrock.parse_response(answer(*uses[:64])).tool_calls) == 64
    with pytest.raises(ProviderMalformedError, match="more than 64"):
        bedrock.parse_response(answer(*uses))
    replay(tool_use_stream("", [(f"t{i}", "now", []) for i in range(64)]))
    with pytest.raises(ProviderMalformedError, match="more than 64"):
        replay(tool_use_stream("", [(f"t{i}", "now", []) for i in range(65)]))


@pytest.mark.parametrize(
    ("use", "match"),
    [
        ({"name": "get_weather", "input": {}}, "toolUseId"),
        ({"toolUseId": "", "name": "get_weather", "input": {}}, "toolUseId"),
        ({"toolUseId": "t", "name": "get weather!", "input": {}}, "tool name"),
        ({"toolUseId": "t", "name": "get_weather", "input": '{"city": "Paris"}'}, "not a JSON object"),
        ({"toolUseId": "t", "name": "get_weather"}, "not a JSON object"),
        ({"toolUseId": "t", "name": "get_weather", "input": {"x": "y" * 300_000}}, "longer than"),
        ("tooluse", "not an object"),
    ],
)
def test_a_hostile_tool_use_is_a_bad_answer(use: Any, match: str) -> None:
    with pytest.raises(ProviderMalformedError, match=match):
        bedrock.parse_response(answer({"toolUse": use}))


def test_two_calls_with_one_id_are_a_bad_answer() -> None:
    """The application's results name the call they answer, and Converse refuses a history whose
    calls share a toolUseId: an answer repeating one could not go back."""
    with pytest.raises(ProviderMalformedError, match="same toolUseId"):
        bedrock.parse_response(answer(USE, USE))
    with pytest.raises(ProviderMalformedError, match="same toolUseId"):
        replay(tool_use_stream("", [("t1", "now", []), ("t1", "now", [])]))


# --- streams ------------------------------------------------------------------------------------


def replay(frames: list[bytes]) -> tuple[list[Any], StreamAssembler]:
    from botocore.eventstream import EventStreamBuffer

    buffer, assembler, chunks, parse = EventStreamBuffer(), StreamAssembler(), [], bedrock.StreamParser()
    buffer.add_data(b"".join(frames))
    for m in buffer:
        if chunk := assembler.feed(parse(bedrock.EventMessage(m.headers, m.payload))):
            chunks.append(chunk)
    return chunks, assembler


def test_a_streamed_tool_call_assembles() -> None:
    calls = [("tooluse_1", "get_weather", ['{"ci', 'ty": "Par', 'is"}']), ("tooluse_2", "now", [])]
    chunks, assembler = replay(tool_use_stream("Looking.", calls))
    assert "".join(c.text for c in chunks) == "Looking."
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0] == ToolCallDelta(0, "tooluse_1", "get_weather", "")
    assert "".join(d.arguments for d in deltas if d.index == 0) == '{"city": "Paris"}'
    assert deltas[-1] == ToolCallDelta(1, "tooluse_2", "now", "")
    final = assembler.final()
    assert final.finish_reason is FinishReason.TOOL_CALLS and final.usage is not None
    assert final.usage.completion_tokens == 58


def test_a_call_cut_by_max_tokens_is_kept_as_it_came() -> None:
    chunks, assembler = replay(
        tool_use_stream("", [("t1", "get_weather", ['{"city": "Pa'])], stop="max_tokens")
    )
    assert "".join(d.arguments for c in chunks for d in c.tool_calls) == '{"city": "Pa'
    assert assembler.final().finish_reason is FinishReason.LENGTH


def start(index: int, **use: Any) -> bytes:
    return event("contentBlockStart", {"contentBlockIndex": index, "start": {"toolUse": use}})


def piece(index: int, value: Any) -> bytes:
    return event("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": value}}})


STOP = event("messageStop", {"stopReason": "tool_use"})


@pytest.mark.parametrize(
    ("frames", "match"),
    [
        ([start(1, name="get_weather"), STOP], "toolUseId"),
        ([piece(3, '{"city": "Paris"}'), STOP], "never started"),
        ([start(1, toolUseId="t", name="f"), start(1, toolUseId="u", name="f")], "started twice"),
        ([start(1, toolUseId="t", name="f"), piece(1, {"city": "Paris"})], "not text"),
        ([start(1, toolUseId="t", name="f"), piece(1, "Paris, please"), STOP], "not a JSON object"),
        ([start(1, toolUseId="t", name="f"), piece(1, "[1, 2]"), STOP], "not a JSON object"),
        ([start(1, toolUseId="t", name="f"), *[piece(1, "x" * 60_000)] * 5], "longer than"),
        ([event("contentBlockStart", {"start": {"toolUse": {"toolUseId": "t", "name": "f"}}})], "Index"),
        ([event("contentBlockDelta", {"contentBlockIndex": 0, "delta": "text"})], "delta object"),
    ],
    ids=["no-id", "delta-never-started", "twice", "input-object", "not-json", "not-object", "huge",
         "no-index", "delta-not-object"],
)  # fmt: skip
def test_a_hostile_stream_is_a_bad_answer(frames: list[bytes], match: str) -> None:
    with pytest.raises(ProviderMalformedError, match=match):
        replay([event("messageStart", {"role": "assistant"}), *frames])


# --- structured output: a forced tool whose input is the answer ---------------------------------

ANSWER_SCHEMA = {"type": "object", "properties": {"sky": {"type": "string"}}, "required": ["sky"]}


def as_json(schema: dict[str, Any] | None = ANSWER_SCHEMA) -> ResponseFormat:
    if schema is None:
        return ResponseFormat(kind="json_object")
    return ResponseFormat(kind="json_schema", name="weather", schema_json=json.dumps(schema), strict=True)


def test_a_json_schema_is_a_forced_answer_tool() -> None:
    body = wire(Message(Role.USER, "Weather?"), response_format=as_json())
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "json_answer",
                    "description": bedrock_wire.ANSWER_DESCRIPTION,
                    "inputSchema": {"json": ANSWER_SCHEMA},
                }
            }
        ],
        "toolChoice": {"tool": {"name": "json_answer"}},
    }
    body = wire(Message(Role.USER, "Weather?"), response_format=as_json(None))
    assert body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}


def test_beside_the_calls_own_tools_the_model_must_call_one_or_answer() -> None:
    taken = ToolSpec("json_answer", "the caller's own tool of that name")
    body = wire(Message(Role.USER, "Weather?"), tools=(WEATHER, taken), response_format=as_json())
    names = [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]]
    assert names == ["get_weather", "json_answer", "json_answer_"]
    assert body["toolConfig"]["toolChoice"] == {"any": {}}
    named = ToolChoice("named", "get_weather")
    body = wire(
        Message(Role.USER, "Weather?"), tools=(WEATHER,), tool_choice=named, response_format=as_json()
    )
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}


def test_a_schema_whose_root_is_not_an_object_is_refused() -> None:
    with pytest.raises(ProviderRejectedError) as info:
        wire(Message(Role.USER, "List?"), response_format=as_json({"type": "array"}))
    assert info.value.violations[0].field == "response_format.json_schema.schema"


def test_the_answer_tools_input_is_the_answer() -> None:
    answer_use = {"toolUse": {"toolUseId": "t9", "name": "json_answer", "input": {"sky": "sunny"}}}
    chunk = bedrock.parse_response(answer({"text": "Here:"}, answer_use), answer="json_answer")
    assert (chunk.text, chunk.tool_calls, chunk.finish_reason) == ('{"sky": "sunny"}', (), FinishReason.STOP)
    chunk = bedrock.parse_response(answer(USE), answer="json_answer")  # it called a tool instead
    assert chunk.text == "" and chunk.finish_reason is FinishReason.TOOL_CALLS
    assert [c.name for c in chunk.tool_calls] == ["get_weather"]


def test_a_streamed_answer_tools_input_is_the_text() -> None:
    from botocore.eventstream import EventStreamBuffer

    frames = tool_use_stream("Here:", [("t9", "json_answer", ['{"sky"', ': "sunny"}'])])
    buffer, assembler, parse = EventStreamBuffer(), StreamAssembler(), bedrock.StreamParser("json_answer")
    buffer.add_data(b"".join(frames))
    chunks = [c for m in buffer if (c := assembler.feed(parse(bedrock.EventMessage(m.headers, m.payload))))]
    assert "".join(c.text for c in chunks) == '{"sky": "sunny"}'
    assert not any(c.tool_calls for c in chunks)
    assert assembler.final().finish_reason is FinishReason.STOP


# --- Claude's extended thinking (reasoningContent) ----------------------------------------------

THINK = GenerationParams(max_tokens=500, temperature=0.3, top_p=0.9, reasoning=Reasoning(budget_tokens=2048))
SIGNED = ThinkingBlock(text="Paris, so get_weather.", signature="sig1")
HIDDEN = ThinkingBlock(redacted="EmwKAhgB")


def test_thinking_is_asked_with_room_and_without_sampling_fields() -> None:
    body = bedrock.to_wire(ProviderRequest((Message(Role.USER, "Hi"),), THINK, stream=False), DEPLOYMENT)
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert body["inferenceConfig"] == {"maxTokens": 2548}  # the budget is part of maxTokens


def test_a_thinking_turn_goes_back_with_its_blocks_first() -> None:
    call = ToolCall("t1", "get_weather", '{"city": "Paris"}')
    turn = Message(Role.ASSISTANT, "", tool_calls=(call,), thinking=(SIGNED, HIDDEN))
    msgs = (Message(Role.USER, "Weather?"), turn, Message(Role.TOOL, "sunny", tool_call_id="t1"))
    params = dataclasses.replace(THINK, tools=(WEATHER,))
    body = bedrock.to_wire(ProviderRequest(msgs, params, stream=False), DEPLOYMENT)
    assert body["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "Paris, so get_weather.", "signature": "sig1"}}},
        {"reasoningContent": {"redactedContent": "EmwKAhgB"}},
        {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
    ]


def test_a_gemini_signature_in_the_history_is_not_sent_to_claude() -> None:
    """A turn Gemini answered (a fallback between turns) holds its thought signature as an opaque
    block; Converse would refuse it as Claude's redactedContent."""
    from sidecar.providers.gemini_wire import signed_block

    call = ToolCall("t1", "get_weather", '{"city": "Paris"}')
    turn = Message(Role.ASSISTANT, "", tool_calls=(call,), thinking=(SIGNED, signed_block("c2lnbg==", "t1")))
    msgs = (Message(Role.USER, "Weather?"), turn, Message(Role.TOOL, "sunny", tool_call_id="t1"))
    body = bedrock.to_wire(
        ProviderRequest(msgs, dataclasses.replace(THINK, tools=(WEATHER,)), stream=False), DEPLOYMENT
    )
    assert body["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "Paris, so get_weather.", "signature": "sig1"}}},
        {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
    ]


def test_reasoning_blocks_of_an_answer_are_thinking() -> None:
    signed = {"reasoningContent": {"reasoningText": {"text": "Paris, so get_weather.", "signature": "sig1"}}}
    chunk = bedrock.parse_response(answer(signed, {"reasoningContent": {"redactedContent": "EmwKAhgB"}}, USE))
    assert chunk.thinking == "Paris, so get_weather." and chunk.text == ""
    assert chunk.thinking_blocks == (SIGNED, HIDDEN)


def test_streamed_reasoning_is_thinking_signed_at_its_signature() -> None:
    deltas = [
        {"text": "Paris, "},
        {"text": "so get_weather."},
        {"signature": "sig1"},
        {"redactedContent": "EmwKAhgB"},
    ]
    frames = [
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": d}}) for d in deltas
    ]
    chunks, _ = replay([*frames, event("messageStop", {"stopReason": "end_turn"})])
    assert "".join(c.thinking for c in chunks) == "Paris, so get_weather."
    assert [b for c in chunks for b in c.thinking_blocks] == [SIGNED, HIDDEN]


@pytest.mark.parametrize(
    "block",
    [{"reasoningText": {"text": 5}}, {"reasoningText": "x"}, {"redactedContent": 3}, "thinking"],
)
def test_a_hostile_reasoning_block_is_a_bad_answer(block: Any) -> None:
    with pytest.raises(ProviderMalformedError):
        bedrock.parse_response(answer({"reasoningContent": block}))
    with pytest.raises(ProviderMalformedError):
        replay([event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": 7}})])
