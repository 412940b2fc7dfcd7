"""Anthropic Messages API: its headers, its system prompt, its SSE event stream."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any, ClassVar

from pydantic import SecretStr

from sidecar.config.schema import DeploymentConfig
from sidecar.core.errors import (
    ModelOutputError,
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
    Role,
    ThinkingBlock,
    ToolCallDelta,
    ToolChoice,
    Usage,
)
from sidecar.providers import tool_arguments
from sidecar.providers._http import HttpClient, decode_json
from sidecar.providers.base import (
    Capabilities,
    HttpProvider,
    ProviderRequest,
    WireFormat,
    answer_string,
    max_tokens_sent,
    thinking_budget,
    token_count,
)
from sidecar.providers.finish import unknown_finish
from sidecar.providers.gemini_wire import is_gemini_block
from sidecar.providers.stream import StreamEvent
from sidecar.providers.upstream_errors import redact

STOP_REASONS = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
_IGNORED_EVENTS = frozenset({"ping", "content_block_stop"})
EMPTY_SCHEMA = '{"type": "object", "properties": {}}'  # a tool without parameters


def _image(image: Image) -> dict[str, Any]:
    if image.data:
        data = base64.b64encode(image.data).decode()
        return {"type": "image", "source": {"type": "base64", "media_type": image.mime_type, "data": data}}
    if image.url.startswith("data:"):
        head, _, data = image.url.partition(",")
        mime = head[5:].split(";")[0]
        return {"type": "image", "source": {"type": "base64", "media_type": mime, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": image.url}}


def _content(m: Message) -> str | list[dict[str, Any]]:
    """A message's content: plain text, or blocks (images, tool uses, a tool result). Anthropic
    refuses a text block of whitespace alone ("text content blocks must contain non-whitespace
    text"): such text is left out (a tool result's: no content, which Anthropic takes), and an
    assistant message left with nothing is "" or [] (left out of the turns)."""
    if m.role is Role.TOOL:
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id}
        return [{**result, "content": m.text} if m.text.strip() else result]
    if not (m.images or m.tool_calls or m.thinking):  # a user's blank text is the edge's to refuse:
        return m.text if m.text.strip() or m.role is Role.USER else ""  # never a prefill made of it
    # first, as they came; a Gemini signature (a turn served by Gemini) is not Anthropic's to check
    blocks: list[dict[str, Any]] = [_thinking(b) for b in m.thinking if not is_gemini_block(b)]
    blocks += [_image(i) for i in m.images]
    if m.text.strip():
        blocks.append({"type": "text", "text": m.text})
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_arguments.as_object(c.arguments)}
        for c in m.tool_calls
    ]
    return blocks


def _thinking(block: ThinkingBlock) -> dict[str, Any]:
    if block.redacted:
        return {"type": "redacted_thinking", "data": block.redacted}
    return {"type": "thinking", "thinking": block.text, "signature": block.signature}


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Turns in Anthropic's shape: tool results go in user turns, consecutive results in one. A
    message with nothing Anthropic takes (whitespace alone: an answer the model gave, kept by the
    caller or memory) is left out (Anthropic joins the turns of one role around it). A last
    assistant turn (a prefill) goes without trailing whitespace, which Anthropic refuses there."""
    out: list[dict[str, Any]] = []
    after_result = False
    for m in messages:
        content = _content(m)
        if m.role is Role.SYSTEM or not content:
            continue
        if m.role is Role.TOOL and after_result:
            out[-1]["content"] += content
        else:
            out.append({"role": "user" if m.role is Role.TOOL else m.role.value, "content": content})
        after_result = m.role is Role.TOOL
    if out and out[-1]["role"] == "assistant":
        _trim_prefill(out[-1])
    return out


def _trim_prefill(turn: dict[str, Any]) -> None:
    """The final assistant turn's text without trailing whitespace ("final assistant content
    cannot end with trailing whitespace"); it is not blank (blank text was left out)."""
    content = turn["content"]
    if isinstance(content, str):
        turn["content"] = content.rstrip()
    elif content and content[-1].get("type") == "text":
        content[-1] = {**content[-1], "text": content[-1]["text"].rstrip()}


def _tools(p: GenerationParams, body: dict[str, Any], *, may_think: bool = True) -> None:
    if p.tools:
        body["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "input_schema": json.loads(t.parameters_json or EMPTY_SCHEMA),
            }
            for t in p.tools
        ]
        choice = p.tool_choice or ToolChoice()
        wire: dict[str, Any] = {
            "auto": {"type": "auto"},
            "none": {"type": "none"},
            "required": {"type": "any"},
        }.get(choice.mode, {"type": "tool", "name": choice.name})
        if p.parallel_tool_calls is False and wire["type"] != "none":
            wire["disable_parallel_tool_use"] = True
        if p.tool_choice is not None or "disable_parallel_tool_use" in wire:
            body["tool_choice"] = wire
    if (budget := thinking_budget(p)) is not None and may_think:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}  # within max_tokens (to_wire)
        body.pop("temperature", None)  # extended thinking takes neither (Anthropic refuses them)
        body.pop("top_p", None)


