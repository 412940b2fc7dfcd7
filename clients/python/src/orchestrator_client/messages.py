"""Helpers to build requests and read answers without spelling out every nested message."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from ._gen.orchestrator.v1 import embed_pb2, generate_pb2
from .experiments import Priority, priority_value

Message = generate_pb2.Message


def user(text: str) -> generate_pb2.Message:
    return _message(generate_pb2.ROLE_USER, text)


def system(text: str) -> generate_pb2.Message:
    return _message(generate_pb2.ROLE_SYSTEM, text)


def assistant(text: str) -> generate_pb2.Message:
    return _message(generate_pb2.ROLE_ASSISTANT, text)


def _message(role: int, text: str) -> generate_pb2.Message:
    return generate_pb2.Message(role=role, content=[generate_pb2.ContentPart(text=text)])  # type: ignore[arg-type]


def generation_input(
    prompt: str | Sequence[generate_pb2.Message],
    *,
    model: str = "",
    tenant_id: str = "",
    user_id: str = "",
    conversation_id: str = "",
    max_tokens: int | None = None,
    temperature: float | None = None,
    persona_id: str = "",
    request_id: str = "",
    metadata: Mapping[str, str] | None = None,
    priority: Priority | None = None,
    experiment_variant: str = "",
) -> generate_pb2.GenerationInput:
    """A GenerationInput from a prompt (one user message) or a list of messages. `priority`: an
    orchestrator.v1.Priority value or a level's name ("LOW" to "CRITICAL"); the tier may cap it."""
    messages = [user(prompt)] if isinstance(prompt, str) else list(prompt)
    config = generate_pb2.GenerationConfig()
    if max_tokens is not None:
        config.max_tokens = max_tokens
    if temperature is not None:
        config.temperature = temperature
    return generate_pb2.GenerationInput(
        model=model,
        messages=messages,
        config=config,
        tenant_id=tenant_id,
        user_id=user_id,
        conversation_id=conversation_id,
        persona_id=persona_id,
        request_id=request_id,
        metadata=dict(metadata or {}),
        priority=priority_value(priority) if priority is not None else 0,  # type: ignore[arg-type]
        experiment_variant=experiment_variant,
    )


def generate_request(
    request: generate_pb2.GenerateRequest | generate_pb2.GenerationInput | str,
    priority: Priority | None = None,
) -> generate_pb2.GenerateRequest:
    """The request; `priority`, when given, set on a copy (the caller's message is not changed)."""
    if isinstance(request, str):
        request = generation_input(request)
    out = generate_pb2.GenerateRequest()
    if isinstance(request, generate_pb2.GenerateRequest):
        if priority is None:
            return request
        out.CopyFrom(request)
    else:
        out.input.CopyFrom(request)
    if priority is not None:
        out.input.priority = priority_value(priority)  # type: ignore[assignment]
    return out


def stream_request(
    request: generate_pb2.StreamGenerateRequest | generate_pb2.GenerationInput | str,
    priority: Priority | None = None,
) -> generate_pb2.StreamGenerateRequest:
    if isinstance(request, str):
        request = generation_input(request)
    out = generate_pb2.StreamGenerateRequest()
    if isinstance(request, generate_pb2.StreamGenerateRequest):
        if priority is None:
            return request
        out.CopyFrom(request)
    else:
        out.input.CopyFrom(request)
    if priority is not None:
        out.input.priority = priority_value(priority)  # type: ignore[assignment]
    return out


def text_of(response: generate_pb2.GenerateResponse) -> str:
    """The answer's text: its text parts, in order."""
    return "".join(part.text for part in response.message.content if part.WhichOneof("kind") == "text")


def embed_request(
    request: embed_pb2.EmbedRequest | Sequence[str],
    *,
    tenant_id: str = "",
    user_id: str = "",
    route: str = "",
) -> embed_pb2.EmbedRequest:
    """An EmbedRequest as given, or one for a list of texts (a single str is one text, not letters)."""
    if isinstance(request, embed_pb2.EmbedRequest):
        return request
    texts = [request] if isinstance(request, str) else list(request)
    return embed_pb2.EmbedRequest(texts=texts, tenant_id=tenant_id, user_id=user_id, route=route)


def with_request_id(request: embed_pb2.EmbedRequest) -> embed_pb2.EmbedRequest:
    """The request with a request_id of its own (a copy) when it has none: the idempotency key a
    retried Embed must keep, so the sidecar charges it once."""
    if request.request_id:
        return request
    keyed = embed_pb2.EmbedRequest()
    keyed.CopyFrom(request)
    keyed.request_id = uuid.uuid4().hex
    return keyed
