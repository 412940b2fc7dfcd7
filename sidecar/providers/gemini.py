"""Google Gemini API: generateContent and streamGenerateContent (SSE), API key or service account."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, ClassVar

from pydantic import SecretStr

from sidecar.config.providers import GeminiOptions
from sidecar.config.schema import DeploymentConfig
from sidecar.core.clock import Deadline
from sidecar.core.errors import (
    ProviderAuthError,
    ProviderMalformedError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from sidecar.core.types import Chunk, FinishReason, Role, Usage
from sidecar.providers._http import HttpClient, Timeouts, decode_json
from sidecar.providers.base import HttpProvider, ProviderRequest, StreamEvent, WireFormat, token_count
from sidecar.providers.tokens import TokenSource
from sidecar.providers.upstream_errors import redact

FINISH_REASONS = {
    "STOP": FinishReason.STOP,
    "MAX_TOKENS": FinishReason.LENGTH,
    "SAFETY": FinishReason.CONTENT_FILTER,
    "RECITATION": FinishReason.CONTENT_FILTER,
    "BLOCKLIST": FinishReason.CONTENT_FILTER,
    "PROHIBITED_CONTENT": FinishReason.CONTENT_FILTER,
    "SPII": FinishReason.CONTENT_FILTER,
    "IMAGE_SAFETY": FinishReason.CONTENT_FILTER,
}
_ROLES = {Role.USER: "user", Role.ASSISTANT: "model", Role.TOOL: "user"}
# The user turn put before a prompt that starts with an assistant message (a trimmed or summarized
# conversation): Gemini reads `contents` by position, user first, and refuses a history that starts
# with a model turn or does not alternate (as Bedrock's Converse does).
CONTINUED = "(The conversation continues.)"


def to_wire(req: ProviderRequest, deployment: DeploymentConfig) -> dict[str, Any]:
    """The GenerateContentRequest body. System messages become `systemInstruction`; consecutive
    messages of one role become one content with a part each; a prompt that starts with an
    assistant message gets the user turn CONTINUED before it."""
    system = [m.text for m in req.messages if m.role is Role.SYSTEM]
    body: dict[str, Any] = {"contents": _contents(req)}
    if system:
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    p = req.params
    config: dict[str, Any] = {}
    if p.max_tokens is not None:
        config["maxOutputTokens"] = p.max_tokens
    if p.temperature is not None:
        config["temperature"] = p.temperature
    if p.top_p is not None:
        config["topP"] = p.top_p
    if p.stop:
        config["stopSequences"] = list(p.stop)
    if p.seed is not None:
        config["seed"] = p.seed
    if config:
        body["generationConfig"] = config
    return body


def _contents(req: ProviderRequest) -> list[dict[str, Any]]:
    """`contents`, alternating user and model turns, user first."""
    contents: list[dict[str, Any]] = []
    for m in req.messages:
        if m.role is Role.SYSTEM:
            continue
        role = _ROLES[m.role]
        if contents and contents[-1]["role"] == role:  # a tool result and the next question: one turn
            contents[-1]["parts"].append({"text": m.text})
        else:
            contents.append({"role": role, "parts": [{"text": m.text}]})
    if contents and contents[0]["role"] == "model":
        contents.insert(0, {"role": "user", "parts": [{"text": CONTINUED}]})
    return contents


def parse_usage(data: Any) -> Usage:
    """usageMetadata; thinking tokens are billed as output, so they count as completion tokens, and
    are the reasoning tokens (part of the completion tokens, as OpenAI reports them)."""
    if not isinstance(data, dict):
        raise ProviderMalformedError("usageMetadata is not an object")
    thoughts = token_count(data.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=token_count(data.get("promptTokenCount")),
        completion_tokens=token_count(data.get("candidatesTokenCount")) + thoughts,
        cached_tokens=token_count(data.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _candidate(data: Any) -> tuple[str, FinishReason | None]:
    """The first candidate's text (thought parts left out) and finish reason; a blocked prompt is a
    content-filter finish with no text."""
    _raise_embedded_error(data)
    if not isinstance(data, dict):
        raise ProviderMalformedError("response is not a GenerateContentResponse")
    candidates = data.get("candidates")
    if not candidates:
        feedback = data.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            return "", FinishReason.CONTENT_FILTER
        return "", None
    if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
        raise ProviderMalformedError("candidates is not a list of objects")
    first = candidates[0]
    content = first.get("content") or {}
    if not isinstance(content, dict):
        raise ProviderMalformedError("candidates[0].content is not an object")
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise ProviderMalformedError("candidates[0].content.parts is not a list")
    text = "".join(
        p["text"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    )
    reason = first.get("finishReason")
    finish = FINISH_REASONS.get(reason, FinishReason.STOP) if isinstance(reason, str) and reason else None
    return text, finish


def parse_response(data: Any) -> Chunk:
    """A complete generateContent answer -> one final Chunk."""
    text, finish = _candidate(data)
    if finish is None and not text:
        raise ProviderMalformedError("response has neither candidates nor a block reason")
    usage = parse_usage(data["usageMetadata"]) if data.get("usageMetadata") else None
    return Chunk(text=text, finish_reason=finish or FinishReason.STOP, usage=usage)


def parse_event(data: str) -> StreamEvent:
    """One `data:` payload of streamGenerateContent?alt=sse: a partial GenerateContentResponse.

    The stream has no end marker: it ends with the HTTP response, after the event with a finish reason.
    """
    payload = decode_json(data)
    text, finish = _candidate(payload)
    usage = parse_usage(payload["usageMetadata"]) if payload.get("usageMetadata") else None
    return StreamEvent(text=text, finish_reason=finish, usage=usage)


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


WIRE = WireFormat(to_wire, parse_response, lambda e: parse_event(e.data), auth_headers)


class GeminiProvider(HttpProvider):
    """`token_source` mints OAuth2 tokens from a service account when no API key is configured."""

    name: ClassVar[str] = "gemini"

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
