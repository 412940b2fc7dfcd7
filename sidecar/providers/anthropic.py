"""Anthropic Messages API: its headers, its system prompt, its SSE event stream."""

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
from sidecar.core.types import Chunk, FinishReason, Role, Usage
from sidecar.providers._http import HttpClient, decode_json, redact
from sidecar.providers.base import HttpProvider, ProviderRequest, StreamEvent, WireFormat, token_count

STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
_IGNORED_EVENTS = frozenset({"ping", "content_block_start", "content_block_stop"})


def to_wire(req: ProviderRequest, deployment: DeploymentConfig) -> dict[str, Any]:
    """The Messages request body. System messages, wherever they stand, become `system`."""
    system = [m.text for m in req.messages if m.role is Role.SYSTEM]
    messages = [{"role": m.role.value, "content": m.text} for m in req.messages if m.role is not Role.SYSTEM]
    p = req.params
    body: dict[str, Any] = {
        "model": deployment.model,
        "messages": messages,
        "max_tokens": p.max_tokens if p.max_tokens is not None else deployment.default_max_tokens,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if p.temperature is not None:
        body["temperature"] = min(p.temperature, 1.0)  # Anthropic's range is 0..1
    if p.top_p is not None:
        body["top_p"] = p.top_p
    if p.stop:
        body["stop_sequences"] = list(p.stop)
    if req.stream:
        body["stream"] = True
    return body  # `seed` has no Anthropic equivalent and is not sent


def parse_usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        raise ProviderMalformedError("usage is not an object")
    fresh = token_count(data.get("input_tokens"))
    written = token_count(data.get("cache_creation_input_tokens"))
    read = token_count(data.get("cache_read_input_tokens"))
    return Usage(
        prompt_tokens=fresh + written + read,
        completion_tokens=token_count(data.get("output_tokens")),
        cached_tokens=read,
    )


def parse_response(data: Any) -> Chunk:
    """A complete Message -> one final Chunk."""
    _raise_error(data)
    if not isinstance(data, dict) or data.get("type") != "message":
        raise ProviderMalformedError("response is not a message")
    blocks = data.get("content")
    if not isinstance(blocks, list):
        raise ProviderMalformedError("message.content is not a list")
    text = "".join(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))
    finish = STOP_REASONS.get(data.get("stop_reason") or "end_turn", FinishReason.STOP)
    return Chunk(text=text, finish_reason=finish, usage=parse_usage(data.get("usage") or {}))


def parse_event(event: str, data: str) -> StreamEvent:
    """One SSE event (its `event:` name and `data:` payload) -> what it means."""
    if event in _IGNORED_EVENTS:
        return StreamEvent()
    payload = decode_json(data)
    if not isinstance(payload, dict):
        raise ProviderMalformedError("stream event is not an object")
    kind = payload.get("type", event)
    if kind == "error":
        _raise_error(payload)
    if kind == "message_start":
        message = payload.get("message") or {}
        return StreamEvent(usage=parse_usage(message.get("usage") or {}))
    if kind == "content_block_delta":
        delta = payload.get("delta") or {}
        text = delta.get("text") if delta.get("type") == "text_delta" else ""
        return StreamEvent(text=text if isinstance(text, str) else "")
    if kind == "message_delta":
        reason = (payload.get("delta") or {}).get("stop_reason")
        finish = STOP_REASONS.get(reason, FinishReason.STOP) if reason else None
        usage = parse_usage(payload["usage"]) if payload.get("usage") else None
        return StreamEvent(finish_reason=finish, usage=usage)
    if kind == "message_stop":
        return StreamEvent(done=True)
    return StreamEvent()  # unknown event types are skipped, as Anthropic's versioning asks


def _raise_error(data: Any) -> None:
    if not isinstance(data, dict) or data.get("type") != "error":
        return
    error = data.get("error") or {}
    kind = error.get("type", "") if isinstance(error, dict) else ""
    message = redact(str(error.get("message", ""))) if isinstance(error, dict) else ""
    if kind == "rate_limit_error":
        raise ProviderRateLimitedError(f"upstream error: {message}")
    if kind in ("authentication_error", "permission_error"):
        raise ProviderAuthError(f"upstream error: {kind}")
    if kind in ("invalid_request_error", "request_too_large", "not_found_error"):
        raise ProviderRejectedError(f"upstream error: {message}")
    raise ProviderUnavailableError(f"upstream error ({kind or 'unknown'}): {message}")


def auth_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key}


WIRE = WireFormat(to_wire, parse_response, lambda e: parse_event(e.event, e.data), auth_headers)


class AnthropicProvider(HttpProvider):
    name: ClassVar[str] = "anthropic"

    def __init__(self, deployment: DeploymentConfig, *, http: HttpClient, api_key: SecretStr | None) -> None:
        headers = {"anthropic-version": deployment.anthropic_version}
        super().__init__(
            deployment,
            http=http,
            url=f"{deployment.url()}/v1/messages",
            probe_url=f"{deployment.url()}/v1/models",
            headers=headers,
            wire=WIRE,
            api_key=api_key,
        )
