"""The Provider protocol and what every adapter shares: its request, capabilities, stream assembly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import SecretStr

from sidecar.config.schema import DeploymentConfig
from sidecar.core.clock import Deadline
from sidecar.core.errors import (
    DeadlineExceededError,
    ProviderError,
    ProviderMalformedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from sidecar.core.types import Chunk, FinishReason, GenerationParams, Message, Secret, Usage
from sidecar.providers._http import HttpClient, Timeouts
from sidecar.providers.sse import SseEvent

E = TypeVar("E")  # one event of an upstream stream, as its transport decodes it


@dataclass(frozen=True, slots=True)
class Capabilities:
    streaming: bool
    tools: bool
    json_schema: bool
    max_context_tokens: int


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    messages: tuple[Message, ...]
    params: GenerationParams
    stream: bool
    api_key: Secret | None = None  # the caller's own key; None uses the deployment's platform key


class Provider(Protocol):
    name: ClassVar[str]
    capabilities: Capabilities

    def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]: ...

    async def probe(self, *, deadline: Deadline) -> None:
        """Is the endpoint up and are our credentials good? Raises a ProviderError if not.

        Costs nothing: never generates tokens, never touches quota.
        """

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """What one upstream stream event means, provider-neutral. Produced by pure parse functions."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    done: bool = False


class StreamAssembler:
    """Turns parsed stream events into Chunks: text at once, one final chunk at the end.

    Providers report finish reason and usage in separate events (OpenAI sends usage after the
    finish reason; Anthropic splits input and output counts), so both are held until the end.
    """

    def __init__(self) -> None:
        self._finish: FinishReason | None = None
        self._usage = Usage()
        self._done = False

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: StreamEvent) -> Chunk | None:
        if event.finish_reason is not None:
            self._finish = event.finish_reason
        if event.usage is not None:
            self._usage = self._usage.merge(event.usage)
        if event.done:
            self._done = True
        return Chunk(text=event.text) if event.text else None

    def final(self) -> Chunk:
        """The closing chunk; a stream that never said how it finished is broken, not complete."""
        if self._finish is None:
            raise ProviderUnavailableError("upstream stream ended before it finished")
        return Chunk(finish_reason=self._finish, usage=self._usage)


async def stream_chunks(
    batches: AsyncGenerator[list[E], None], parse: Callable[[E], StreamEvent]
) -> AsyncGenerator[Chunk, None]:
    """Parse an upstream event stream (SSE, or AWS event-stream messages) into Chunks, one per
    network read, ending with the final chunk.

    Text of events that arrived together is joined into one chunk. An error event goes out after
    the text that preceded it, so "after the first chunk" means the same as on the wire.
    """
    assembler = StreamAssembler()
    async with aclosing(batches):
        async for batch in batches:
            text: list[str] = []
            failure: ProviderError | None = None
            for event in batch:
                try:
                    chunk = assembler.feed(parse(event))
                except ProviderError as exc:
                    failure = exc
                    break
                if chunk is not None:
                    text.append(chunk.text)
                if assembler.done:
                    break
            if text:
                yield Chunk(text="".join(text))
            if failure is not None:
                raise failure
            if assembler.done:
                break
        yield assembler.final()
        if assembler.done:
            await _drain(batches)


DRAIN_SECONDS = 0.25


async def _drain(batches: AsyncGenerator[list[E], None]) -> None:
    """Read past the end marker to the end of the HTTP response, so the connection goes back to the
    pool; an upstream that keeps it open longer than a moment just loses it."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in batches:
                pass
    except (TimeoutError, ProviderError):
        pass


def token_count(value: Any) -> int:
    """A token count from upstream JSON: absent is 0, anything but a non-negative int is garbage."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProviderMalformedError("token count is not a non-negative integer")
    return value


@dataclass(frozen=True, slots=True)
class WireFormat:
    """A provider's pure translation functions: request body, complete answer, stream event."""

    to_wire: Callable[[ProviderRequest, DeploymentConfig], dict[str, Any]]
    parse_response: Callable[[Any], Chunk]
    parse_event: Callable[[SseEvent], StreamEvent]
    auth_headers: Callable[[str], dict[str, str]]  # the provider's own auth header for a key


class HttpProvider:
    """A provider reached over HTTP: one endpoint, its probe endpoint, its auth headers, its wire format."""

    name: ClassVar[str]

    def __init__(
        self,
        deployment: DeploymentConfig,
        *,
        http: HttpClient,
        url: str,
        probe_url: str,
        headers: dict[str, str],
        wire: WireFormat,
        api_key: SecretStr | None,
    ) -> None:
        self._deployment, self._http, self._wire = deployment, http, wire
        self._url, self._probe_url, self._base_headers = url, probe_url, headers
        platform = wire.auth_headers(api_key.get_secret_value()) if api_key is not None else {}
        self._headers = {**headers, **platform}
        self.capabilities = Capabilities(
            streaming=True, tools=False, json_schema=False, max_context_tokens=deployment.context_window
        )

    def __repr__(self) -> str:  # the headers hold the key: never shown
        return f"{type(self).__name__}(url={self._url!r}, model={self._deployment.model!r})"

    async def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        body = self._wire.to_wire(req, self._deployment)
        timeouts = Timeouts(self._deployment.read_timeout_seconds, deadline)
        headers = await self._request_headers(req, timeouts)
        url = self._endpoint(req.stream)
        if not req.stream:
            data = await self._http.post_json(url, headers=headers, body=body, timeouts=timeouts)
            yield self._wire.parse_response(data)
            return
        events = self._http.post_sse(url, headers=headers, body=body, timeouts=timeouts)
        async for chunk in stream_chunks(events, self._wire.parse_event):
            yield chunk

    def _endpoint(self, stream: bool) -> str:
        """The generation URL; providers with a separate streaming endpoint override it."""
        return self._url

    async def _request_headers(self, req: ProviderRequest | None, timeouts: Timeouts) -> dict[str, str]:
        """The headers of one request: the caller's own key if it brought one, else the platform's.

        Providers whose platform credential is a short-lived token override this to mint one.
        """
        if req is not None and req.api_key is not None:  # the caller's key goes in the auth header only
            return {**self._base_headers, **self._wire.auth_headers(req.api_key.reveal())}
        return self._headers

    async def probe(self, *, deadline: Deadline) -> None:
        """GET the model list with the generation headers: reachability and auth, no tokens spent."""
        timeouts = Timeouts(self._deployment.read_timeout_seconds, deadline)
        try:
            headers = await self._request_headers(None, timeouts)
            data = await self._http.get_json(self._probe_url, headers=headers, timeouts=timeouts)
        except DeadlineExceededError as exc:  # the deadline is the probe's own: the upstream was too slow
            raise ProviderTimeoutError("upstream did not answer the probe in time") from exc
        self._check_probe(data)

    def _check_probe(self, data: Any) -> None:
        """Is the probe's answer what the endpoint answers? (A model list, unless overridden.)"""
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ProviderMalformedError("probe answer is not a model list")

    async def aclose(self) -> None:
        """The shared HTTP client is closed by its owner."""
