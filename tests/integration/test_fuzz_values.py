"""Hostile values through a real sidecar, field by field: NaN, infinite and negative numbers, zero
and huge integers, enormous strings and lists, unknown enum values, conflicting oneofs, deep JSON in
tool arguments and schemas, timestamps protobuf cannot convert. Each is INVALID_ARGUMENT naming its
field (or the documented code), charges nothing and leaves no error, traceback or canary in the log
(tests/support/fuzz_api.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar._gen.orchestrator.v1 import embed_pb2, keys_pb2
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.support.fuzz import (
    WIRE_VARINT,
    length_delimited,
    tag,
    varint,
)
from tests.support.fuzz_api import (
    ANSWERS,
    API_KEY,
    NOW,
    TENANT,
    USER,
    Fuzzed,
    expect,
    fuzzed_sidecar,
    generation_input,
    stamp,
    text,
    with_fields,
)
from tests.support.fuzz_strategies import generation_inputs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["embedded", "redis"])
def fuzzed(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Fuzzed]:
    """The embedded stores, then every shared state in one real Redis (as sidecars sharing it)."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    with fuzzed_sidecar(tmp_path_factory.mktemp("fuzz"), url) as served:
        yield served


def generate(**fields: Any) -> bytes:
    return gen.GenerateRequest(input=generation_input(**fields)).SerializeToString()


def nested_struct(depth: int) -> struct_pb2.Struct:
    """A schema whose `enum` holds lists nested `depth` deep (lists cost protobuf two levels each,
    objects three: a JSON Schema deeper than the sidecar's bound still decodes)."""
    out = struct_pb2.Struct()
    out["type"] = "object"
    value = out.fields["enum"]
    for _ in range(depth):
        value = value.list_value.values.add()
    value.string_value = "leaf"
    return out


def struct_with(value: float) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out["type"] = "object"
    out["maxProperties"] = value
    return out


def tool_call(arguments: str) -> gen.Message:
    call = gen.ToolCall(id="call_1", name="lookup", arguments=arguments)
    return gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(tool_call=call)])


def config_of(**fields: Any) -> gen.GenerationConfig:
    return gen.GenerationConfig(**fields)


