"""Validation of every request field: the table of bad inputs, each naming its field."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import struct_pb2

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import keys_pb2
from sidecar.api.convert import Tiers, credentials_from, to_call
from sidecar.config.schema import RequestLimits
from sidecar.config.tiers import DEFAULT_TIERS, TierAssignment
from sidecar.core.clock import Deadline
from sidecar.core.errors import InvalidRequestError
from sidecar.core.outcome import Outcome
from sidecar.core.types import GenerationParams, Message, Role
from tests.conftest import FakeClock

LIMITS = RequestLimits(max_messages=3, max_message_chars=50, max_total_chars=80, max_metadata_entries=2)


def msg(text: str = "hi", role: int = gen.ROLE_USER, **kw: Any) -> gen.Message:
    return gen.Message(role=role, content=[gen.ContentPart(text=text)], **kw)  # type: ignore[arg-type]


TIERS = Tiers(TierAssignment(), DEFAULT_TIERS)


def object_schema(fields: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update({"type": "object", **fields})
    return out


def nan_tool() -> gen.Tool:
    return gen.Tool(name="t", parameters=object_schema({"maxProperties": math.nan}))


def with_tool_call(arguments: str) -> gen.GenerationInput:
    call = gen.ToolCall(id="call_1", name="lookup", arguments=arguments)
    answer = gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(tool_call=call)])
    return gen.GenerationInput(messages=[msg(), answer])


def convert(req: gen.GenerationInput, clock: FakeClock | None = None, tiers: Tiers = TIERS) -> Any:
    clock = clock or FakeClock()
    return to_call(
        req,
        stream=False,
        limits=LIMITS,
        deadline=Deadline(None, clock),
        credentials=credentials_from(None),
        record=Outcome(started_at=0.0),
        tiers=tiers,
    )


def test_a_good_request() -> None:
    req = gen.GenerationInput(
        model="echo",
        messages=[msg("be nice", gen.ROLE_SYSTEM), msg("hi", name="ann")],
        config=gen.GenerationConfig(max_tokens=5, temperature=0.0, top_p=1.0, stop=["x"], seed=-4),
        tenant_id="acme",
        user_id="u@acme.io",
        conversation_id="c:1",
        metadata={"app": "web"},
        request_id="r-1",
    )
    call = convert(req)
    assert call.messages == (Message(Role.SYSTEM, "be nice"), Message(Role.USER, "hi", "ann"))
    assert call.params == GenerationParams(max_tokens=5, temperature=0.0, top_p=1.0, stop=("x",), seed=-4)
    assert (call.request_id, call.tenant_id, call.metadata) == ("r-1", "acme", {"app": "web"})


def test_unset_parameters_stay_unset_and_request_id_is_generated() -> None:
    call = convert(gen.GenerationInput(messages=[msg()]))
    assert call.params == GenerationParams()
    assert len(call.request_id) == 32


def part(text: str = "ok") -> gen.ContentPart:
    return gen.ContentPart(text=text)


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def tool(name: str, parameters: dict[str, Any] | None = None) -> gen.Tool:
    t = gen.Tool(name=name)
    if parameters is not None:
        t.parameters.CopyFrom(struct(parameters))
    return t


def call_part(call_id: str, name: str, arguments: str) -> gen.ContentPart:
    return gen.ContentPart(tool_call=gen.ToolCall(id=call_id, name=name, arguments=arguments))


def assistant_call(call_id: str, name: str, arguments: str) -> gen.Message:
    return gen.Message(role=gen.ROLE_ASSISTANT, content=[call_part(call_id, name, arguments)])


def image_message(data: bytes, mime: str) -> gen.Message:
    image = gen.ContentPart(image=gen.Image(data=data, mime_type=mime))
    return gen.Message(role=gen.ROLE_USER, content=[part("what is this?"), image])


def url_image_message(url: str) -> gen.Message:
    image = gen.ContentPart(image=gen.Image(url=url))
    return gen.Message(role=gen.ROLE_USER, content=[part("what is this?"), image])


BAD: list[tuple[str, gen.GenerationInput, str]] = [
    ("no messages", gen.GenerationInput(), "messages"),
    ("too many messages", gen.GenerationInput(messages=[msg()] * 4), "messages"),
    ("unknown role", gen.GenerationInput(messages=[msg(role=9)]), "messages[0].role"),
    ("unspecified role", gen.GenerationInput(messages=[msg(role=0)]), "messages[0].role"),
    (
        "tool result without its call",
        gen.GenerationInput(messages=[msg(), msg(role=gen.ROLE_TOOL)]),
        "messages[1].tool_call_id",
    ),
    (
        "tool result answering no call",
        gen.GenerationInput(
            messages=[msg(), gen.Message(role=gen.ROLE_TOOL, tool_call_id="c1", content=[part()])]
        ),
        "messages[1].tool_call_id",
    ),
    (
        "illegal tool name",
        gen.GenerationInput(messages=[msg()], tools=[gen.Tool(name="get weather")]),
        "tools[0].name",
    ),
    (
        "duplicate tool name",
        gen.GenerationInput(messages=[msg()], tools=[tool("a"), tool("a")]),
        "tools[1].name",
    ),
    (
        "parameters that are not a schema",
        gen.GenerationInput(messages=[msg()], tools=[tool("a", {"type": "objekt"})]),
        "tools[0].parameters",
    ),
    (
        "parameters that are not an object schema",
        gen.GenerationInput(messages=[msg()], tools=[tool("a", {"type": "string"})]),
        "tools[0].parameters",
    ),
    (
        "tool choice naming no tool",
        gen.GenerationInput(messages=[msg()], tools=[tool("a")], tool_choice=gen.ToolChoice(name="b")),
        "tool_choice.name",
    ),
    (
        "tool choice without tools",
        gen.GenerationInput(messages=[msg()], tool_choice=gen.ToolChoice(mode=gen.TOOL_CHOICE_MODE_REQUIRED)),
        "tool_choice",
    ),
    (
        "tool call arguments too long",
        gen.GenerationInput(messages=[msg(), assistant_call("c1", "a", '{"a": "' + "x" * 262_144 + '"}')]),
        "messages[1].content[0].tool_call.arguments",
    ),
    (
        "tool call in a user message",
        gen.GenerationInput(messages=[gen.Message(role=gen.ROLE_USER, content=[call_part("c1", "a", "{}")])]),
        "messages[0].content[0].tool_call",
    ),
    (
        "oversized image",
        gen.GenerationInput(messages=[image_message(b"x" * (5 * 1024 * 1024 + 1), "image/png")]),
        "messages[0].content[1].image.data",
    ),
    *[
        (
            f"data URL {url[:24]}",
            gen.GenerationInput(messages=[url_image_message(url)]),
            "messages[0].content[1].image.url",
        )  # no provider takes these (OpenAI, Anthropic and Bedrock: png, jpeg, gif, webp; base64)
        for url in ("data:image/svg+xml;base64,PHN2Zz4=", "data:image/png,raw", "data:image/png;base64,no t!")
    ],
    (
        "image without a MIME type",
        gen.GenerationInput(messages=[image_message(b"\x89PNG", "")]),
        "messages[0].content[1].image.mime_type",
    ),
    (
        "response schema that is not a schema",
        gen.GenerationInput(
            messages=[msg()],
            response_format=gen.ResponseFormat(
                json_schema=gen.JsonSchemaFormat(name="s", schema=struct({"type": 5}))
            ),
        ),
        "response_format.json_schema.schema",
    ),
    ("only a system message", gen.GenerationInput(messages=[msg(role=gen.ROLE_SYSTEM)]), "messages"),
    (
        "no content parts",
        gen.GenerationInput(messages=[gen.Message(role=gen.ROLE_USER)]),
        "messages[0].content",
    ),
    (
        "a part without text",
        gen.GenerationInput(messages=[gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart()])]),
        "messages[0].content[0]",
    ),
    ("empty text", gen.GenerationInput(messages=[msg("")]), "messages[0].content[0].text"),
    ("oversized message", gen.GenerationInput(messages=[msg("x" * 51)]), "messages[0].content"),
    ("oversized conversation", gen.GenerationInput(messages=[msg("x" * 45), msg("y" * 45)]), "messages"),
    ("bad name", gen.GenerationInput(messages=[msg(name="a b")]), "messages[0].name"),
    (
        "zero max_tokens",
        gen.GenerationInput(messages=[msg()], config=gen.GenerationConfig(max_tokens=0)),
        "config.max_tokens",
    ),
    (
        "negative max_tokens",
        gen.GenerationInput(messages=[msg()], config=gen.GenerationConfig(max_tokens=-5)),
        "config.max_tokens",
    ),
    (
        "absurd max_tokens",
        gen.GenerationInput(messages=[msg()], config=gen.GenerationConfig(max_tokens=2_000_000_000)),
        "config.max_tokens",
    ),
    (
        "temperature too high",
        gen.GenerationInput(messages=[msg()], config=gen.GenerationConfig(temperature=2.5)),
        "config.temperature",
    ),
    (
        "negative temperature",
        gen.GenerationInput(messages=[msg()], config=gen.GenerationConfig(temperature=-0.1)),
        "config.temperature",
    ),
    (
        "NaN temperature",
        gen.GenerationInput(messages=[msg()], config=gen.GenerationConfig(temperature=float("nan"))),
        "config.temperature",
    ),
    (
        "zero top_p",
        gen.GenerationInput(messages=[msg()], config=gen.GenerationConfig(top_p=0)),
        "config.top_p",
    ),
    (
        "too many stops",
        gen.GenerationInput(messages=[msg()], config=gen.GenerationConfig(stop=list("abcde"))),
        "config.stop",
    ),
    (
        "empty stop",
        gen.GenerationInput(messages=[msg()], config=gen.GenerationConfig(stop=[""])),
        "config.stop[0]",
    ),
    ("bad tenant", gen.GenerationInput(messages=[msg()], tenant_id="a b"), "tenant_id"),
    ("huge user", gen.GenerationInput(messages=[msg()], user_id="u" * 200), "user_id"),
    ("bad conversation", gen.GenerationInput(messages=[msg()], conversation_id="../etc"), "conversation_id"),
    ("bad request id", gen.GenerationInput(messages=[msg()], request_id="\n"), "request_id"),
    ("bad model", gen.GenerationInput(messages=[msg()], model="a model"), "model"),
    (
        "huge metadata",
        gen.GenerationInput(messages=[msg()], metadata={str(i): "v" for i in range(3)}),
        "metadata",
    ),
    (
        "metadata value too long",
        gen.GenerationInput(messages=[msg()], metadata={"k": "v" * 600}),
        "metadata['k']",
    ),
    (
        "metadata control chars",
        gen.GenerationInput(messages=[msg()], metadata={"k": "a\nb"}),
        "metadata['k']",
    ),
    (  # a label value that reverses the rest of the log line it is written in
        "metadata bidi override",
        gen.GenerationInput(messages=[msg()], metadata={"k": "ok\u202edeliaf"}),
        "metadata['k']",
    ),
    ("metadata bad key", gen.GenerationInput(messages=[msg()], metadata={"a key": "v"}), "metadata['a key']"),
    # deeper than the JSON parser's stack: RecursionError, which escaped as grpc's UNKNOWN
    (
        "tool arguments nested deep",
        with_tool_call("[" * 100_000),
        "messages[1].content[0].tool_call.arguments",
    ),
    (
        "tool arguments malformed and nested deep",
        with_tool_call('{"a": ' + "[" * 100_000),
        "messages[1].content[0].tool_call.arguments",
    ),
    # a Struct number JSON cannot write: json_format raised ValueError, answered INTERNAL
    ("tool parameters NaN", gen.GenerationInput(messages=[msg()], tools=[nan_tool()]), "tools[0].parameters"),
    (
        "response schema Infinity",
        gen.GenerationInput(
            messages=[msg()],
            response_format=gen.ResponseFormat(
                json_schema=gen.JsonSchemaFormat(name="s", schema=object_schema({"maxItems": math.inf}))
            ),
        ),
        "response_format.json_schema.schema",
    ),
]


@pytest.mark.parametrize(("case", "req", "field"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_input_names_its_field(case: str, req: gen.GenerationInput, field: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        convert(req)
    assert f"input.{field}" in [v.field for v in info.value.violations], info.value.violations
    assert info.value.reason == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "arguments",
    ["{not json", '{"city": "Tok', '["Paris", 2]', '"Paris"', "42", '{"a": NaN}', '{"a": -Infinity}', "{}"],
)
def test_tool_call_arguments_a_model_may_write_are_taken_as_written(arguments: str) -> None:
    """A caller keeping its history sends back the model's call as memory would (malformed, cut by
    max_tokens, not an object) to answer it with an error result; the edge refused it."""
    call = convert(with_tool_call(arguments))
    [tool_call] = call.messages[1].tool_calls
    assert tool_call.arguments == arguments


def test_tool_call_arguments_of_the_largest_size_are_taken() -> None:
    arguments = '"' + "x" * (262_144 - 2) + '"'
    [tool_call] = convert(with_tool_call(arguments)).messages[1].tool_calls
    assert len(tool_call.arguments) == 262_144


def test_right_to_left_text_with_its_direction_marks_is_printable() -> None:
    """A right-to-left keyboard puts U+200F (and U+200E) in ordinary text: a label is not refused
    for them, only for the embeddings, overrides and isolates that make a line read reversed."""
    label = "\u200f\u05e6\u05d5\u05d5\u05ea \u05d0\u200e"  # a Hebrew team name between marks
    call = convert(gen.GenerationInput(messages=[msg()], metadata={"team": label}))
    assert call.metadata["team"] == label


def test_every_violation_is_reported_at_once() -> None:
    req = gen.GenerationInput(
        messages=[msg("")], config=gen.GenerationConfig(temperature=9, top_p=2), tenant_id="?"
    )
    with pytest.raises(InvalidRequestError) as info:
        convert(req)
    fields = {v.field.removeprefix("input.") for v in info.value.violations}
    assert fields == {"messages[0].content[0].text", "config.temperature", "config.top_p", "tenant_id"}


@pytest.mark.parametrize(
    ("metadata", "token"),
    [
        ([("authorization", "Bearer abc")], "abc"),
        ([("authorization", "bearer   abc ")], "abc"),
        ([("authorization", "Basic abc")], None),
        ([("authorization", "Bearer ")], None),
        ([("x-other", "Bearer abc")], None),
        (None, None),
    ],
)
def test_credentials_from_metadata(metadata: Any, token: str | None) -> None:
    assert credentials_from(metadata).bearer_token == token


def test_credentials_repr_hides_the_token() -> None:
    assert "abc" not in repr(credentials_from([("authorization", "Bearer abc")]))


def test_a_flood_of_bad_fields_is_cheap_and_bounded() -> None:
    import time

    req = gen.GenerationInput(
        messages=[gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart()] * 100_000)],
        config=gen.GenerationConfig(stop=[""] * 200_000),
    )
    started = time.process_time()
    with pytest.raises(InvalidRequestError) as info:
        convert(req)
    assert time.process_time() - started < 0.5
    assert len(info.value.violations) <= 20
    assert {"messages[0].content", "config.stop"} <= {
        v.field.removeprefix("input.") for v in info.value.violations
    }


def test_an_empty_provider_key_is_refused() -> None:
    req = gen.GenerationInput(
        messages=[msg()], tenant_id="t", user_id="u", provider_key=keys_pb2.ProviderKey()
    )
    with pytest.raises(InvalidRequestError) as info:
        convert(req)
    assert [v.field.removeprefix("input.") for v in info.value.violations] == ["provider_key"]


def test_the_tier_comes_from_trusted_metadata_and_an_unknown_one_names_the_field() -> None:
    tiers = Tiers(TierAssignment(source="metadata", metadata_key="plan"), DEFAULT_TIERS)
    req = gen.GenerationInput(model="echo", messages=[msg()], metadata={"plan": "basic"})
    assert convert(req, tiers=tiers).tier == "basic"
    assert convert(gen.GenerationInput(model="echo", messages=[msg()]), tiers=tiers).tier == "free"
    with pytest.raises(InvalidRequestError) as err:
        convert(gen.GenerationInput(model="echo", messages=[msg()], metadata={"plan": "gold"}), tiers=tiers)
    assert [v.field.removeprefix("input.") for v in err.value.violations] == ["metadata[plan]"]
    assert "professional" in err.value.violations[0].description


def test_the_tier_comes_from_the_config_map_user_first_then_tenant() -> None:
    assign = TierAssignment(tenants={"acme": "professional"}, users={"acme/ann": "enterprise"})
    tiers = Tiers(assign, DEFAULT_TIERS)

    def tier_of(tenant: str, user: str) -> str:
        req = gen.GenerationInput(model="echo", messages=[msg()], tenant_id=tenant, user_id=user)
        return str(convert(req, tiers=tiers).tier)

    assert tier_of("acme", "ann") == "enterprise"
    assert tier_of("acme", "bob") == "professional"
    assert tier_of("other", "ann") == "free"
    assert (
        convert(gen.GenerationInput(model="echo", messages=[msg()], metadata={"tier": "basic"})).tier
        == "free"
    )


def test_a_tool_loop_converts_to_domain_messages() -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "maximum": 7}},
    }
    req = gen.GenerationInput(
        messages=[
            msg("weather in Paris?"),
            assistant_call("call_1", "weather", '{"city": "Paris"}'),
            gen.Message(role=gen.ROLE_TOOL, tool_call_id="call_1", content=[part("sunny")]),
        ],
        tools=[tool("weather", schema)],
        tool_choice=gen.ToolChoice(mode=gen.TOOL_CHOICE_MODE_REQUIRED),
        parallel_tool_calls=False,
    )
    call = convert(req)
    assert call.messages[1].tool_calls[0].name == "weather" and call.messages[2].tool_call_id == "call_1"
    spec = call.params.tools[0]
    assert spec.name == "weather" and '"maximum":7' in spec.parameters_json  # an int, not 7.0
    assert call.params.tool_choice is not None and call.params.tool_choice.mode == "required"
    assert call.params.parallel_tool_calls is False


def test_with_a_conversation_only_leading_tool_results_may_answer_stored_calls() -> None:
    """Results before the first user or assistant message may answer calls memory holds; a result
    after one must answer a call of this request (content.messages tracks the leading run)."""

    def result(call_id: str) -> gen.Message:
        return gen.Message(role=gen.ROLE_TOOL, tool_call_id=call_id, content=[part()])

    leading = [msg(role=gen.ROLE_SYSTEM), result("stored_1"), msg()]
    call = convert(gen.GenerationInput(messages=leading, conversation_id="c:1"))
    assert [m.tool_call_id for m in call.messages] == ["", "stored_1", ""]
    for messages, where in (
        ([msg(), result("stored_1")], "messages[1].tool_call_id"),
        ([result("stored_1"), msg(), result("stored_2")], "messages[2].tool_call_id"),
    ):
        with pytest.raises(InvalidRequestError) as info:
            convert(gen.GenerationInput(messages=messages, conversation_id="c:1"))
        assert [v.field for v in info.value.violations] == [f"input.{where}"]


def test_a_tool_call_left_unanswered_before_the_next_message_is_refused_naming_it() -> None:
    """Every provider refuses a history whose assistant called a tool and the next user (or
    assistant) message came without the call's result: refused here, naming the message, before
    anything is reserved or sent. The last message's calls may still wait for their results."""

    def result(call_id: str) -> gen.Message:
        return gen.Message(role=gen.ROLE_TOOL, tool_call_id=call_id, content=[part("ok")])

    def convert(req: gen.GenerationInput) -> Any:  # room for five messages
        limits = LIMITS.model_copy(update={"max_messages": 5})
        clock = FakeClock()
        return to_call(
            req, stream=False, limits=limits, deadline=Deadline(None, clock),
            credentials=credentials_from(None), record=Outcome(started_at=0.0), tiers=TIERS,
        )  # fmt: skip

    two = gen.Message(
        role=gen.ROLE_ASSISTANT,
        content=[
            gen.ContentPart(tool_call=gen.ToolCall(id="c1", name="weather", arguments="{}")),
            gen.ContentPart(tool_call=gen.ToolCall(id="c2", name="weather", arguments="{}")),
        ],
    )
    with pytest.raises(InvalidRequestError) as info:
        convert(gen.GenerationInput(messages=[msg("both?"), two, result("c1"), msg("and now?")]))
    assert [(v.field, v.description) for v in info.value.violations] == [
        ("input.messages[1]", "tool call 'c2' has no tool result before messages[3]")
    ]
    convert(gen.GenerationInput(messages=[msg("both?"), two, result("c2"), result("c1"), msg("next")]))
    convert(gen.GenerationInput(messages=[msg("both?"), two]))  # its results come in the next request


