"""Every RPC of orchestrator.v1 fuzzed through a real sidecar, as an attacker would from outside.

For each method: bytes that are not its request (garbage, truncated, wrong wire types, unknown
fields), strings that are not UTF-8 at every string field reachable in the request, hostile values
(ids with path characters or NUL, enormous strings and lists, NaN / infinite / negative numbers,
unknown enum values, conflicting oneofs, deep JSON), hostile metadata headers, and hypothesis'
random requests built from the descriptors on a fixed budget. For every case: never INTERNAL or
UNKNOWN; a refusal is INVALID_ARGUMENT (or the method's documented code) naming the field; the
server serves the next valid call; nothing is charged (GetQuota before and after); no log record at
ERROR or above, no traceback and no canary (tokens, the API key, prompt text) in any record at DEBUG.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar._gen.orchestrator.v1 import (
    embed_pb2,
    escalation_pb2,
    experiments_pb2,
    keys_pb2,
    models_pb2,
    personas_pb2,
    quota_pb2,
    usage_pb2,
)
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.api.services import ADMIN, CONVERSATION, EXPERIMENTS, GENERATION, KEYS, QUOTA
from sidecar.api.services import ESCALATION as ESCALATIONS
from tests.conftest import make_config
from tests.integration.test_experiments import EXPERIMENT
from tests.support.fuzz import (
    BAD_UTF8,
    WIRE_I32,
    WIRE_I64,
    WIRE_SGROUP,
    WIRE_VARINT,
    LogTap,
    ThreadedSidecar,
    length_delimited,
    record_text,
    string_paths,
    tag,
    varint,
)
from tests.support.keys import local_keys
from tests.support.prometheus import quiet_telemetry

pytestmark = pytest.mark.integration

APP_TOKEN = "app-tok-CANARY-7d1c0e55aa"
OPS_TOKEN = "ops-tok-CANARY-93be02f4cd"
WRONG_TOKEN = "wrong-tok-CANARY-5a5a11c0de"
API_KEY = "sk-CANARY-fuzz-0f9e8d7c6b5a49382716"
PROMPT = "PROMPT-CANARY-b3c2d1e0"
CANARIES = (APP_TOKEN, OPS_TOKEN, WRONG_TOKEN, API_KEY, PROMPT)
APP = (("authorization", f"Bearer {APP_TOKEN}"),)
OPS = (("authorization", f"Bearer {OPS_TOKEN}"),)
SERVICES = (GENERATION, CONVERSATION, QUOTA, KEYS, ESCALATIONS, EXPERIMENTS, ADMIN)
NEVER = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
TENANT, USER = "acme", "fuzz"
NOW = 1_780_000_000


def stamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def text(value: str) -> gen.Message:
    return gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text=value)])


def generation_input(**fields: Any) -> gen.GenerationInput:
    base: dict[str, Any] = {"messages": [text(PROMPT)], "tenant_id": TENANT, "user_id": USER}
    return gen.GenerationInput(**{**base, **fields})


# One valid request per method; the hostile cases are variations of it.
BASELINES: dict[str, Message] = {
    "Generate": gen.GenerateRequest(input=generation_input()),
    "StreamGenerate": gen.StreamGenerateRequest(input=generation_input()),
    "ListModels": models_pb2.ListModelsRequest(),
    "Embed": embed_pb2.EmbedRequest(tenant_id=TENANT, user_id=USER, texts=[PROMPT]),
    "ListPersonas": personas_pb2.ListPersonasRequest(),
    "Switch": personas_pb2.SwitchRequest(
        tenant_id=TENANT, user_id=USER, conversation_id="c1", persona_id="maya"
    ),
    "ListSwitchHistory": personas_pb2.ListSwitchHistoryRequest(
        tenant_id=TENANT, user_id=USER, conversation_id="c1"
    ),
    "ClearConversation": personas_pb2.ClearConversationRequest(
        tenant_id=TENANT, user_id=USER, conversation_id="c9"
    ),
    "GetQuota": quota_pb2.GetQuotaRequest(tenant_id=TENANT, user_id=USER),
    "RegisterKey": keys_pb2.RegisterKeyRequest(
        tenant_id=TENANT, user_id=USER, provider="openai", key_name="main", api_key=API_KEY
    ),
    "ListKeys": keys_pb2.ListKeysRequest(tenant_id=TENANT, user_id=USER),
    "DeleteKey": keys_pb2.DeleteKeyRequest(tenant_id=TENANT, user_id=USER, key_ref="key_0123456789abcdef"),
    "AcceptEscalation": escalation_pb2.AcceptEscalationRequest(
        tenant_id=TENANT, user_id=USER, escalation_id="esc_0123456789"
    ),
    "ListEscalations": escalation_pb2.ListEscalationsRequest(tenant_id=TENANT, agent_id="maya"),
    "AnswerEscalation": escalation_pb2.AnswerEscalationRequest(
        tenant_id=TENANT, agent_id="maya", escalation_id="esc_0123456789", answer="Use bread flour."
    ),
    "DeclineEscalation": escalation_pb2.DeclineEscalationRequest(
        tenant_id=TENANT, agent_id="maya", escalation_id="esc_0123456789", reason="busy"
    ),
    "GetAnswerReport": escalation_pb2.GetAnswerReportRequest(tenant_id=TENANT, agent_id="maya"),
    "Feedback": experiments_pb2.FeedbackRequest(tenant_id=TENANT, request_id="req-1", score=0.5),
    "GetExperimentReport": experiments_pb2.GetExperimentReportRequest(
        tenant_id=TENANT, experiment="tone", start_time=stamp(NOW - 3600), end_time=stamp(NOW)
    ),
    "RotateKeys": keys_pb2.RotateKeysRequest(),
    "ListTenantKeys": keys_pb2.ListTenantKeysRequest(tenant_id=TENANT),
    "GetUsage": usage_pb2.GetUsageRequest(
        tenant_id=TENANT,
        start_time=stamp(NOW - 3600),
        end_time=stamp(NOW),
        group_by=usage_pb2.USAGE_GROUP_BY_USER,
    ),
    "GetExperimentReportAcrossTenants": experiments_pb2.GetExperimentReportAcrossTenantsRequest(
        experiment="tone", start_time=stamp(NOW - 3600), end_time=stamp(NOW)
    ),
}
METHODS: dict[str, MethodDescriptor] = {m.name: m for s in SERVICES for m in s.methods}


def path_of(name: str) -> str:
    method = METHODS[name]
    return f"/{method.containing_service.full_name}/{name}"


def config(tmp: Path) -> Any:
    creds = [{"name": "ops", "token": {"env": "OPS"}, "allow": ["*"]}]
    deployments = {
        "one": {"provider": "echo", "model": "echo-one"},
        "two": {"provider": "echo", "model": "echo-two"},
    }
    policy = {
        "default_route": "chat",
        "deployments": deployments,
        "routes": {"chat": {"deployments": ["one", "two"]}},
        "experiments": {"tone": copy.deepcopy(EXPERIMENT)},
        "personas": {
            "personas": [{"id": "maya", "name": "Maya", "system_prompt": "You are Maya's assistant."}]
        },
        "answers": {"agents": {"maya": {"creators": ["ops"]}}},
        "tiers": {
            "free": {
                "requests_per_minute": 1_000_000,
                "limits": [{"name": "tokens-day", "metric": "tokens", "window": "day", "limit": 1e12}],
            }
        },
    }
    settings = {
        "listen": {"address": "127.0.0.1:0"},
        "auth": {"token": {"env": "APP"}, "credentials": creds},
        "admin": {"mode": "listener"},
        "keys": local_keys(tmp),
        "telemetry": quiet_telemetry(tmp),
    }
    return make_config({"settings": settings, "policy": policy}, {"APP": APP_TOKEN, "OPS": OPS_TOKEN}, tmp)


@dataclass
class Fuzzed:
    """The served sidecar, a channel to it, and every log record since it started."""

    channel: grpc.Channel
    logs: LogTap

    def raw(
        self, name: str, data: bytes, metadata: Sequence[tuple[str, str | bytes]] | None = None
    ) -> grpc.RpcError | None:
        """Call `name` with these request bytes; the error, or None when it answered."""
        meta = OPS if metadata is None else metadata
        try:
            if METHODS[name].server_streaming:
                call = self.channel.unary_stream(
                    path_of(name), request_serializer=None, response_deserializer=None
                )
                for _ in call(data, metadata=meta, timeout=30):
                    pass
            else:
                call = self.channel.unary_unary(
                    path_of(name), request_serializer=None, response_deserializer=None
                )
                call(data, metadata=meta, timeout=30)
        except grpc.RpcError as err:
            return err
        return None

    def used(self) -> list[tuple[str, int, int]]:
        """What the fuzz user has used and holds reserved of every limit."""
        reply = quota_pb2.GetQuotaResponse.FromString(
            self.channel.unary_unary(path_of("GetQuota"))(
                BASELINES["GetQuota"].SerializeToString(), metadata=OPS, timeout=30
            )
        )
        return [(limit.name, limit.used, limit.reserved) for limit in reply.limits]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with (
        LogTap() as logs,
        ThreadedSidecar(config(tmp)) as served,
        grpc.insecure_channel(served.target) as channel,
    ):
        yield Fuzzed(channel, logs)


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    reason: str
    fields: list[str]


def refusal(err: grpc.RpcError) -> Refusal:
    """The rich status a client decodes: exactly one ErrorInfo, the message equal to the details."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, f"no rich status on {err.code()}: {err.details()}"  # type: ignore[attr-defined]
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, "exactly one ErrorInfo"
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return Refusal(err.code(), info.reason, fields)  # type: ignore[attr-defined]