INF, NAN = math.inf, math.nan
# (what, request bytes, the field the refusal names)
GENERATION_CASES: list[tuple[str, bytes, str]] = [
    *[
        (f"temperature {v}", generate(config=config_of(temperature=v)), "input.config.temperature")
        for v in (NAN, INF, -INF, -0.5, 2.5)
    ],
    *[
        (f"top_p {v}", generate(config=config_of(top_p=v)), "input.config.top_p")
        for v in (NAN, INF, -INF, 0.0, -1.0, 1.5)
    ],
    *[
        (f"max_tokens {v}", generate(config=config_of(max_tokens=v)), "input.config.max_tokens")
        for v in (0, -1, -(2**31), 2**31 - 1)
    ],
    (
        "budget_tokens negative",
        generate(config=config_of(reasoning=gen.ReasoningConfig(budget_tokens=-5))),
        "input.config.reasoning.budget_tokens",
    ),
    (
        "reasoning effort 999",
        generate(config=config_of(reasoning=gen.ReasoningConfig(effort=999))),
        "input.config.reasoning.effort",
    ),  # type: ignore[arg-type]
    ("10k stop sequences", generate(config=config_of(stop=["x"] * 10_000)), "input.config.stop"),
    ("empty stop sequence", generate(config=config_of(stop=[""])), "input.config.stop[0]"),
    ("no messages", generate(messages=[]), "input.messages"),
    ("100k messages", generate(messages=[text("a")] * 100_000), "input.messages"),
    ("empty text", generate(messages=[text("")]), "input.messages[0].content[0].text"),
    ("enormous text", generate(messages=[text("x" * 3_000_000)]), "input.messages"),
    (
        "role 999",
        generate(messages=[gen.Message(role=999, content=[gen.ContentPart(text="hi")])]),
        "input.messages[0].role",
    ),  # type: ignore[arg-type]
    (
        "content part unset",
        generate(messages=[gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart()])]),
        "input.messages[0].content[0]",
    ),
    ("cache mode 999", generate(cache_mode=999), "input.cache_mode"),  # type: ignore[arg-type]
    ("priority 999", generate(priority=999), "input.priority"),  # type: ignore[arg-type]
    ("model with NUL", generate(model="echo\x00"), "input.model"),
    ("model ../", generate(model="../../x"), "input.model"),
    ("metadata 10k entries", generate(metadata={f"k{i}": "v" for i in range(10_000)}), "input.metadata"),
    ("metadata key with NUL", generate(metadata={"a\x00": "v"}), "input.metadata"),
    ("metadata value with NUL", generate(metadata={"a": "v\x00"}), "input.metadata"),
    (
        "tool arguments nested 100k deep",
        generate(messages=[text("hi"), tool_call("[" * 100_000)]),
        "input.messages[1].content[0].tool_call.arguments",
    ),
    (
        "tool arguments nested 100k deep in an object",
        generate(messages=[text("hi"), tool_call('{"a":' * 50_000)]),
        "input.messages[1].content[0].tool_call.arguments",
    ),
    (
        "tool arguments 256 KiB and one",
        generate(messages=[text("hi"), tool_call('"' + "x" * 262_143 + '"')]),
        "input.messages[1].content[0].tool_call.arguments",
    ),
    (
        "tool schema 40 deep",
        generate(tools=[gen.Tool(name="t", parameters=nested_struct(40))]),
        "input.tools[0].parameters",
    ),
    *[
        (
            f"tool schema number {v}",
            generate(tools=[gen.Tool(name="t", parameters=struct_with(v))]),
            "input.tools[0].parameters",
        )
        for v in (NAN, INF)
    ],
    *[
        (
            f"response schema number {v}",
            generate(
                response_format=gen.ResponseFormat(
                    json_schema=gen.JsonSchemaFormat(name="s", schema=struct_with(v))
                )
            ),
            "input.response_format.json_schema.schema",
        )
        for v in (NAN, -INF)
    ],
    (
        "response schema 40 deep",
        generate(
            response_format=gen.ResponseFormat(
                json_schema=gen.JsonSchemaFormat(name="s", schema=nested_struct(40))
            )
        ),
        "input.response_format.json_schema.schema",
    ),
    ("10k tools", generate(tools=[gen.Tool(name=f"t{i}") for i in range(10_000)]), "input.tools"),
    (
        "tool choice mode 999",
        generate(tools=[gen.Tool(name="t")], tool_choice=gen.ToolChoice(mode=999)),
        "input.tool_choice.mode",
    ),  # type: ignore[arg-type]
    ("tool choice without tools", generate(tool_choice=gen.ToolChoice(name="t")), "input.tool_choice"),
    ("provider key oneof unset", generate(provider_key=keys_pb2.ProviderKey()), "input.provider_key"),
    (
        "provider key enormous envelope",
        generate(provider_key=keys_pb2.ProviderKey(envelope="e" * 200_000)),
        "input.provider_key.envelope",
    ),
    (
        "provider key ref with path",
        generate(provider_key=keys_pb2.ProviderKey(key_ref="key_../../../etc")),
        "input.provider_key.key_ref",
    ),
    (
        "image width negative",
        generate(
            messages=[
                gen.Message(
                    role=gen.ROLE_USER,
                    content=[gen.ContentPart(image=gen.Image(url="https://x/y.png", width=-1))],
                )
            ]
        ),
        "input.messages[0].content[0].image",
    ),
    ("experiment variant with NUL", generate(experiment_variant="a\x00"), "input.experiment_variant"),
    ("persona with path", generate(persona_id="../maya"), "input.persona_id"),
    ("audience layer unknown", generate(audience_layer="\x00"), "input.audience_layer"),
]