def _resumes_thinking(messages: list[dict[str, Any]]) -> bool:
    """Whether Claude may think in this call: with thinking on, it refuses a last assistant turn of
    tool calls that does not start with its thinking ("a final `assistant` message must start with
    a thinking block"), as a tool loop begun on another provider (a fallback) or without thinking
    has. Such a call is sent without thinking (answered, with no reasoning) instead of refused."""
    said = [m["content"] for m in messages if m["role"] == "assistant"]
    if not said or isinstance(said[-1], str) or not any(b.get("type") == "tool_use" for b in said[-1]):
        return True
    return said[-1][0].get("type") in ("thinking", "redacted_thinking")


def to_wire(req: ProviderRequest, deployment: DeploymentConfig) -> dict[str, Any]:
    """The Messages request body. System messages, wherever they stand, become `system`."""
    system = [m.text for m in req.messages if m.role is Role.SYSTEM and m.text.strip()]
    messages = _messages(req.messages)
    p = req.params
    body: dict[str, Any] = {
        "model": deployment.model,
        "messages": messages,
        "max_tokens": max_tokens_sent(p, deployment),  # with thinking, room for its budget too
    }
    if system:
        body["system"] = "\n\n".join(system)
    if p.temperature is not None:
        body["temperature"] = min(p.temperature, 1.0)  # Anthropic's range is 0..1
    if p.top_p is not None:
        body["top_p"] = p.top_p
    if p.stop:
        body["stop_sequences"] = list(p.stop)
    _tools(p, body, may_think=_resumes_thinking(messages))  # after the sampling fields: thinking removes them
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
        cache_write_tokens=written,
    )


def parse_response(data: Any) -> Chunk:
    """A complete Message -> one final Chunk."""
    _raise_error(data)
    if not isinstance(data, dict) or data.get("type") != "message":
        raise ProviderMalformedError("response is not a message")
    blocks = data.get("content")
    if not isinstance(blocks, list):
        raise ProviderMalformedError("message.content is not a list")
    if not all(isinstance(b, dict) for b in blocks):
        raise ProviderMalformedError("a content block is not an object")
    text = "".join(b["text"] for b in blocks if b.get("type") == "text" and isinstance(b.get("text"), str))
    thinking = "".join(
        b["thinking"] for b in blocks if b.get("type") == "thinking" and isinstance(b.get("thinking"), str)
    )
    calls = tuple(_tool_use(i, b) for i, b in enumerate(b for b in blocks if b.get("type") == "tool_use"))
    finish = _stop_reason(data.get("stop_reason") or "end_turn")
    usage = parse_usage(data["usage"]) if data.get("usage") else None
    signed = tuple(s for s in map(_signed, blocks) if s is not None)
    return Chunk(
        text=text,
        finish_reason=finish,
        usage=usage,
        tool_calls=calls,
        thinking=thinking,
        thinking_blocks=signed,
    )


def _signed(block: dict[str, Any]) -> ThinkingBlock | None:
    """A thinking block to send back (signed, or redacted); None for any other block."""
    kind = block.get("type")
    if kind == "redacted_thinking":
        return ThinkingBlock(redacted=answer_string(block.get("data"), "redacted_thinking.data"))
    if kind == "thinking" and block.get("signature"):
        text = answer_string(block.get("thinking"), "thinking.thinking")
        return ThinkingBlock(text=text, signature=answer_string(block.get("signature"), "thinking.signature"))
    return None


