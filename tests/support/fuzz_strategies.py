"""Hypothesis strategies for the API fuzz tests: any request message built from its descriptor, with
hostile scalars (text with NUL and path characters, NaN and infinities, the extremes of every
integer type, enum numbers nobody defined); and nearly valid generation requests that reach the
pipeline with a hostile value or two."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from google.protobuf import message_factory, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.support.fuzz_api import TENANT, USER

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


# Nearly valid generation requests: most fields well formed, so the calls reach the pipeline (persona,
# memory, context, quota, cache, route, tools) with one or two values a caller should not send.
JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.floats(), st.integers(-(2**60), 2**60), st.text(max_size=8)
)
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
ROLES = st.sampled_from(
    [gen.ROLE_SYSTEM, gen.ROLE_USER, gen.ROLE_USER, gen.ROLE_ASSISTANT, gen.ROLE_TOOL, 0, 42]
)


def _struct(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


def schemas() -> st.SearchStrategy[struct_pb2.Struct]:
    properties = st.dictionaries(
        st.text(max_size=6), st.fixed_dictionaries({"type": st.sampled_from(["string", "x"])})
    )
    good = st.builds(lambda p: {"type": "object", "properties": p}, properties)
    return st.one_of(good, st.dictionaries(st.text(max_size=6), JSON, max_size=4)).map(_struct)


def parts() -> st.SearchStrategy[gen.ContentPart]:
    call = st.builds(
        gen.ToolCall,
        id=st.sampled_from(["call_1", "", "x" * 200]),
        name=st.sampled_from(["lookup", "", "a b"]),
        arguments=st.one_of(JSON.map(json_text), st.text(max_size=12)),
    )
    image = st.builds(
        gen.Image,
        url=st.sampled_from(
            ["https://example.com/a.png", "file:///etc/passwd", "data:image/png;base64,AAAA"]
        ),
        width=st.integers(-5, 200_000),
    )
    return st.one_of(
        st.builds(gen.ContentPart, text=st.text(min_size=0, max_size=30)),
        st.builds(gen.ContentPart, tool_call=call),
        st.builds(gen.ContentPart, image=image),
    )


def json_text(value: Any) -> str:
    """JSON text the way a client library writes it (NaN and infinities as Python's json does)."""
    return json.dumps(value)


def configs() -> st.SearchStrategy[gen.GenerationConfig]:
    optional_float = st.one_of(st.none(), st.floats(), st.floats(0, 2))
    return st.builds(
        lambda max_tokens, temperature, top_p, stop, seed, budget: gen.GenerationConfig(
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            stop=stop,
            seed=seed,
            reasoning=None
            if budget is None
            else gen.ReasoningConfig(budget_tokens=budget, effort=budget % 5),
        ),
        st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1), st.integers(1, 64)),
        optional_float,
        optional_float,
        st.lists(st.text(max_size=5), max_size=5),
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1), st.just(2048)),
    )


def _user_texts() -> st.SearchStrategy[list[gen.Message]]:
    text = st.text(min_size=1, max_size=40)
    return st.lists(text, min_size=1, max_size=3).map(
        lambda texts: [gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text=t)]) for t in texts]
    )


def _tool_loop() -> st.SearchStrategy[list[gen.Message]]:
    """A user turn, the assistant's call of `lookup` and the tool's result (arguments hostile or not)."""

    def loop(arguments: str, result: str) -> list[gen.Message]:
        call = gen.ToolCall(id="call_1", name="lookup", arguments=arguments)
        return [
            gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text="look it up")]),
            gen.Message(role=gen.ROLE_ASSISTANT, content=[gen.ContentPart(tool_call=call)]),
            gen.Message(role=gen.ROLE_TOOL, tool_call_id="call_1", content=[gen.ContentPart(text=result)]),
        ]

    arguments = st.one_of(
        st.dictionaries(st.text(max_size=5), JSON, max_size=3).map(json_text), st.text(max_size=12)
    )
    return st.builds(loop, arguments, st.text(min_size=1, max_size=20))


def _messages() -> st.SearchStrategy[list[gen.Message]]:
    anything = st.lists(
        st.builds(
            gen.Message,
            role=ROLES,
            content=st.lists(parts(), min_size=1, max_size=2),
            name=st.sampled_from(["", "ann", "a b"]),
            tool_call_id=st.sampled_from(["", "call_1"]),
        ),
        min_size=1,
        max_size=4,
    )
    return st.one_of(_user_texts(), _user_texts(), _tool_loop(), anything)


def _valid_configs() -> st.SearchStrategy[gen.GenerationConfig]:
    return st.builds(
        gen.GenerationConfig,
        max_tokens=st.integers(1, 64),
        temperature=st.floats(0, 2),
        top_p=st.floats(0.01, 1),
        seed=st.integers(-(2**63), 2**63 - 1),
    )


def _tools() -> st.SearchStrategy[list[gen.Tool]]:
    lookup = st.builds(
        gen.Tool, name=st.just("lookup"), description=st.text(max_size=20), parameters=schemas()
    )
    hostile = st.builds(
        gen.Tool, name=st.sampled_from(["lookup", "t2", "", "bad name"]), parameters=schemas()
    )
    return st.one_of(st.just([]), st.lists(lookup, max_size=1), st.lists(hostile, max_size=2))


def generation_inputs() -> st.SearchStrategy[gen.GenerationInput]:
    formats = st.one_of(
        st.none(),
        st.builds(gen.ResponseFormat, json_object=st.just(gen.JsonObjectFormat())),
        st.builds(
            gen.ResponseFormat,
            json_schema=st.builds(gen.JsonSchemaFormat, name=st.just("s"), schema=schemas()),
        ),
    )
    return st.builds(
        gen.GenerationInput,
        messages=_messages(),
        tenant_id=st.just(TENANT),
        user_id=st.sampled_from([USER, "hyp-1", "hyp-2", ""]),
        model=st.sampled_from(["", "", "chat", "nope"]),
        persona_id=st.sampled_from(["", "", "maya", "nobody"]),
        conversation_id=st.sampled_from(["", "", "conv-1", "conv-2"]),
        config=st.one_of(st.none(), _valid_configs(), configs()),
        tools=_tools(),
        tool_choice=st.one_of(
            st.none(), st.none(), st.builds(gen.ToolChoice, name=st.sampled_from(["lookup", "zz"]))
        ),
        response_format=formats,
        cache_mode=st.sampled_from([0, 0, 1, 7]),
        priority=st.sampled_from([0, 0, 1, 3, 99]),
        experiment_variant=st.sampled_from(["", "", "a", "b", "zz"]),
        memory=st.one_of(st.none(), st.booleans()),
        request_id=st.one_of(st.just(""), st.text(alphabet="abc", min_size=1, max_size=3)),
    )
