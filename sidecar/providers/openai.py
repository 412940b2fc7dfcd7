"""OpenAI Chat Completions (and every OpenAI-compatible server: vLLM, Ollama, llama.cpp, ...)."""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar

from pydantic import SecretStr

from sidecar.config.schema import DeploymentConfig
from sidecar.core.errors import (
    ProviderAuthError,
    ProviderMalformedError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from sidecar.core.types import (
    Chunk,
    FinishReason,
    GenerationParams,
    Image,
    Message,
    ToolCallDelta,
    Usage,
)
from sidecar.providers._http import HttpClient, decode_json
from sidecar.providers.base import HttpProvider, ProviderRequest, WireFormat, token_count
from sidecar.providers.finish import unknown_finish
from sidecar.providers.stream import StreamEvent
from sidecar.providers.tool_arguments import as_text
from sidecar.providers.upstream_errors import redact

EMPTY_SCHEMA = '{"type": "object", "properties": {}}'  # a tool without parameters
FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
    "eos_token": FinishReason.STOP,  # TGI's words for a normal end
    "stop_sequence": FinishReason.STOP,
}
# OpenAI-compatible servers' finish for an answer they gave up on (vLLM, SGLang: the request was
# aborted; an engine error): not the model's end, an upstream failure (another deployment before
# the first chunk; STREAM_INTERRUPTED after).
ABORTED = frozenset({"abort", "error"})


def _message(m: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": m.role.value, "content": m.text}
    if m.images:
        parts: list[dict[str, Any]] = [{"type": "text", "text": m.text}] if m.text else []
        parts += [{"type": "image_url", "image_url": {"url": image_url(i)}} for i in m.images]
        wire["content"] = parts
    if m.tool_calls:
        wire["content"] = m.text or None
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": as_text(c.arguments)}}
            for c in m.tool_calls
        ]
    if m.tool_call_id:
        wire["tool_call_id"] = m.tool_call_id
    if m.name:
        wire["name"] = m.name
    return wire


def image_url(image: Image) -> str:
    """A URL as given, or the bytes as a data URL."""
    if image.url:
        return image.url
    return f"data:{image.mime_type};base64,{base64.b64encode(image.data).decode()}"


def _tools(p: GenerationParams, body: dict[str, Any]) -> None:
    """tools, tool_choice, parallel_tool_calls, response_format and reasoning_effort."""
    if p.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": json.loads(t.parameters_json or EMPTY_SCHEMA),
                },
            }
            for t in p.tools
        ]
        choice = p.tool_choice
        if choice is not None:
            body["tool_choice"] = (
                {"type": "function", "function": {"name": choice.name}} if choice.name else choice.mode
            )
        if p.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = p.parallel_tool_calls
    fmt = p.response_format
    if fmt is not None and fmt.kind == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif fmt is not None and fmt.kind == "json_schema":
        schema = {"name": fmt.name, "schema": json.loads(fmt.schema_json), "strict": fmt.strict}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    if p.reasoning is not None and p.reasoning.effort:
        body["reasoning_effort"] = p.reasoning.effort


def to_wire(req: ProviderRequest, deployment: DeploymentConfig) -> dict[str, Any]:
    """The Chat Completions request body."""
    messages = [_message(m) for m in req.messages]
    body: dict[str, Any] = {"model": deployment.model, "messages": messages}
    p = req.params
    _tools(p, body)
    if p.max_tokens is not None:
        body[deployment.max_tokens_field] = p.max_tokens
    if p.temperature is not None:
        body["temperature"] = p.temperature
    if p.top_p is not None:
        body["top_p"] = p.top_p
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def parse_usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        raise ProviderMalformedError("usage is not an object")
    details = data.get("prompt_tokens_details") or {}
    out = data.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=token_count(data.get("prompt_tokens")),
        completion_tokens=token_count(data.get("completion_tokens")),
        cached_tokens=token_count(details.get("cached_tokens") if isinstance(details, dict) else 0),
        reasoning_tokens=token_count(out.get("reasoning_tokens") if isinstance(out, dict) else 0),
    )


