"""Google Gemini API: generateContent and streamGenerateContent (SSE), API key or service account."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import SecretStr

from sidecar.config.providers import GeminiOptions
from sidecar.config.schema import DeploymentConfig
from sidecar.core.clock import Deadline
from sidecar.core.errors import (
    ModelOutputError,
    ProviderAuthError,
    ProviderMalformedError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from sidecar.core.types import Chunk, FinishReason, ThinkingBlock, ToolCallDelta, Usage
from sidecar.providers import gemini_wire
from sidecar.providers._http import HttpClient, Timeouts, decode_json
from sidecar.providers.base import HttpProvider, ProviderRequest, WireFormat, token_count
from sidecar.providers.finish import unknown_finish
from sidecar.providers.gemini_wire import to_wire
from sidecar.providers.sse import SseEvent
from sidecar.providers.stream import StreamEvent
from sidecar.providers.tokens import TokenSource
from sidecar.providers.upstream_errors import redact

# A function call at most as long as a caller may send it back (the edge's limits on a tool call's
# arguments and id, sidecar/api/content.py), its name as long as Gemini allows (and the edge).
MAX_ARGUMENT_CHARS = 256 * 1024
MAX_ID_CHARS = 128
MAX_NAME_CHARS = 64
# The parts of an answer's message at most (its signature blocks, its text, its calls): the message
# must go back through the edge, which takes at most 64 content parts a message
# (sidecar/api/content.py MAX_CONTENT_PARTS).
MAX_PARTS = 64
# Every finishReason Gemini documents (FinishReason of the GenerateContentResponse reference). The
# ends Gemini chose for the model (a safety or policy block, recitation, an unsupported language,
# "OTHER": a stop it does not explain) are CONTENT_FILTER, as OpenAI's content_filter and Anthropic's
# refusal are: the answer is served as it came (empty or cut), never reported complete or cached.
FINISH_REASONS = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "SAFETY": FinishReason.CONTENT_FILTER,
    "RECITATION": FinishReason.CONTENT_FILTER,
    "LANGUAGE": FinishReason.CONTENT_FILTER,
    "OTHER": FinishReason.CONTENT_FILTER,
    "BLOCKLIST": FinishReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "SPII": FinishReason.CONTENT_FILTER,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER,
    "IMAGE_PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "IMAGE_RECITATION": FinishReason.CONTENT_FILTER,
    "IMAGE_OTHER": FinishReason.CONTENT_FILTER,
}
# Gemini's "unused" default: no finish reported (as an absent field).
UNSPECIFIED = "FINISH_REASON_UNSPECIFIED"
# The finishes of a turn of function calls the model got wrong: another deployment may do better.
UNUSABLE_CALLS = frozenset({"MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS"})


def parse_usage(data: Any) -> Usage:
    """usageMetadata; thinking tokens are billed as output, so they count as completion tokens, and
    are the reasoning tokens (part of the completion tokens, as OpenAI reports them). The cached
    tokens are part of the prompt's: more of them than the prompt has is garbage, as a negative
    count is (the ledger and the usage report would show more than all of a prompt cached)."""
    if not isinstance(data, dict):
        raise ProviderMalformedError("usageMetadata is not an object")
    thoughts = token_count(data.get("thoughtsTokenCount"))
    prompt = token_count(data.get("promptTokenCount"))
    cached = token_count(data.get("cachedContentTokenCount"))
    if cached > prompt:
        raise ProviderMalformedError("usageMetadata counts more cached tokens than prompt tokens")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=token_count(data.get("candidatesTokenCount")) + thoughts,
        cached_tokens=cached,
        reasoning_tokens=thoughts,
    )


@dataclass(frozen=True, slots=True)
class _Candidate:
    """What the first candidate of one (whole or partial) answer says."""

    text: str = ""
    finish: FinishReason | None = None
    calls: tuple[ToolCallDelta, ...] = ()
    signed: tuple[ThinkingBlock, ...] = ()
    thinking: str = ""  # thought summaries (`thought: true` parts, with includeThoughts)


def _candidate(data: Any, first_call: int = 0) -> _Candidate:
    """The first candidate's text (thought parts left out), its function calls (numbered from
    `first_call`), the signatures of its parts and its finish reason; a blocked prompt is a
    content-filter finish with no text."""
    _raise_embedded_error(data)
    if not isinstance(data, dict):
        raise ProviderMalformedError("response is not a GenerateContentResponse")
    feedback = data.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):  # nothing was generated: any
        return _Candidate(finish=FinishReason.CONTENT_FILTER)  # candidate beside it is not the answer
    candidates = data.get("candidates")
    if not candidates:
        return _Candidate()
    if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
        raise ProviderMalformedError("candidates is not a list of objects")
    first = candidates[0]
    content = first.get("content") or {}
    if not isinstance(content, dict):
        raise ProviderMalformedError("candidates[0].content is not an object")
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise ProviderMalformedError("candidates[0].content.parts is not a list")
    response_id = data.get("responseId")
    c = _parts(parts, first_call, response_id if isinstance(response_id, str) else "")
    return dataclasses.replace(c, finish=_finish(first.get("finishReason"), bool(c.calls)))


def _parts(parts: list[Any], first_call: int, response_id: str) -> _Candidate:
    """The answer text of the parts, their function calls, their signatures (each naming the part
    it came on) and the text of thought parts (thought summaries: thinking, not the answer)."""
    thinking: list[str] = []
    text: list[str] = []
    calls: list[ToolCallDelta] = []
    signed: list[ThinkingBlock] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        if part.get("thought"):
            thinking += [part["text"]] if isinstance(part.get("text"), str) else []
            continue
        call_id = ""
        if "functionCall" in part:
            if first_call + len(calls) >= MAX_PARTS:
                raise ModelOutputError(_TOO_MANY)
            calls.append(_function_call(first_call + len(calls), part["functionCall"], response_id))
            call_id = calls[-1].id
        elif isinstance(part.get("text"), str):
            text.append(part["text"])
        if signature := part.get("thoughtSignature"):
            if not isinstance(signature, str):
                raise ProviderMalformedError("a part's thoughtSignature is not a string")
            signed.append(gemini_wire.signed_block(signature, call_id))
    _check_ids(calls)
    return _Candidate("".join(text), None, tuple(calls), tuple(signed), "".join(thinking))


def _check_ids(calls: list[ToolCallDelta], seen: frozenset[str] = frozenset()) -> None:
    """Each call of an answer has its own id: the application's results name the call they answer,
    and Anthropic and Converse refuse a history whose calls share one."""
    ids = [c.id for c in calls]
    if len(set(ids)) < len(ids) or seen.intersection(ids):
        raise ProviderMalformedError("two functionCalls of one answer with the same id")


_TOO_MANY = f"an answer of more than {MAX_PARTS} parts (function calls, signatures, text)"


def _check_parts(calls: int, signed: int, text: bool) -> None:
    if calls + signed + text > MAX_PARTS:
        raise ModelOutputError(_TOO_MANY)


def _finish(reason: Any, called: bool) -> FinishReason | None:
    """A finishReason; Gemini ends a turn of function calls with STOP, which is a tool-calls finish.
    A function call the model wrote wrong is a bad answer (another deployment may do better). A
    reason Gemini added since is not vouched for as a complete answer: CONTENT_FILTER."""
    if not isinstance(reason, str) or not reason or reason == UNSPECIFIED:
        return None
    if reason in UNUSABLE_CALLS:
        raise ModelOutputError(f"the model's function call was unusable ({reason})")
    finish = FINISH_REASONS.get(reason) or unknown_finish("gemini", reason, FinishReason.CONTENT_FILTER)
    return FinishReason.TOOL_CALLS if called and finish is FinishReason.STOP else finish


def _function_call(index: int, call: Any, response_id: str) -> ToolCallDelta:
    """A functionCall part as a whole tool call: its name, its `args` object as JSON text, its id
    (one made up when Gemini gave none: the caller's result must name the call it answers). Errors
    never quote the call: the model's output does not go to the log."""
    if not isinstance(call, dict):
        raise ProviderMalformedError("a functionCall is not an object")
    name, args, call_id = call.get("name"), call.get("args"), call.get("id")
    if not isinstance(name, str) or not name:
        raise ProviderMalformedError("a functionCall without its name")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProviderMalformedError("a functionCall's args is not an object")
    if call_id is not None and not (isinstance(call_id, str) and len(call_id) <= MAX_ID_CHARS):
        raise ProviderMalformedError(f"a functionCall's id is not a string of at most {MAX_ID_CHARS}")
    if len(name) > MAX_NAME_CHARS:  # the model's own words, past the sidecar's bounds, from here on
        raise ModelOutputError(f"a functionCall name longer than {MAX_NAME_CHARS} characters")
    try:
        arguments = json.dumps(args, ensure_ascii=False)
    except RecursionError as exc:  # parsed within the JSON parser's depth, too deep to write back
        raise ModelOutputError("a functionCall's args nested too deeply") from exc
    except ValueError as exc:  # NaN or Infinity: not JSON, the wire's
        raise ProviderMalformedError("a functionCall's args cannot be written as JSON") from exc
    if len(arguments) > MAX_ARGUMENT_CHARS:
        raise ModelOutputError(f"a functionCall's args longer than {MAX_ARGUMENT_CHARS} characters")
    return ToolCallDelta(index, call_id or _made_up_id(response_id, index, name, arguments), name, arguments)


def _made_up_id(response_id: str, index: int, name: str, arguments: str) -> str:
    """An id for a call Gemini gave none: the answer's responseId (unique per answer) and the call's
    place in it, so the same answer gives the same ids (parsing stays pure); the call itself when
    an answer has no responseId."""
    seed = response_id or f"{name}\0{arguments}"
    digest = hashlib.sha256(f"{seed}\0{index}".encode("utf-8", "surrogatepass")).hexdigest()
    return gemini_wire.SYNTHETIC_ID_PREFIX + digest[:16]


def parse_response(data: Any) -> Chunk:
    """A complete generateContent answer -> one final Chunk."""
    c = _candidate(data)
    if c.finish is None and not (c.text or c.calls or c.thinking):
        raise ProviderMalformedError("response has neither candidates nor a block reason")
    usage = parse_usage(data["usageMetadata"]) if data.get("usageMetadata") else None
    _check_parts(len(c.calls), len(c.signed), bool(c.text))
    finish = c.finish or (FinishReason.TOOL_CALLS if c.calls else FinishReason.STOP)
    return Chunk(
        text=c.text,
        finish_reason=finish,
        usage=usage,
        tool_calls=c.calls,
        thinking=c.thinking,
        thinking_blocks=c.signed,
    )


def parse_event(data: str, first_call: int = 0) -> StreamEvent:
    """One `data:` payload of streamGenerateContent?alt=sse: a partial GenerateContentResponse.
    Each functionCall comes whole in one event; its index is `first_call` and on.

    The stream has no end marker: it ends with the HTTP response, after the event with a finish reason.
    """
    payload = decode_json(data)
    c = _candidate(payload, first_call)
    usage = parse_usage(payload["usageMetadata"]) if payload.get("usageMetadata") else None
    return StreamEvent(
        text=c.text,
        finish_reason=c.finish,
        usage=usage,
        tool_calls=c.calls,
        blocks=c.signed,
        thinking=c.thinking,
    )


class StreamParser:
    """The events of one stream: numbers its function calls across events, and makes the STOP that
    ends a stream which called functions a tool-calls finish."""

    def __init__(self) -> None:
        self._calls = self._signed = 0
        self._text = False
        self._ids: frozenset[str] = frozenset()

    def __call__(self, event: SseEvent) -> StreamEvent:
        parsed = parse_event(event.data, self._calls)
        _check_ids(list(parsed.tool_calls), self._ids)
        self._ids = self._ids.union(c.id for c in parsed.tool_calls)
        self._calls += len(parsed.tool_calls)
        self._signed += len(parsed.blocks)
        self._text = self._text or bool(parsed.text)
        _check_parts(self._calls, self._signed, self._text)
        if self._calls and parsed.finish_reason is FinishReason.STOP:
            return dataclasses.replace(parsed, finish_reason=FinishReason.TOOL_CALLS)
        return parsed


def _raise_embedded_error(data: Any) -> None:
    """google.rpc.Status bodies (`{"error": {"code", "message", "status"}}`), also mid-stream."""
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return
    error = data["error"]
    status = str(error.get("status", ""))
    message = redact(str(error.get("message", "")))
    if status == "RESOURCE_EXHAUSTED":
        raise ProviderRateLimitedError(f"upstream error: {message}")
    if status in ("UNAUTHENTICATED", "PERMISSION_DENIED") or "API key" in message:
        raise ProviderAuthError(f"upstream error: {status or 'credentials refused'}")
    if status in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "NOT_FOUND"):
        raise ProviderRejectedError(f"upstream error: {message}")
    raise ProviderUnavailableError(f"upstream error ({status or 'unknown'}): {message}")


