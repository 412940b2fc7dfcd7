"""A real small model (SmolLM2 under llama.cpp's llama-server) behind the sidecar: `make e2e-llm`.

Not part of `make test` (the first run builds llama-server, about 8 minutes). Asserts structure
and token counts, never the exact text a model writes.

No tool-calling case: SmolLM2-135M-Instruct's chat template has no tool section (llama-server's
/props reports supports_tools: false), and this llama-server drops `tools` for it (the rendered
prompt carries no tool and no grammar constrains the answer), so the model can only answer in text.
Tool calls are covered by recorded OpenAI and Anthropic transcripts (tests/integration/test_tools.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import free_port, system, user
from tests.support.api import generate_request, stream_request, text_of

SERVE = Path(__file__).resolve().parents[2] / "scripts" / "serve_small_model.py"


@pytest.fixture(scope="module")
def small_model() -> Iterator[tuple[str, str]]:
    """(base URL, model id) of llama-server serving SmolLM2 on loopback."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVE), "--port", str(free_port())], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("READY "), f"the model server did not start: {line!r}"
        _, url, model = line.split(" ", 2)
        yield url, model.removeprefix("model=")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def policy(url: str, model: str) -> dict[str, Any]:
    return {
        "default_route": "small",
        "deployments": {
            "smollm2": {"provider": "openai", "model": model, "base_url": url, "context_window": 2048}
        },
        "routes": {"small": {"deployments": ["smollm2"]}},
    }


QUESTION = [system("You are a helpful assistant."), user("Name three colours.")]
FINISHED = (gen.FINISH_REASON_STOP, gen.FINISH_REASON_LENGTH)


@pytest.mark.timeout(300)
async def test_generate(serve: Any, small_model: tuple[str, str]) -> None:
    s = await serve({"policy": policy(*small_model)})
    reply = await s.stub.Generate(
        generate_request(
            messages=QUESTION, config=gen.GenerationConfig(max_tokens=24, temperature=0, seed=1)
        ),
        timeout=120,
    )
    summary = reply.summary
    assert text_of(reply).strip()
    assert summary.finish_reason in FINISHED
    assert summary.usage.prompt_tokens > 5
    assert 0 < summary.usage.completion_tokens <= 24
    assert summary.usage.total_tokens == summary.usage.prompt_tokens + summary.usage.completion_tokens
    assert summary.served_by.model == small_model[1]
    assert summary.upstream_latency.ToNanoseconds() > summary.overhead.ToNanoseconds()


@pytest.mark.timeout(300)
async def test_stream_generate(serve: Any, small_model: tuple[str, str]) -> None:
    s = await serve({"policy": policy(*small_model)})
    request = stream_request(
        messages=QUESTION, config=gen.GenerationConfig(max_tokens=24, temperature=0, seed=1)
    )
    events = [e async for e in s.stub.StreamGenerate(request, timeout=120)]
    deltas, summary = events[:-1], events[-1]
    assert len(deltas) >= 2 and all(e.HasField("delta") for e in deltas)
    assert "".join(e.delta.text for e in deltas).strip()
    assert summary.HasField("result")
    usage = summary.result.summary.usage
    assert usage.prompt_tokens > 5 and 0 < usage.completion_tokens <= 24
    assert summary.result.summary.finish_reason in FINISHED
    assert (
        0
        < summary.result.summary.time_to_first_token.ToNanoseconds()
        < summary.result.summary.upstream_latency.ToNanoseconds()
    )


@pytest.mark.timeout(300)
async def test_max_tokens_is_honoured(serve: Any, small_model: tuple[str, str]) -> None:
    s = await serve({"policy": policy(*small_model)})
    reply = await s.stub.Generate(
        generate_request(
            messages=[user("Write a long story about the sea.")], config=gen.GenerationConfig(max_tokens=5)
        ),
        timeout=120,
    )
    assert reply.summary.usage.completion_tokens <= 5
    assert reply.summary.finish_reason == gen.FINISH_REASON_LENGTH


WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temperature_c": {"type": "integer"}},
    "required": ["city", "temperature_c"],
    "additionalProperties": False,
}


def weather_format() -> gen.ResponseFormat:
    schema = struct_pb2.Struct()
    schema.update(WEATHER)
    return gen.ResponseFormat(json_schema=gen.JsonSchemaFormat(name="weather", schema=schema, strict=True))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
async def test_json_schema_answer_validates(serve: Any, small_model: tuple[str, str], stream: bool) -> None:
    """llama.cpp constrains the answer to the schema; the sidecar validates it."""
    s = await serve({"policy": policy(*small_model)})
    fields = dict(
        messages=[user("Give the weather in Paris as JSON.")],
        config=gen.GenerationConfig(max_tokens=64, temperature=0, seed=1),
        response_format=weather_format(),
    )
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(**fields), timeout=120)]
        result = events[-1].result
    else:
        result = await s.stub.Generate(generate_request(**fields), timeout=120)
    answer = json.loads(text_of(result))
    assert set(answer) == {"city", "temperature_c"} and isinstance(answer["temperature_c"], int)
    assert result.summary.finish_reason == gen.FINISH_REASON_STOP