def _calls(raw: Any, *, streamed: bool) -> tuple[ToolCallDelta, ...]:
    """`tool_calls` of a message (whole calls) or of a stream delta (pieces, by their index)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ProviderMalformedError("tool_calls is not a list")
    out: list[ToolCallDelta] = []
    for i, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            raise ProviderMalformedError("a tool call without its function")
        index = call.get("index", i) if streamed else i
        values = (call.get("id") or "", fn.get("name") or "", fn.get("arguments") or "")
        if not isinstance(index, int) or not all(isinstance(v, str) for v in values):
            raise ProviderMalformedError("a tool call with a malformed index, id, name or arguments")
        out.append(ToolCallDelta(index, *values))
    return tuple(out)


def parse_response(data: Any) -> Chunk:
    """A complete (non-streaming) answer -> one final Chunk with text, finish reason and usage."""
    _raise_embedded_error(data)
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        refusal = choice["message"].get("refusal") or ""
        calls = _calls(choice["message"].get("tool_calls"), streamed=False)
        finish = _finish(choice.get("finish_reason") or "stop")
        thinking = _reasoning(choice["message"])
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderMalformedError("chat completion without choices[0].message") from exc
    if not isinstance(text, str) or not isinstance(refusal, str):
        raise ProviderMalformedError("choices[0].message.content or .refusal is not a string")
    if refusal:  # the model declined (structured outputs): its words are the answer, filtered
        text, finish = text + refusal, _refused(finish)
    usage = parse_usage(data["usage"]) if data.get("usage") else None
    return Chunk(text=text, finish_reason=finish, usage=usage, tool_calls=calls, thinking=thinking)


def _reasoning(message: Any) -> str:
    """The reasoning an OpenAI-compatible server's reasoning parser puts beside the answer (vLLM,
    DeepSeek, SGLang: `reasoning_content`; newer vLLM and OpenRouter: `reasoning`): thinking, as
    Anthropic's, never answer text. Anything but a string there is not reasoning text: ignored."""
    if not isinstance(message, dict):
        return ""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def parse_event(data: str) -> StreamEvent:
    """One `data:` payload of the SSE stream -> what it means."""
    if data.strip() == "[DONE]":
        return StreamEvent(done=True)
    payload = decode_json(data)
    _raise_embedded_error(payload)
    if not isinstance(payload, dict) or not isinstance(payload.get("choices", []), list):
        raise ProviderMalformedError("stream chunk is not a chat.completion.chunk")
    usage = parse_usage(payload["usage"]) if payload.get("usage") else None
    text, thinking, finish, refused = "", "", None, False
    calls: tuple[ToolCallDelta, ...] = ()
    for choice in payload.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        refusal = delta.get("refusal") if isinstance(delta, dict) else None
        if isinstance(content, str):
            text = content
        if isinstance(refusal, str) and refusal:  # a piece of the model's refusal
            text, refused = text + refusal, True
        if isinstance(delta, dict):
            calls = _calls(delta.get("tool_calls"), streamed=True)
        thinking = _reasoning(delta)
        if reason := choice.get("finish_reason"):
            finish = _finish(reason)
    return StreamEvent(
        text=text, finish_reason=finish, usage=usage, tool_calls=calls, refused=refused, thinking=thinking
    )


def _finish(reason: Any) -> FinishReason:
    """A finish_reason string; one the sidecar does not know is a plain stop: OpenAI-compatible
    servers finish normal answers with words of their own, logged once."""
    if not isinstance(reason, str):
        raise ProviderMalformedError("finish_reason is not a string")
    if reason in ABORTED:
        raise ProviderUnavailableError(f"the server ended the answer unfinished ({reason})")
    return FINISH_REASONS.get(reason) or unknown_finish("openai", reason, FinishReason.STOP)


def _refused(finish: FinishReason) -> FinishReason:
    """A refusal ends the answer as the content filter would, unless it was cut at max_tokens."""
    return FinishReason.CONTENT_FILTER if finish is FinishReason.STOP else finish


def _raise_embedded_error(data: Any) -> None:
    """OpenAI-compatible servers report some failures as an `error` object, even mid-stream."""
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return
    error = data["error"]
    message = redact(str(error.get("message", "")))
    kind = f"{error.get('type', '')} {error.get('code', '')}"
    if "rate_limit" in kind:
        raise ProviderRateLimitedError(f"upstream error: {message}")
    if "auth" in kind or "api_key" in kind:
        raise ProviderAuthError("upstream error: credentials refused")
    if "invalid_request" in kind:
        raise ProviderRejectedError(f"upstream error: {message}")
    raise ProviderUnavailableError(f"upstream error: {message}")


def auth_headers(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


WIRE = WireFormat(to_wire, parse_response, lambda e: parse_event(e.data), auth_headers)


class OpenAIProvider(HttpProvider):
    name: ClassVar[str] = "openai"
    supports: ClassVar[frozenset[str]] = frozenset({"tools", "json_schema", "images"})

    def __init__(self, deployment: DeploymentConfig, *, http: HttpClient, api_key: SecretStr | None) -> None:
        super().__init__(
            deployment,
            http=http,
            url=f"{deployment.url()}/chat/completions",
            probe_url=f"{deployment.url()}/models",
            headers={},
            wire=WIRE,
            api_key=api_key,
        )
