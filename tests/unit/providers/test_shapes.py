"""An upstream's JSON of the wrong shape is a bad answer (ProviderMalformedError), never a crash.

Every value of every recorded answer and stream event is replaced, one at a time, by values of the
wrong type; each provider's pure parse function must then either accept the answer or raise a
ProviderError. Anything else (TypeError, AttributeError, ...) would reach the caller as INTERNAL,
skip the fallback to the next deployment, and leave the deployment's breaker unfed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from sidecar.core.errors import ProviderError, ProviderMalformedError
from sidecar.providers import anthropic, bedrock, gemini, openai
from sidecar.providers.sse import SseDecoder, SseEvent
from sidecar.providers.stream import parse_answer
from tests.support.upstream import fixture

WRONG: tuple[Any, ...] = (None, "x", 1, -1, 1.5, True, [], ["x"], {}, {"a": 1}, [{}])
Path = tuple[str | int, ...]


def paths(value: Any, prefix: Path = ()) -> Iterator[Path]:
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from paths(inner, (*prefix, key))


def replaced(value: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    value = copy.deepcopy(value)
    parent = value
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = new
    return value


def stream_payloads(name: str) -> list[tuple[str, Any]]:
    """The (event name, JSON payload) of each event of a recorded SSE stream, [DONE] left out."""
    return [
        (event.event, json.loads(event.data))
        for event in SseDecoder().feed(fixture(name) + b"\n\n")
        if event.data.strip() != "[DONE]"
    ]


def cases() -> Iterator[tuple[str, Callable[[Any], object], Any]]:
    for name in ("openai/chat_completion.json", "openai/tool_calls.json", "openai/reasoning.json"):
        yield name, openai.parse_response, json.loads(fixture(name))
    for name in ("openai/stream.sse", "openai/tool_calls_stream.sse"):
        for _, payload in stream_payloads(name):
            yield name, lambda p: openai.parse_event(json.dumps(p)), payload
    for name in ("anthropic/message.json", "anthropic/tool_use.json"):
        yield name, anthropic.parse_response, json.loads(fixture(name))
    for name in ("anthropic/stream.sse", "anthropic/tool_use_stream.sse", "anthropic/thinking_stream.sse"):
        for event, payload in stream_payloads(name):
            yield name, lambda p, e=event: anthropic.parse_event(e, json.dumps(p)), payload
    for name in ("gemini/generate_content.json", "gemini/function_call.json"):
        yield name, gemini.parse_response, json.loads(fixture(name))
    for name in ("gemini/stream.sse", "gemini/function_call_stream.sse"):
        for _, payload in stream_payloads(name):
            yield name, lambda p: gemini.StreamParser()(SseEvent("message", json.dumps(p))), payload
    yield "bedrock/converse.json", bedrock.parse_response, json.loads(fixture("bedrock/converse.json"))


def test_every_wrong_shape_is_a_provider_error_or_accepted() -> None:
    crashes: dict[str, str] = {}
    for name, parse, payload in cases():
        for path in paths(payload):
            for wrong in WRONG:
                try:
                    parse(replaced(payload, path, wrong))
                except ProviderError:
                    pass
                except Exception as exc:  # what the test looks for
                    crashes.setdefault(f"{name} {list(path)} = {wrong!r}", repr(exc))
    assert crashes == {}


@pytest.mark.parametrize(
    "error",
    [TypeError("unhashable"), AttributeError("get"), KeyError("x"), IndexError(0), RecursionError()],
)
def test_a_shape_the_parser_did_not_expect_is_a_malformed_answer(error: Exception) -> None:
    def parse(_: object) -> object:
        raise error

    with pytest.raises(ProviderMalformedError, match="unexpected shape") as info:
        parse_answer(parse, {})
    assert info.value.__cause__ is error


def test_a_tool_input_nested_deeper_than_can_be_written_back_is_a_malformed_answer() -> None:
    """orjson parses up to 1,024 levels; writing the tool input back as arguments text (json.dumps)
    stops at Python's recursion limit: a RecursionError there was a crash (INTERNAL)."""
    nested = b'{"a":' * 1000 + b"{}" + b"}" * 1000
    raw = (
        b'{"type":"message","stop_reason":"tool_use","content":'
        b'[{"type":"tool_use","id":"t1","name":"f","input":' + nested + b"}]}"
    )
    with pytest.raises(ProviderMalformedError, match="nested too deeply"):
        anthropic.parse_response(orjson.loads(raw))


def test_tool_arguments_too_deep_to_read_back_are_the_callers_request_refused() -> None:
    """Anthropic's body carries a tool call's arguments as an object, read back with json.loads,
    which stops near Python's recursion limit (the pipeline's frames count too): a RecursionError
    there was INTERNAL; it is the request refused, nothing sent."""
    from sidecar.config.schema import DeploymentConfig
    from sidecar.core.errors import ProviderRejectedError
    from sidecar.core.types import GenerationParams, Message, Role, ToolCall
    from sidecar.providers.base import ProviderRequest, wire_body

    arguments = '{"a":' * 990 + "{}" + "}" * 990
    messages = (
        Message(Role.USER, "call f"),
        Message(Role.ASSISTANT, "", tool_calls=(ToolCall("c1", "f", arguments),)),
        Message(Role.TOOL, "done", tool_call_id="c1"),
    )
    req = ProviderRequest(messages, GenerationParams(), stream=False)
    deployment = DeploymentConfig(provider="anthropic", model="m")
    with pytest.raises(ProviderRejectedError, match="nothing was sent"):
        wire_body(anthropic.to_wire, req, deployment)
