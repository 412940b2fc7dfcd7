"""What Converse answers and ConverseStream sends, as chunks: text, tool calls, finish, usage.

A model's `toolUse` blocks (`toolUseId`, `name`, `input` object) are tool calls; streamed, a
`contentBlockStart` with `start.toolUse` opens a call and `contentBlockDelta`s with
`delta.toolUse.input` append its arguments (partial JSON text). What an application could not send
back is the upstream's fault, never the caller's (PROVIDER_BAD_RESPONSE): a call without its id or
name, an input that is not a JSON object (streamed: its pieces at a `tool_use` stop), more than
MAX_TOOL_INPUT_CHARS of input, more than MAX_TOOL_CALLS calls, a delta for a block never started.
A call that asked for JSON gets the input of the answer tool (bedrock_wire.answer_tool) as its
text, and text blocks beside it are not the answer. `reasoningContent` blocks (Claude's extended
thinking) are thinking, not text: a block's text and signature, or its redacted content, kept to go
back with the turn's tool calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from sidecar.core.errors import (
    ModelOutputError,
    ProviderAuthError,
    ProviderError,
    ProviderMalformedError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from sidecar.core.types import Chunk, FinishReason, ThinkingBlock, ToolCallDelta, Usage
from sidecar.providers._http import decode_json
from sidecar.providers.base import answer_string, token_count
from sidecar.providers.finish import unknown_finish
from sidecar.providers.stream import StreamEvent
from sidecar.providers.upstream_errors import redact

STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "guardrail_intervened": FinishReason.CONTENT_FILTER,
    "content_filtered": FinishReason.CONTENT_FILTER,
}
# The stopReasons of output the model wrote wrong (not text, nor a tool call it can send back).
MALFORMED_OUTPUT = frozenset({"malformed_model_output", "malformed_tool_use"})
# The most argument text one tool call may carry: what the sidecar takes back from an application
# in a tool call (sidecar/api/content.py MAX_ARGUMENTS_CHARS), so memory and the application can
# send every answered call back.
MAX_TOOL_INPUT_CHARS = 256 * 1024
MAX_TOOL_CALLS = 64  # in one answer: an application sends a message of at most 64 parts back
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_CALL_ID = 128
# Each call of an answer has its own id: the application's results name the call they answer, and
# Converse and Anthropic refuse a history whose calls share one.
_SAME_ID = "two toolUse blocks of one answer with the same toolUseId"
_EXCEPTIONS: dict[str, type[ProviderError]] = {
    "throttlingException": ProviderRateLimitedError,
    "validationException": ProviderRejectedError,
    "accessDeniedException": ProviderAuthError,
    "modelTimeoutException": ProviderTimeoutError,
}


@dataclass(frozen=True, slots=True)
class EventMessage:
    """One decoded event-stream message: its headers (`:message-type`, `:event-type`, ...) and payload."""

    headers: Mapping[str, Any]
    payload: bytes


def parse_usage(data: Any) -> Usage:
    """Converse usage: inputTokens leaves out cache reads and writes, which are prompt tokens too."""
    if not isinstance(data, dict):
        raise ProviderMalformedError("usage is not an object")
    read = token_count(data.get("cacheReadInputTokens"))
    written = token_count(data.get("cacheWriteInputTokens"))
    return Usage(
        prompt_tokens=token_count(data.get("inputTokens")) + read + written,
        completion_tokens=token_count(data.get("outputTokens")),
        cached_tokens=read,
    )


def _finish(reason: Any) -> FinishReason:
    """A stopReason (absent: the end of the turn). Output the model wrote wrong is a bad answer, as
    Gemini's malformed function call is (another deployment may do better); a reason Converse added
    since is not vouched for as a complete answer: CONTENT_FILTER."""
    if reason is None:
        return FinishReason.STOP
    if not isinstance(reason, str):
        raise ProviderMalformedError("stopReason is not a string")
    if reason in MALFORMED_OUTPUT:
        raise ModelOutputError(f"the model's output was unusable ({reason})")
    return STOP_REASONS.get(reason) or unknown_finish("bedrock", reason, FinishReason.CONTENT_FILTER)


def parse_response(data: Any, answer: str | None = None) -> Chunk:
    """A complete Converse answer -> one final Chunk. The input of a call of the `answer` tool (a
    call that asked for JSON: bedrock_wire.answer_tool) is the answer's text, not a tool call."""
    try:
        blocks = data["output"]["message"]["content"]
    except (KeyError, TypeError) as exc:
        raise ProviderMalformedError("converse answer without output.message.content") from exc
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise ProviderMalformedError("output.message.content is not a list of blocks")
    uses = [_tool_use(i, b["toolUse"], whole=True) for i, b in enumerate(b for b in blocks if "toolUse" in b)]
    if len(uses) > MAX_TOOL_CALLS:
        raise ModelOutputError(f"more than {MAX_TOOL_CALLS} toolUse blocks in one answer")
    if len({u.id for u in uses}) < len(uses):
        raise ProviderMalformedError(_SAME_ID)
    own = [u for u in uses if u.name != answer]
    calls = tuple(ToolCallDelta(i, u.id, u.name, u.arguments) for i, u in enumerate(own))
    finish = _finish(data.get("stopReason"))
    if answer is None:
        text = "".join(b["text"] for b in blocks if isinstance(b.get("text"), str))
    else:  # the answer is the tool's input; text beside it is not
        text = next((u.arguments for u in uses if u.name == answer), "")
        if text and not calls and finish is FinishReason.TOOL_CALLS:
            finish = FinishReason.STOP  # it answered, and called nothing
    usage = parse_usage(data["usage"]) if data.get("usage") else None
    reasoning = [b["reasoningContent"] for b in blocks if "reasoningContent" in b]
    signed = tuple(_signed(r) for r in reasoning)
    thinking = "".join(b.text for b in signed)
    return Chunk(
        text=text,
        finish_reason=finish,
        usage=usage,
        tool_calls=calls,
        thinking=thinking,
        thinking_blocks=tuple(b for b in signed if b.signature or b.redacted),
    )