def assert_quiet(fuzzed: Fuzzed, mark: int, what: str) -> None:
    """No record at ERROR or above, no traceback, no canary since `mark`."""
    for record in fuzzed.logs.since(mark):
        written = record_text(record)
        assert record.levelno < logging.ERROR, f"{what}: logged {record.levelname}: {written[:2000]}"
        assert "Traceback" not in written, f"{what}: a traceback was logged: {written[:2000]}"
        for canary in CANARIES:
            assert canary not in written, f"{what}: {canary} reached the log: {written[:2000]}"


def still_serving(fuzzed: Fuzzed, what: str) -> None:
    reply = fuzzed.channel.unary_unary(path_of("ListModels"))(b"", metadata=OPS, timeout=30)
    assert models_pb2.ListModelsResponse.FromString(reply).routes, f"after {what}: no routes"


def expect(
    fuzzed: Fuzzed,
    name: str,
    data: bytes,
    *,
    field: str | None = None,
    reason: str | None = None,
    codes: tuple[grpc.StatusCode, ...] = (grpc.StatusCode.INVALID_ARGUMENT,),
    metadata: Sequence[tuple[str, str | bytes]] | None = None,
    what: str = "",
) -> Refusal | None:
    """Call, then check everything a hostile request must leave true. `field`: a path the refusal
    must name (a prefix of one of its violations); `codes`: what it may answer (OK is None)."""
    what = f"{name} {what}".strip()
    mark = fuzzed.logs.mark()
    err = fuzzed.raw(name, data, metadata)
    got = None if err is None else refusal(err)
    if got is not None:
        assert got.code not in NEVER, f"{what}: {got}"
        assert got.code in codes, f"{what}: {got}"
        if got.code == grpc.StatusCode.INVALID_ARGUMENT:
            assert got.fields, f"{what}: INVALID_ARGUMENT naming no field: {got}"
        if field is not None:
            assert any(f.startswith(field) for f in got.fields), f"{what}: {field} not named: {got}"
        if reason is not None:
            assert got.reason == reason, f"{what}: {got}"
    else:
        assert None in codes, f"{what}: answered OK, expected one of {codes}"
    still_serving(fuzzed, what)
    assert_quiet(fuzzed, mark, what)
    return got