def both_oneof_members() -> bytes:
    """A ContentPart whose oneof is set twice on the wire (text, then a tool call): the last wins."""
    part = length_delimited(1, b"hi") + length_delimited(
        2, gen.ToolCall(id="c", name="n").SerializeToString()
    )
    message = tag(1, WIRE_VARINT) + varint(gen.ROLE_USER) + length_delimited(2, part)
    body = (
        length_delimited(2, message)
        + length_delimited(4, TENANT.encode())
        + length_delimited(5, USER.encode())
    )
    return length_delimited(1, body)


@pytest.mark.parametrize("name", ["Generate", "StreamGenerate"])
def test_hostile_generation_values_are_named_and_never_charged(fuzzed: Fuzzed, name: str) -> None:
    before = fuzzed.used()
    for what, data, field in GENERATION_CASES:
        if name == "StreamGenerate":  # the same GenerationInput, field 1 of either request
            data = gen.StreamGenerateRequest(
                input=gen.GenerateRequest.FromString(data).input
            ).SerializeToString()
        expect(fuzzed, name, data, field=field, what=what)
    expect(
        fuzzed, name, both_oneof_members(), field="input.messages[0].content[0].tool_call", what="both oneofs"
    )
    assert fuzzed.used() == before


def embed(**fields: Any) -> bytes:
    return embed_pb2.EmbedRequest(
        **{"tenant_id": TENANT, "user_id": USER, "texts": ["hi"], **fields}
    ).SerializeToString()


def test_hostile_embed_values_are_named_and_never_charged(fuzzed: Fuzzed) -> None:
    before = fuzzed.used()
    cases = [
        ("no texts", embed(texts=[]), "texts"),
        ("100k texts", embed(texts=["a"] * 100_000), "texts"),
        ("empty text", embed(texts=[""]), "texts[0]"),
        ("enormous text", embed(texts=["x" * 1_000_000]), "texts[0]"),
        ("route with NUL", embed(route="local\x00"), "route"),
        ("unknown route", embed(route="nope"), "route"),
        ("metadata 10k entries", embed(metadata={f"k{i}": "v" for i in range(10_000)}), "metadata"),
    ]
    for what, data, field in cases:
        expect(
            fuzzed,
            "Embed",
            data,
            field=field,
            codes=(grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND),
            what=what,
        )
    assert fuzzed.used() == before