def test_a_tool_result_answers_a_call_of_the_assistant_message_right_before_it() -> None:
    """A result comes right after its call's message, once: a result for a call of an earlier
    assistant message (or a second result for one call) after another assistant message is refused
    by the providers (Bedrock: "toolResult for unknown toolUseIds"; Anthropic, OpenAI alike), so it is
    refused here, naming it; it went upstream and came back PROVIDER_REJECTED."""

    def result(call_id: str) -> gen.Message:
        return gen.Message(role=gen.ROLE_TOOL, tool_call_id=call_id, content=[part("ok")])

    def calls(call_id: str) -> gen.Message:
        call = gen.ToolCall(id=call_id, name="weather", arguments="{}")
        return gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(tool_call=call)])

    def convert(messages: list[gen.Message], **kw: Any) -> Any:
        limits = LIMITS.model_copy(update={"max_messages": 8})
        return to_call(
            gen.GenerationInput(messages=messages, **kw), stream=False, limits=limits,
            deadline=Deadline(None, FakeClock()), credentials=credentials_from(None),
            record=Outcome(started_at=0.0), tiers=TIERS,
        )  # fmt: skip

    late = [msg("q"), calls("c1"), result("c1"), calls("c2"), result("c2"), result("c1"), msg("next")]
    with pytest.raises(InvalidRequestError) as info:
        convert(late)
    assert [v.field for v in info.value.violations] == ["input.messages[5].tool_call_id"]
    with pytest.raises(InvalidRequestError) as info:
        convert([msg("q"), calls("c1"), result("c1"), result("c1")])
    assert [v.field for v in info.value.violations] == ["input.messages[3].tool_call_id"]
    convert([msg("q"), calls("c1"), result("c1"), calls("c2"), result("c2"), msg("next")])
    convert([result("m1"), result("m2"), msg("next")], conversation_id="c:1")  # memory's calls
