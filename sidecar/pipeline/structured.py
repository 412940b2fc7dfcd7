"""Structured output: an answer asked for as JSON (response_format json_object / json_schema) is
checked once it is complete, with the `jsonschema` library, before the final chunk goes on.

Deltas pass through as they come (a stream shows the JSON as it is written); only the final chunk
is held until the whole text validated. An answer that does not validate ends the call with
UNAVAILABLE / SCHEMA_VALIDATION_FAILED (the model's output, not the caller's request, is at fault;
a retry may produce a valid answer), so the response cache, which sits outside, never stores it.
An answer that stopped at max_tokens is reported as such (its JSON is cut, not wrong).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

from sidecar.core.errors import Code, SidecarError
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.types import Call, Chunk, FinishReason
from sidecar.structured.schema import answer_problem


class SchemaValidationError(SidecarError):
    """The model's answer is not the JSON the request's response_format asked for."""

    code = Code.UNAVAILABLE
    reason = "SCHEMA_VALIDATION_FAILED"
    retryable = True


class StructuredOutputLayer:
    def __init__(self, inner: Handler) -> None:
        self._inner = inner

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        fmt = call.params.response_format
        if fmt is None or fmt.kind == "text":
            return self._inner(call)  # nothing to check: no generator hop
        return self._checked(call, json.loads(fmt.schema_json) if fmt.schema_json else None)

    async def _checked(self, call: Call, schema: dict[str, object] | None) -> AsyncGenerator[Chunk, None]:
        texts: list[str] = []
        async with inner_stream(self._inner, call) as stream:
            async for chunk in stream:
                texts.append(chunk.text)
                if chunk.is_final and chunk.finish_reason is not FinishReason.TOOL_CALLS:
                    _check("".join(texts), schema, chunk.finish_reason)
                yield chunk


def _check(text: str, schema: dict[str, object] | None, finish: FinishReason | None) -> None:
    problem = answer_problem(text, schema)
    if problem is None:
        return
    if finish is FinishReason.LENGTH:
        problem = f"the answer stopped at max_tokens before its JSON was complete ({problem})"
    raise SchemaValidationError(
        f"the model's answer does not match the requested format: {problem}",
        metadata={"violation": problem[:200]},
    )