def auth_headers(key: str) -> dict[str, str]:
    return {"x-goog-api-key": key}


WIRE = WireFormat(
    to_wire, parse_response, lambda e: parse_event(e.data), auth_headers, stream_parser=StreamParser
)


class GeminiProvider(HttpProvider):
    """`token_source` mints OAuth2 tokens from a service account when no API key is configured."""

    name: ClassVar[str] = "gemini"
    supports: ClassVar[frozenset[str]] = gemini_wire.SUPPORTS

    def __init__(
        self,
        deployment: DeploymentConfig,
        *,
        http: HttpClient,
        api_key: SecretStr | None,
        token_source: TokenSource | None = None,
    ) -> None:
        model = f"{deployment.url()}/models/{deployment.model}"
        super().__init__(
            deployment,
            http=http,
            url=f"{model}:generateContent",
            probe_url=model,  # models.get: the model exists and the credential may use it; no tokens
            headers={},
            wire=WIRE,
            api_key=api_key,
        )
        self._stream_url = f"{model}:streamGenerateContent?alt=sse"
        self._tokens = token_source
        self.options = deployment.gemini or GeminiOptions()
        self.capabilities = gemini_wire.capabilities(deployment)

    async def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        """As every HTTP provider; Gemini refuses a bad API key with HTTP 400, which is an auth failure."""
        try:
            async with aclosing(super().generate(req, deadline=deadline)) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ProviderRejectedError as exc:
            if "API key" not in exc.message:
                raise
            raise ProviderAuthError("upstream HTTP 400: API key not valid") from exc

    def _endpoint(self, stream: bool) -> str:
        return self._stream_url if stream else self._url

    async def _request_headers(self, req: ProviderRequest | None, timeouts: Timeouts) -> dict[str, str]:
        if self._tokens is None or (req is not None and req.api_key is not None):
            return await super()._request_headers(req, timeouts)
        token = await self._tokens.token(timeouts.deadline)
        return {"authorization": f"Bearer {token}"}

    def _check_probe(self, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise ProviderMalformedError("probe answer is not a model")