def test_every_method_of_the_protos_is_fuzzed() -> None:
    from sidecar._gen.orchestrator.v1 import (
        admin_service_pb2,
        conversation_service_pb2,
        escalation_service_pb2,
        experiment_service_pb2,
        generation_service_pb2,
        key_service_pb2,
        quota_service_pb2,
    )

    modules = (
        admin_service_pb2,
        conversation_service_pb2,
        escalation_service_pb2,
        experiment_service_pb2,
        generation_service_pb2,
        key_service_pb2,
        quota_service_pb2,
    )
    declared = {
        m.name for mod in modules for s in mod.DESCRIPTOR.services_by_name.values() for m in s.methods
    }
    assert declared == set(BASELINES) == set(METHODS)
    for name, request in BASELINES.items():
        assert request.DESCRIPTOR is METHODS[name].input_type, name


ALL = sorted(BASELINES)


@pytest.mark.parametrize("name", ALL)
def test_bytes_that_are_not_the_request_are_invalid_argument(fuzzed: Fuzzed, name: str) -> None:
    valid = BASELINES[name].SerializeToString()
    broken = {
        "garbage": b"\xff\xff\xff\xff\xff\xff",
        "length past the end": length_delimited(1, b"abc")[:-2],
        "valid then truncated mid-field": valid + length_delimited(2, b"x" * 40)[:10],
        "field number zero": tag(0, WIRE_VARINT) + b"\x01",
        "group never ended": tag(1, WIRE_SGROUP),
        "varint of eleven bytes": tag(1, WIRE_VARINT) + b"\xff" * 10 + b"\x01",
        "fixed64 cut short": tag(1, WIRE_I64) + b"\x01\x02",
    }
    for what, data in broken.items():
        if what == "field number zero" and not METHODS[name].input_type.fields:
            # protobuf's parser skips everything of a message without fields, even this
            expect(fuzzed, name, data, codes=(None, grpc.StatusCode.INVALID_ARGUMENT), what=what)
            continue
        expect(fuzzed, name, data, reason="MALFORMED_REQUEST", field="", what=what)