def test_hostile_values_of_the_other_methods_are_named(fuzzed: Fuzzed) -> None:
    cases: list[tuple[str, bytes, str]] = [
        *[("Feedback", with_fields("Feedback", score=v), "score") for v in (NAN, INF, -INF, 1e300)],
        ("Feedback", with_fields("Feedback", label="x" * 100_000), "label"),
        ("GetUsage", with_fields("GetUsage", group_by=999), "group_by"),
        (
            "GetUsage",
            with_fields("GetUsage", start_time=stamp(-(2**62)), end_time=stamp(2**62)),
            "start_time",
        ),
        (
            "GetUsage",
            with_fields("GetUsage", start_time=stamp(2**62), end_time=stamp(2**62 + 10)),
            "start_time",
        ),
        (
            "GetUsage",
            with_fields("GetUsage", start_time=stamp(NOW, -5), end_time=stamp(NOW, 2_000_000_000)),
            "start_time",
        ),
        (
            "GetExperimentReport",
            with_fields("GetExperimentReport", start_time=stamp(-(2**62)), end_time=stamp(2**62)),
            "start_time",
        ),
        (
            "GetExperimentReport",
            with_fields("GetExperimentReport", start_time=stamp(NOW, -1), end_time=stamp(NOW + 1)),
            "start_time",
        ),
        (
            "GetExperimentReportAcrossTenants",
            with_fields(
                "GetExperimentReportAcrossTenants", start_time=stamp(2**62), end_time=stamp(2**62 + 1)
            ),
            "start_time",
        ),
        ("GetExperimentReport", with_fields("GetExperimentReport", experiment="../tone"), "experiment"),
        ("ListEscalations", with_fields("ListEscalations", states=[999]), "states"),
        ("AnswerEscalation", with_fields("AnswerEscalation", answer="x" * 1_000_000), "answer"),
        ("AnswerEscalation", with_fields("AnswerEscalation", answer=""), "answer"),
        ("DeclineEscalation", with_fields("DeclineEscalation", reason="x" * 1_000_000), "reason"),
        ("AnswerEscalation", with_fields("AnswerEscalation", layer="\x00"), "layer"),
        ("Switch", with_fields("Switch", persona_id="../maya"), "persona_id"),
        ("Switch", with_fields("Switch", command="x" * 1_000_000), "command"),
        ("Switch", with_fields("Switch", metadata={f"k{i}": "v" for i in range(10_000)}), "metadata"),
        ("ListPersonas", with_fields("ListPersonas", tier="\x00"), "tier"),
        ("ListPersonas", with_fields("ListPersonas", category="x" * 100_000), "category"),
        ("RegisterKey", with_fields("RegisterKey", api_key=""), "api_key"),
        ("RegisterKey", with_fields("RegisterKey", api_key="x" * 1_000_000), "api_key"),
        ("RegisterKey", with_fields("RegisterKey", api_key=API_KEY + "\x00"), "api_key"),
        ("RegisterKey", with_fields("RegisterKey", provider="../openai"), "provider"),
        ("RegisterKey", with_fields("RegisterKey", key_name="a/b"), "key_name"),
        ("DeleteKey", with_fields("DeleteKey", key_ref="key_../../etc/passwd"), "key_ref"),
        ("DeleteKey", with_fields("DeleteKey", key_ref="key_abc\x00defghi"), "key_ref"),
        ("GetQuota", with_fields("GetQuota", metadata={"tier": "\x00"}), "metadata"),
    ]
    for name, data, field in cases:
        expect(fuzzed, name, data, field=field, what=field)


REFUSED_BEFORE_A_PROVIDER = (
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
)
HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@pytest.mark.parametrize("name", ["Generate", "StreamGenerate"])
def test_nearly_valid_generation_requests_get_a_classified_answer(fuzzed: Fuzzed, name: str) -> None:
    """Requests that reach the pipeline (persona, memory, tools, schemas, variants, quota, cache)
    with a hostile value or two: an answer or a classified refusal, never a crash; a refusal
    charges the caller nothing."""
    kind = gen.GenerateRequest if name == "Generate" else gen.StreamGenerateRequest

    @HYPOTHESIS
    @given(generation_inputs())
    def check(what: gen.GenerationInput) -> None:
        before = fuzzed.used(what.user_id) if what.user_id else None
        got = expect(fuzzed, name, kind(input=what).SerializeToString(), codes=ANSWERS, what="nearly valid")
        if got is not None and before is not None and got.code in REFUSED_BEFORE_A_PROVIDER:
            assert fuzzed.used(what.user_id) == before, got

    check()


def test_any_embed_texts_get_a_classified_answer(fuzzed: Fuzzed) -> None:
    @HYPOTHESIS
    @given(st.lists(st.text(max_size=80), min_size=1, max_size=4))
    def check(texts: list[str]) -> None:
        expect(fuzzed, "Embed", embed(texts=texts), codes=ANSWERS, what="texts")

    check()


def test_any_switch_command_gets_a_classified_answer(fuzzed: Fuzzed) -> None:
    @HYPOTHESIS
    @given(
        st.one_of(st.text(max_size=300), st.sampled_from(["use maya", "switch to Maya please", "maya" * 64]))
    )
    def check(command: str) -> None:
        expect(fuzzed, "Switch", with_fields("Switch", command=command), codes=ANSWERS, what="command")

    check()
