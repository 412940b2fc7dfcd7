"""Structured output: an answer asked for as JSON (response_format json_object / json_schema) is
checked once it is complete, with the `jsonschema` library, before the final chunk goes on.

Deltas pass through as they come (a stream shows the JSON as it is written); only the final chunk
is held until the whole text validated. An answer that does not validate ends the call with
UNAVAILABLE / SCHEMA_VALIDATION_FAILED (the model's output, not the caller's request, is at fault;
a retry may produce a valid answer), so the response cache, which sits outside, never stores it.
An answer that stopped at max_tokens is reported as such (its JSON is cut, not wrong).
A route with `schema_retry` has the route layer inside retry such an answer once on another
deployment before anything reaches this layer (sidecar/pipeline/route.py); what still fails here
is the caller's error.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from sidecar.core.layer import Handler, inner_stream
from sidecar.core.types import Call, Chunk
from sidecar.structured.check import AnswerCheck


class StructuredOutputLayer:
    def __init__(self, inner: Handler) -> None:
        self._inner = inner

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        check = AnswerCheck.of(call.params.response_format)
        if check is None:
            return self._inner(call)  # nothing to check: no generator hop
        return self._checked(call, check)

    async def _checked(self, call: Call, check: AnswerCheck) -> AsyncGenerator[Chunk, None]:
        texts: list[str] = []
        async with inner_stream(self._inner, call) as stream:
            async for chunk in stream:
                texts.append(chunk.text)
                if chunk.is_final:
                    problem = check.problem("".join(texts), chunk.finish_reason)
                    if problem is not None:
                        raise check.error(problem)
                yield chunk