@pytest.mark.parametrize("name", ALL)
def test_unknown_fields_and_wrong_wire_types_are_tolerated(fuzzed: Fuzzed, name: str) -> None:
    """Unknown fields are skipped (forward compatibility) and a known field sent with another wire
    type is an unknown field to protobuf: the answer is the baseline's, or a named refusal."""
    valid = BASELINES[name].SerializeToString()
    anything = (
        None,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    unknown = (
        tag(999, WIRE_VARINT)
        + varint(7)
        + length_delimited(1000, b"\x00\xff")
        + tag(1001, WIRE_I32)
        + b"abcd"
    )
    expect(fuzzed, name, valid + unknown, codes=anything, what="unknown fields")
    for field in BASELINES[name].DESCRIPTOR.fields:
        wrong = (
            WIRE_VARINT if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE) else 2
        )
        data = valid + (
            tag(field.number, wrong) + varint(1)
            if wrong == WIRE_VARINT
            else length_delimited(field.number, b"z")
        )
        expect(fuzzed, name, data, codes=anything, what=f"{field.name} with wire type {wrong}")


@pytest.mark.parametrize("name", ALL)
def test_strings_that_are_not_utf8_are_named(fuzzed: Fuzzed, name: str) -> None:
    paths = list(string_paths(METHODS[name].input_type))
    for path in paths:
        data = path.encode(BAD_UTF8)
        expect(
            fuzzed,
            name,
            data,
            reason="MALFORMED_REQUEST",
            field=path.expected,
            what=f"{path.expected} not UTF-8",
        )
    if not paths:
        assert not METHODS[name].input_type.fields or name in ("RotateKeys",), name


