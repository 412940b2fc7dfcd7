"""The check of a complete answer against the format its request asked for (response_format
json_object or json_schema), shared by the structured-output layer (which ends a call whose answer
fails it) and the route layer (which, by route policy, retries such an answer on another deployment).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sidecar.core.errors import Code, SidecarError
from sidecar.core.types import Chunk, FinishReason, ResponseFormat
from sidecar.structured.schema import answer_problem

SCHEMA_VALIDATION_FAILED = "SCHEMA_VALIDATION_FAILED"


class SchemaValidationError(SidecarError):
    """The model's answer is not the JSON the request's response_format asked for."""

    code = Code.UNAVAILABLE
    reason = SCHEMA_VALIDATION_FAILED
    retryable = True


@dataclass(frozen=True, slots=True)
class AnswerCheck:
    """A JSON object is required; with a schema, one valid against it (parsed once per call)."""

    schema: dict[str, Any] | None

    @classmethod
    def of(cls, fmt: ResponseFormat | None) -> AnswerCheck | None:
        """The check a request's response_format asks for; None for plain text."""
        if fmt is None or fmt.kind == "text":
            return None
        return cls(json.loads(fmt.schema_json) if fmt.schema_json else None)

    def problem(self, text: str, finish: FinishReason | None) -> str | None:
        """Why the complete answer does not pass, or None. A tool call is not an answer to check, and
        neither is a refusal or a filtered answer (CONTENT_FILTER): it reaches the caller as what it
        is, as OpenAI's structured outputs deliver a refusal, instead of failing as "not JSON"."""
        if finish in (FinishReason.TOOL_CALLS, FinishReason.CONTENT_FILTER):
            return None
        problem = answer_problem(text, self.schema)
        if problem is not None and finish is FinishReason.LENGTH:
            return f"the answer stopped at max_tokens before its JSON was complete ({problem})"
        return problem

    def retry_problem(self, chunks: Iterable[Chunk]) -> str | None:
        """Why a complete answer may be retried elsewhere: only one that finished normally (STOP) and
        failed the check. A cut (max_tokens) or filtered answer would be cut or filtered again."""
        held = list(chunks)
        finish = held[-1].finish_reason if held else None
        if finish is not FinishReason.STOP:
            return None
        return self.problem("".join(c.text for c in held), finish)

    def error(self, problem: str) -> SchemaValidationError:
        """The problem quotes the model's answer: it goes to the caller in `metadata.violation`,
        not in the message, which the edge logs with the failed call."""
        return SchemaValidationError(
            "the model's answer does not match the requested format (see metadata.violation)",
            metadata={"violation": problem[:200]},
        )
