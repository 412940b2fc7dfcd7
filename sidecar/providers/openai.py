"""OpenAI Chat Completions (and every OpenAI-compatible server: vLLM, Ollama, llama.cpp, ...)."""

from __future__ import annotations

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
from sidecar.core.types import Chunk, FinishReason, Usage
from sidecar.providers._http import HttpClient, decode_json, redact
from sidecar.providers.base import HttpProvider, ProviderRequest, StreamEvent, WireFormat, token_count

FINISH_REASONS = {
    "stop": FinishReason.STOP,
    "length": FinishReason.LENGTH,
    "content_filter": FinishReason.CONTENT_FILTER,
    "tool_calls": FinishReason.TOOL_CALLS,
    "function_call": FinishReason.TOOL_CALLS,
}


def to_wire(req: ProviderRequest, deployment: DeploymentConfig) -> dict[str, Any]:
    """The Chat Completions request body."""
    messages: list[dict[str, Any]] = []
    for m in req.messages:
        wire: dict[str, Any] = {"role": m.role.value, "content": m.text}
        if m.name:
            wire["name"] = m.name
        messages.append(wire)
    body: dict[str, Any] = {"model": deployment.model, "messages": messages}
    p = req.params
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
    return Usage(
        prompt_tokens=token_count(data.get("prompt_tokens")),
        completion_tokens=token_count(data.get("completion_tokens")),
        cached_tokens=token_count(details.get("cached_tokens") if isinstance(details, dict) else 0),
    )


def parse_response(data: Any) -> Chunk:
    """A complete (non-streaming) answer -> one final Chunk with text, finish reason and usage."""
    _raise_embedded_error(data)
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        finish = FINISH_REASONS.get(choice.get("finish_reason") or "stop", FinishReason.STOP)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ProviderMalformedError("chat completion without choices[0].message") from exc
    if not isinstance(text, str):
        raise ProviderMalformedError("choices[0].message.content is not a string")
    usage = parse_usage(data["usage"]) if data.get("usage") else Usage()
    return Chunk(text=text, finish_reason=finish, usage=usage)


def parse_event(data: str) -> StreamEvent:
    """One `data:` payload of the SSE stream -> what it means."""
    if data.strip() == "[DONE]":
        return StreamEvent(done=True)
    payload = decode_json(data)
    _raise_embedded_error(payload)
    if not isinstance(payload, dict) or not isinstance(payload.get("choices", []), list):
        raise ProviderMalformedError("stream chunk is not a chat.completion.chunk")
    usage = parse_usage(payload["usage"]) if payload.get("usage") else None
    text, finish = "", None
    for choice in payload.get("choices") or []:
        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
            continue
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str):
            text = content
        if reason := choice.get("finish_reason"):
            finish = FINISH_REASONS.get(reason, FinishReason.STOP)
    return StreamEvent(text=text, finish_reason=finish, usage=usage)


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