def set_path(message: Message, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        message = getattr(message, part)
    setattr(message, last, value)


ID_FIELDS = ("tenant_id", "user_id", "conversation_id", "request_id", "escalation_id", "agent_id")
HOSTILE_IDS = ("../../etc/passwd", "a/b", "a\x00b", "\x00", "a b", "x" * 100_000, "tenant\n", "ä")


@pytest.mark.parametrize("name", ALL)
def test_ids_with_path_characters_nul_or_enormous_are_invalid_argument(fuzzed: Fuzzed, name: str) -> None:
    before = fuzzed.used()
    request = BASELINES[name]
    target = (
        request.input if isinstance(request, (gen.GenerateRequest, gen.StreamGenerateRequest)) else request
    )
    prefix = "input." if target is not request else ""
    for field in (f for f in ID_FIELDS if f in target.DESCRIPTOR.fields_by_name):
        for value in HOSTILE_IDS:
            hostile = type(request)()
            hostile.CopyFrom(request)
            set_path(hostile, prefix + field, value)
            expect(
                fuzzed,
                name,
                hostile.SerializeToString(),
                field=prefix + field,
                what=f"{field}={value[:20]!r}",
            )
    assert fuzzed.used() == before


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
        "tool arguments NaN",
        generate(messages=[text("hi"), tool_call('{"a": NaN}')]),
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


def with_fields(name: str, **fields: Any) -> bytes:
    request = type(BASELINES[name])()
    request.CopyFrom(BASELINES[name])
    for key, value in fields.items():
        if isinstance(value, Message):
            getattr(request, key).CopyFrom(value)
        elif isinstance(value, (list, dict)):
            getattr(request, key).extend(value) if isinstance(value, list) else getattr(request, key).update(
                value
            )
        else:
            setattr(request, key, value)
    return request.SerializeToString()


PAGED = (
    "ListModels",
    "ListPersonas",
    "ListSwitchHistory",
    "ListKeys",
    "ListEscalations",
    "ListTenantKeys",
    "GetUsage",
)


@pytest.mark.parametrize("name", PAGED)
def test_page_sizes_and_tokens_out_of_range_are_named(fuzzed: Fuzzed, name: str) -> None:
    for size in (-1, -(2**31), 2**31 - 1, 1_000_001):
        expect(fuzzed, name, with_fields(name, page_size=size), field="page_size", what=f"page_size {size}")
    for token in (
        "garbage",
        "A" * 100_000,
        "\x00",
        "../../",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ):
        expect(
            fuzzed,
            name,
            with_fields(name, page_token=token),
            field="page_token",
            what=f"page_token {token[:12]!r}",
        )


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


HEADERS: list[tuple[str, Sequence[tuple[str, str | bytes]], tuple[grpc.StatusCode, ...]]] = [
    ("no credentials", (), (grpc.StatusCode.UNAUTHENTICATED,)),
    ("a wrong token", (("authorization", f"Bearer {WRONG_TOKEN}"),), (grpc.StatusCode.UNAUTHENTICATED,)),
    (
        "a token with a NUL-free odd scheme",
        (("authorization", f"Basic {WRONG_TOKEN}"),),
        (grpc.StatusCode.UNAUTHENTICATED,),
    ),
    ("an enormous token", (("authorization", "Bearer " + "A" * 7000),), (grpc.StatusCode.UNAUTHENTICATED,)),
    (
        "binary authorization",
        (("authorization-bin", WRONG_TOKEN.encode()),),
        (grpc.StatusCode.UNAUTHENTICATED,),
    ),
    (
        "many headers",
        tuple((f"x-h{i}", "v" * 50) for i in range(60)) + APP,
        (None, grpc.StatusCode.INVALID_ARGUMENT),
    ),
]


@pytest.mark.parametrize("what,metadata,codes", HEADERS, ids=[h[0] for h in HEADERS])
def test_hostile_metadata_headers(
    fuzzed: Fuzzed, what: str, metadata: Sequence[tuple[str, str | bytes]], codes: tuple[grpc.StatusCode, ...]
) -> None:
    before = fuzzed.used()
    for name in ("Generate", "GetQuota", "Embed"):
        expect(fuzzed, name, BASELINES[name].SerializeToString(), metadata=metadata, codes=codes, what=what)
    if None not in codes:
        assert fuzzed.used() == before


def test_headers_past_the_transport_limit_leave_the_server_up(fuzzed: Fuzzed) -> None:
    """Metadata past grpc's header limit is refused by the transport before any RPC code runs."""
    huge = (("x-big", "v" * 64 * 1024), *APP)
    mark = fuzzed.logs.mark()
    err = fuzzed.raw("Generate", BASELINES["Generate"].SerializeToString(), huge)
    assert err is not None and err.code() not in NEVER, err  # type: ignore[attr-defined]
    still_serving(fuzzed, "a 64 KiB header")
    assert_quiet(fuzzed, mark, "a 64 KiB header")


# Property-based: random requests from the descriptors, with hostile scalars.
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", "\x00", "../..", "a/b", "x" * 5000, "key_AAAAAAAAAAAA", "echo", "maya", TENANT, USER]
    ),
)
HOSTILE_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e308, -1.0])
)
INT32 = st.one_of(st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, -1, 1, 2**31 - 1]))
INT64 = st.integers(-(2**63), 2**63 - 1)


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return HOSTILE_TEXT
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return HOSTILE_FLOAT if kind == FieldDescriptor.TYPE_DOUBLE else st.floats(width=32)
    if kind == FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), INT32)
    if kind in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return INT64
    if kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    return INT32