def _tool_use(index: int, block: dict[str, Any], *, arguments: bool = True) -> ToolCallDelta:
    """A tool_use block as a (whole, or for a stream's start, argument-less) tool call."""
    call_id, name, args = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(args, dict):
        raise ProviderMalformedError("a tool_use block without its id, name or input object")
    try:
        text = json.dumps(args, ensure_ascii=False) if arguments else ""
    except RecursionError as exc:  # parsed within the JSON parser's depth, too deep to write back
        raise ModelOutputError("a tool_use input nested too deeply") from exc
    return ToolCallDelta(index, call_id, name, text)


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
        message = _object(payload.get("message"), "message_start.message")
        return StreamEvent(usage=parse_usage(message.get("usage") or {}))
    if kind == "content_block_start":
        block = payload.get("content_block") or {}
        if isinstance(block, dict) and block.get("type") == "tool_use":
            return StreamEvent(tool_calls=(_tool_use(_index(payload), block, arguments=False),))
        if isinstance(block, dict) and block.get("type") == "redacted_thinking":
            return StreamEvent(redacted_thinking=answer_string(block.get("data"), "redacted_thinking.data"))
        return StreamEvent()
    if kind == "content_block_delta":
        return _delta(payload)
    if kind == "message_delta":
        reason = _object(payload.get("delta"), "message_delta.delta").get("stop_reason")
        finish = _stop_reason(reason) if reason else None
        usage = parse_usage(payload["usage"]) if payload.get("usage") else None
        return StreamEvent(finish_reason=finish, usage=usage)
    if kind == "message_stop":
        return StreamEvent(done=True)
    return StreamEvent()  # unknown event types are skipped, as Anthropic's versioning asks


def _object(value: Any, where: str) -> dict[str, Any]:
    """A JSON object the event must carry (absent is empty); anything else is a malformed event."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProviderMalformedError(f"{where} is not an object")
    return value


def _stop_reason(reason: Any) -> FinishReason:
    """A stop_reason; one Anthropic added since is not vouched for as a complete answer (its newer
    ones, refusal and model_context_window_exceeded, were not): CONTENT_FILTER, logged once."""
    if not isinstance(reason, str):
        raise ProviderMalformedError("stop_reason is not a string")
    return STOP_REASONS.get(reason) or unknown_finish("anthropic", reason, FinishReason.CONTENT_FILTER)


def _index(payload: dict[str, Any]) -> int:
    index = payload.get("index")
    if not isinstance(index, int):
        raise ProviderMalformedError("a content block event without its index")
    return index


def _delta(payload: dict[str, Any]) -> StreamEvent:
    """A content_block_delta: text, a piece of a tool call's input, or a piece of thinking."""
    delta = payload.get("delta") or {}
    kind = delta.get("type") if isinstance(delta, dict) else None
    if kind == "text_delta" and isinstance(delta.get("text"), str):
        return StreamEvent(text=delta["text"])
    if kind == "input_json_delta" and isinstance(delta.get("partial_json"), str):
        return StreamEvent(tool_calls=(ToolCallDelta(_index(payload), arguments=delta["partial_json"]),))
    if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
        return StreamEvent(thinking=delta["thinking"])
    if kind == "signature_delta":
        return StreamEvent(
            thinking_signature=answer_string(delta.get("signature"), "signature_delta.signature")
        )
    return StreamEvent()


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


WIRE = WireFormat(
    to_wire,
    parse_response,
    lambda e: parse_event(e.event, e.data),
    auth_headers,
    keepalive=lambda e: e.event == "ping",
)


# The Messages API's documented limits: a request of 32 MB, 100 images in it, 8000 px an image side.
MAX_REQUEST_BYTES = 32_000_000
MAX_IMAGES = 100
MAX_IMAGE_SIDE = 8000
CROWDED_IMAGE_SIDE = (20, 2000)  # more than 20 images in a request: each at most 2000 px a side
SUPPORTS = frozenset({"tools", "images"})


def capabilities(deployment: DeploymentConfig) -> Capabilities:
    """Tools and images within the Messages API's limits, overridable per deployment."""
    caps = Capabilities.of(deployment, SUPPORTS)
    caps = caps.limited(
        deployment, request_bytes=MAX_REQUEST_BYTES, images=MAX_IMAGES, image_side=MAX_IMAGE_SIDE
    )
    return dataclasses.replace(caps, crowded_image_side=CROWDED_IMAGE_SIDE)


class AnthropicProvider(HttpProvider):
    name: ClassVar[str] = "anthropic"
    supports: ClassVar[frozenset[str]] = SUPPORTS

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
        self.capabilities = capabilities(deployment)