def _signed(block: Any) -> ThinkingBlock:
    """A reasoningContent block: its text and signature, or its redacted content (as it came)."""
    if not isinstance(block, dict):
        raise ProviderMalformedError("a reasoningContent block is not an object")
    if "redactedContent" in block:
        return ThinkingBlock(
            redacted=answer_string(block["redactedContent"], "reasoningContent.redactedContent")
        )
    reasoning = block.get("reasoningText")
    if not isinstance(reasoning, dict):
        raise ProviderMalformedError("a reasoningContent block without reasoningText")
    text = answer_string(reasoning.get("text", ""), "reasoningText.text")
    return ThinkingBlock(
        text=text, signature=answer_string(reasoning.get("signature", ""), "reasoningText.signature")
    )


def _tool_use(index: int, use: Any, *, whole: bool) -> ToolCallDelta:
    """A toolUse block as a tool call (a stream's start: its id and name, no input yet)."""
    if not isinstance(use, dict):
        raise ProviderMalformedError("a toolUse block is not an object")
    call_id, name = use.get("toolUseId"), use.get("name")
    if not isinstance(call_id, str) or not 1 <= len(call_id) <= _MAX_CALL_ID:
        raise ProviderMalformedError("a toolUse block without its toolUseId")
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        raise ProviderMalformedError("a toolUse block without a tool name")
    if not whole:
        return ToolCallDelta(index, call_id, name)
    arguments = use.get("input")
    if not isinstance(arguments, dict):
        raise ProviderMalformedError("a toolUse input is not a JSON object")
    try:
        text = json.dumps(arguments, ensure_ascii=False)
    except RecursionError as exc:  # parsed within the JSON parser's depth, too deep to write back
        raise ModelOutputError("a toolUse input nested too deeply") from exc
    if len(text) > MAX_TOOL_INPUT_CHARS:
        raise ModelOutputError(f"a toolUse input longer than {MAX_TOOL_INPUT_CHARS} characters")
    return ToolCallDelta(index, call_id, name, text)