def message_strategy(descriptor: Any, depth: int = 3) -> st.SearchStrategy[bytes]:
    """Serialized messages of `descriptor` with a random subset of fields set to hostile values."""
    cls = _class(descriptor)
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            parts[field.name] = st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=4)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth <= 0 or field.message_type.full_name == "google.protobuf.Struct":
                continue
            inner = message_strategy(field.message_type, depth - 1)
            parts[field.name] = st.lists(inner, max_size=3) if field.is_repeated else inner
        else:
            parts[field.name] = st.lists(scalar(field), max_size=4) if field.is_repeated else scalar(field)

    @st.composite
    def build(draw: Callable[..., Any]) -> bytes:
        chosen = draw(st.sets(st.sampled_from(sorted(parts)), max_size=len(parts))) if parts else set()
        message = cls()
        for name in sorted(chosen):
            _assign(message, descriptor.fields_by_name[name], draw(parts[name]))
        return bytes(message.SerializeToString())

    return build()


def _class(descriptor: Any) -> Any:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    target = getattr(message, field.name)
    is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
    if is_map:
        target.update(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.is_repeated:
            for item in value:
                target.add().MergeFromString(item)
        else:
            target.MergeFromString(value)
            if not value:
                target.SetInParent()
    elif field.is_repeated:
        target.extend(value)
    else:
        setattr(message, field.name, value)


ANSWERS = (
    None,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # a random tenant may hit a real limit
)


@pytest.mark.parametrize("name", ALL)
def test_random_requests_get_a_classified_answer(fuzzed: Fuzzed, name: str) -> None:
    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(message_strategy(METHODS[name].input_type))
    def check(data: bytes) -> None:
        expect(fuzzed, name, data, codes=ANSWERS, what="random")

    check()


def test_the_log_tap_hears_the_sidecar(fuzzed: Fuzzed) -> None:
    """The log assertions above are live: the sidecar's own records reach the tap."""
    expect(fuzzed, "Generate", b"\xff\xff", reason="MALFORMED_REQUEST", field="")
    assert any(r.name.startswith("sidecar") for r in fuzzed.logs.records)