class StreamParser:
    """One ConverseStream's messages -> what each means. Holds the stream's tool calls (block index
    -> the input pieces so far), so a delta for a block never started, a block started twice, too
    much input, or an input that is not a JSON object when the model stops to use tools is a bad
    answer, never a call the application cannot send back."""

    def __init__(self, answer: str | None = None) -> None:
        self._answer = answer  # the tool whose input is the answer's text (a call asking for JSON)
        self._inputs: dict[int, list[str]] = {}
        self._sizes: dict[int, int] = {}
        self._answers: set[int] = set()  # the blocks of the answer tool
        self._ids: set[str] = set()  # the toolUseIds so far

    def __call__(self, message: EventMessage) -> StreamEvent:
        kind = message.headers.get(":message-type")
        if kind == "exception":
            _raise_exception(str(message.headers.get(":exception-type", "")), message.payload)
        if kind == "error":
            code = redact(str(message.headers.get(":error-code", "")))
            raise ProviderUnavailableError(
                f"upstream stream error {code}: {redact(str(message.headers.get(':error-message', '')))}"
            )
        if kind != "event":
            raise ProviderMalformedError("event-stream message without a known :message-type")
        event = message.headers.get(":event-type")
        if event in ("messageStart", "contentBlockStop"):
            return StreamEvent()
        payload = decode_json(message.payload.decode("utf-8", errors="replace"))
        if not isinstance(payload, dict):
            raise ProviderMalformedError("event payload is not an object")
        if event == "contentBlockStart":
            return self._start(payload)
        if event == "contentBlockDelta":
            return self._delta(payload)
        if event == "messageStop":
            return self._stop(payload)
        if event == "metadata":
            return StreamEvent(usage=parse_usage(payload.get("usage") or {}))
        return StreamEvent()  # event types added later are skipped

    def _start(self, payload: dict[str, Any]) -> StreamEvent:
        start = payload.get("start")
        if not isinstance(start, dict) or "toolUse" not in start:
            return StreamEvent()  # another kind of block: its deltas say what it holds
        index = _index(payload)
        if index in self._inputs:
            raise ProviderMalformedError(f"content block {index} started twice")
        if len(self._inputs) == MAX_TOOL_CALLS:
            raise ModelOutputError(f"more than {MAX_TOOL_CALLS} toolUse blocks in one answer")
        call = _tool_use(index, start["toolUse"], whole=False)
        if call.id in self._ids:
            raise ProviderMalformedError(_SAME_ID)
        self._ids.add(call.id)
        self._inputs[index], self._sizes[index] = [], 0
        if call.name == self._answer:
            self._answers.add(index)
            return StreamEvent()
        return StreamEvent(tool_calls=(call,))

    def _delta(self, payload: dict[str, Any]) -> StreamEvent:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            raise ProviderMalformedError("contentBlockDelta without its delta object")
        if isinstance(delta.get("text"), str):  # asked for JSON: the answer tool's input is the text
            return StreamEvent(text=delta["text"] if self._answer is None else "")
        if "reasoningContent" in delta:
            return _reasoning(delta["reasoningContent"])
        if "toolUse" not in delta:
            return StreamEvent()  # kinds added later
        index = _index(payload)
        if index not in self._inputs:
            raise ProviderMalformedError(f"a toolUse delta for content block {index}, never started")
        use = delta["toolUse"]
        piece = use.get("input") if isinstance(use, dict) else None
        if not isinstance(piece, str):
            raise ProviderMalformedError("a toolUse delta whose input is not text")
        self._sizes[index] += len(piece)
        if self._sizes[index] > MAX_TOOL_INPUT_CHARS:
            raise ModelOutputError(f"a toolUse input longer than {MAX_TOOL_INPUT_CHARS} characters")
        self._inputs[index].append(piece)
        if index in self._answers:
            return StreamEvent(text=piece)
        return StreamEvent(tool_calls=(ToolCallDelta(index, arguments=piece),))

    def _stop(self, payload: dict[str, Any]) -> StreamEvent:
        """The finish; a model that stops to use tools must have sent each call's input whole (one
        cut by max_tokens is the model's, kept as it came: providers/tool_arguments.py)."""
        reason = payload.get("stopReason")
        if reason == "tool_use":
            for index, pieces in self._inputs.items():
                if not _is_object("".join(pieces)):
                    raise ProviderMalformedError(f"the toolUse input of block {index} is not a JSON object")
            if self._answers and self._answers == set(self._inputs):  # it answered, and called nothing
                return StreamEvent(finish_reason=FinishReason.STOP)
        return StreamEvent(finish_reason=_finish(reason))


def _reasoning(delta: Any) -> StreamEvent:
    """A piece of thinking, the signature that ends its block, or a redacted block."""
    if not isinstance(delta, dict):
        raise ProviderMalformedError("a reasoningContent delta is not an object")
    if "text" in delta:
        return StreamEvent(thinking=answer_string(delta["text"], "reasoningContent.text"))
    if "signature" in delta:
        return StreamEvent(thinking_signature=answer_string(delta["signature"], "reasoningContent.signature"))
    if "redactedContent" in delta:
        return StreamEvent(
            redacted_thinking=answer_string(delta["redactedContent"], "reasoningContent.redactedContent")
        )
    return StreamEvent()


def _is_object(text: str) -> bool:
    if not text:
        return True  # a call without arguments
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:  # too deep for the parser too
        return False


def _index(payload: dict[str, Any]) -> int:
    index = payload.get("contentBlockIndex")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ProviderMalformedError("a content block event without its contentBlockIndex")
    return index


def _raise_exception(kind: str, payload: bytes) -> None:
    try:
        message = redact(str(orjson.loads(payload).get("message", "")))  # too deep: a ValueError too
    except (ValueError, AttributeError):
        message = ""
    error = _EXCEPTIONS.get(kind, ProviderUnavailableError)
    raise error(
        f"upstream {kind or 'exception'}: {message}"
        if error is not ProviderAuthError
        else "upstream: access denied"
    )
