"""The Provider protocol and what every adapter shares: its request, capabilities and HTTP call (the
answer read into chunks is providers/stream.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import SecretStr

from sidecar.config.schema import DeploymentConfig
from sidecar.core.clock import Deadline
from sidecar.core.errors import (
    DeadlineExceededError,
    ProviderError,
    ProviderMalformedError,
    ProviderRejectedError,
    ProviderTimeoutError,
)
from sidecar.core.outcome import UpstreamWaits
from sidecar.core.types import (
    Chunk,
    FinishReason,
    GenerationParams,
    Message,
    Secret,
    Usage,
)
from sidecar.providers._http import HttpClient, Timeouts
from sidecar.providers.fragments import mask_fragments
from sidecar.providers.sse import SseEvent
from sidecar.providers.stream import StreamEvent, parse_answer, stream_chunks
from sidecar.providers.upstream_errors import (
    MIN_SECRET_CHARS,
    REDACTED,
    PromptFilteredError,
    redact,
    secret_forms,
)

# A probe's answer (a model list, one model, a list of one async invocation) is read up to this, not
# the 32 MiB of any JSON answer: the largest real model lists are well under 1 MiB, and a broken or
# hostile upstream answering more would have every probe of every deployment read and parse it.
PROBE_MAX_BODY_BYTES = 4 * 1024 * 1024


# The image formats the edge admits (sidecar/api/content.py), which OpenAI and Anthropic all read.
IMAGE_FORMATS = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


@dataclass(frozen=True, slots=True)
class Capabilities:
    streaming: bool
    tools: bool
    json_schema: bool
    max_context_tokens: int
    images: bool = False
    reasoning: bool = False
    image_urls: bool = True  # an https:// image is passed on for the upstream to fetch (not Bedrock's)
    image_formats: frozenset[str] = IMAGE_FORMATS  # the MIME types of the inline images it reads
    max_image_bytes: int = 0  # one inline image at most (0: the edge's bound is the only one)
    json_with_tools: bool = True  # a JSON answer asked for beside tools (not Gemini 2.5's)
    max_request_bytes: int = 0  # the request body at most, inline images included (0: no limit)
    max_images: int = 0  # images in one request at most (0: no limit)
    max_image_side: int = 0  # pixels of an image's width or height at most (0: no limit)
    crowded_image_side: tuple[int, int] = (0, 0)  # above this many images, this many pixels a side

    @classmethod
    def of(cls, deployment: DeploymentConfig, supports: frozenset[str]) -> Capabilities:
        """The provider's defaults (`supports`), overridden by the deployment's `capabilities`."""
        o = deployment.capabilities

        def has(name: str, override: bool | None) -> bool:
            return name in supports if override is None else override

        return cls(
            streaming=True,
            tools=has("tools", o.tools),
            json_schema=has("json_schema", o.json_schema),
            max_context_tokens=deployment.context_window,
            images=has("images", o.images),
            reasoning=has("reasoning", o.reasoning),
        ).limited(deployment)

    def limited(
        self, deployment: DeploymentConfig, *, request_bytes: int = 0, images: int = 0, image_side: int = 0
    ) -> Capabilities:
        """With the provider's documented limits on a request (0: none), where the deployment's
        `capabilities` sets no other (max_request_bytes, max_images)."""
        o = deployment.capabilities
        return dataclasses.replace(
            self,
            max_request_bytes=request_bytes if o.max_request_bytes is None else o.max_request_bytes,
            max_images=images if o.max_images is None else o.max_images,
            max_image_side=image_side,
        )

    def lacks(self, need: frozenset[str]) -> list[str]:
        """The features of `need` (tools, json_schema, images, image_urls, reasoning, json_with_tools)
        it lacks."""
        return sorted(n for n in need if not getattr(self, n))


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    messages: tuple[Message, ...]
    params: GenerationParams
    stream: bool
    api_key: Secret | None = None  # the caller's own key; None uses the deployment's platform key
    waits: UpstreamWaits | None = None  # told of every wait on the upstream (the call's outcome)


# Anthropic's extended thinking: thinking tokens per effort level, when the call gives no budget.
THINKING_BUDGETS = {"low": 2048, "medium": 8192, "high": 24576}


def thinking_budget(params: GenerationParams) -> int | None:
    """The thinking budget a call asks Anthropic for (its own, else its effort's); None: no thinking."""
    r = params.reasoning
    if r is None or not (r.budget_tokens or r.effort):
        return None
    return r.budget_tokens or THINKING_BUDGETS[r.effort]


# The providers whose output limit holds the thinking too: Anthropic's max_tokens, Converse's
# maxTokens (Claude), Gemini's maxOutputTokens (thinking counts within it).
THINKING_WITHIN_MAX_TOKENS = ("anthropic", "bedrock", "gemini")


def max_tokens_sent(params: GenerationParams, deployment: DeploymentConfig) -> int:
    """The max_tokens the deployment's request carries: the call's, else the deployment's default;
    on Anthropic, Bedrock (Claude) and Gemini with thinking, raised by the budget when it would
    leave no room for the answer (the budget is part of max_tokens there). What the window must
    hold beside the prompt, so trimming and routing's fit count this, not the call's figure: a
    prompt trimmed for 1,024 went out with 25,600 and the provider refused it."""
    asked = params.max_tokens or deployment.default_max_tokens
    if deployment.provider in THINKING_WITHIN_MAX_TOKENS and (budget := thinking_budget(params)) is not None:
        return asked + budget if asked <= budget else asked
    return asked


class Provider(Protocol):
    name: ClassVar[str]
    capabilities: Capabilities

    def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]: ...

    async def probe(self, *, deadline: Deadline) -> None:
        """Is the endpoint up and are our credentials good? Raises a ProviderError if not.

        Costs nothing: never generates tokens, never touches quota.
        """

    async def aclose(self) -> None: ...


# No call uses more: the largest context windows hold a few million tokens. A count beyond it is the
# upstream's garbage, and it would not fit the int64 the summary, the ledger and the quota store keep
# (2**63 failed the caller with INTERNAL and dropped the ledger batch of every call written with it);
# billions of calls' counts this size still sum within an int64.
MAX_TOKEN_COUNT = 2**32


def token_count(value: Any) -> int:
    """A token count from upstream JSON: absent is 0, anything but an int in [0, MAX_TOKEN_COUNT] is
    garbage."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_COUNT:
        raise ProviderMalformedError("token count is not an integer in [0, 2**32]")
    return value


def answer_string(value: Any, where: str) -> str:
    """A string field of an upstream answer (`where` names it in the error), or ProviderMalformedError."""
    if not isinstance(value, str):
        raise ProviderMalformedError(f"{where} is not a string")
    return value


@dataclass(frozen=True, slots=True)
class WireFormat:
    """A provider's pure translation functions: request body, complete answer, stream event."""

    to_wire: Callable[[ProviderRequest, DeploymentConfig], dict[str, Any]]
    parse_response: Callable[[Any], Chunk]
    parse_event: Callable[[SseEvent], StreamEvent]
    auth_headers: Callable[[str], dict[str, str]]  # the provider's own auth header for a key
    keepalive: Callable[[SseEvent], bool] | None = None  # an event that only keeps the stream open
    # a fresh parse function for each stream, for a wire whose events mean something only in order
    # (Gemini numbers no tool calls: the stream's parser does); None: parse_event for every stream
    stream_parser: Callable[[], Callable[[SseEvent], StreamEvent]] | None = None


def wire_body(
    to_wire: Callable[[ProviderRequest, DeploymentConfig], dict[str, Any]],
    req: ProviderRequest,
    deployment: DeploymentConfig,
) -> dict[str, Any]:
    """The request body; the caller's JSON (tool arguments) nested too deeply to read back within
    Python's recursion limit is the caller's request refused, never a crash: nothing was sent."""
    try:
        return to_wire(req, deployment)
    except RecursionError as exc:
        raise ProviderRejectedError("the request is nested too deeply to send; nothing was sent") from exc


class HttpProvider:
    """A provider reached over HTTP: one endpoint, its probe endpoint, its auth headers, its wire format."""

    name: ClassVar[str]
    supports: ClassVar[frozenset[str]] = frozenset()  # tools, json_schema, images, reasoning

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
        self.capabilities = Capabilities.of(deployment, type(self).supports)

    def __repr__(self) -> str:  # the headers hold the key: never shown
        return f"{type(self).__name__}(url={self._url!r}, model={self._deployment.model!r})"

    async def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        body = wire_body(self._wire.to_wire, req, self._deployment)
        d = self._deployment
        idle = d.stream_idle_timeout_seconds if req.stream else None
        timeouts = Timeouts(d.read_timeout_seconds, deadline, req.waits, idle_seconds=idle)
        headers = await self._request_headers(req, timeouts)
        url = self._endpoint(req.stream)
        try:
            if not req.stream:
                data = await self._http.post_json(url, headers=headers, body=body, timeouts=timeouts)
                yield parse_answer(self._wire.parse_response, data)
                return
            events = self._http.post_sse(
                url, headers=headers, body=body, timeouts=timeouts, keepalive=self._wire.keepalive
            )
            parse = self._wire.parse_event if self._wire.stream_parser is None else self._wire.stream_parser()
            chunks_of = stream_chunks(events, parse, self._http.clock, deadline)
            async with aclosing(chunks_of) as chunks:
                async for chunk in chunks:
                    yield chunk
        except PromptFilteredError:  # the status line's answer, before any chunk: the provider
            # filtered the prompt, as Gemini's blocked prompt is a CONTENT_FILTER finish (no usage:
            # the provider bills none)
            yield Chunk(finish_reason=FinishReason.CONTENT_FILTER, usage=Usage())
        except ProviderError as err:  # its text may quote the request back: never the credential
            scrub_credentials(err, credentials_in(headers, self._base_headers))
            raise

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
            data = await self._http.get_json(
                self._probe_url, headers=headers, timeouts=timeouts, max_bytes=PROBE_MAX_BODY_BYTES
            )
        except DeadlineExceededError as exc:  # the deadline is the probe's own: the upstream was too slow
            raise ProviderTimeoutError("upstream did not answer the probe in time") from exc
        self._check_probe(data)

    def _check_probe(self, data: Any) -> None:
        """Is the probe's answer what the endpoint answers? (A model list, unless overridden.)"""
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise ProviderMalformedError("probe answer is not a model list")

    async def aclose(self) -> None:
        """The shared HTTP client is closed by its owner."""


def credentials_in(headers: Mapping[str, str], public: Mapping[str, str]) -> list[str]:
    """The secret values of a request's headers: those `public` (the provider's fixed headers) does
    not hold, i.e. the auth header of the platform key, the caller's key, a minted token or a
    signature and session token (each with its token alone after a `Bearer`/`Basic` scheme)."""
    return [f for name, value in headers.items() if public.get(name) != value for f in secret_forms(value)]


def scrub_credentials(err: ProviderError, secrets: Sequence[str]) -> None:
    """Remove the credentials a request carried from the text of its error, beyond what pattern
    redaction catches (a base64 key with `+/=`, a short key without a known prefix). The text was
    pattern-redacted when the error was made, which may have masked only the start of a key
    (`[redacted]+rest/of/key`): each secret's pattern-redacted form is removed too."""
    forms = {form for secret in secrets for form in (secret, redact(secret)) if form != REDACTED}
    message = err.message
    for form in sorted(forms, key=len, reverse=True):  # a whole header value before its token
        if len(form) >= MIN_SECRET_CHARS and form in message:
            message = message.replace(form, REDACTED)
    for form in forms:  # the upstream text is cut to a length: it may end inside a secret
        cut = next(
            (n for n in range(len(form) - 1, MIN_SECRET_CHARS - 1, -1) if message.endswith(form[:n])), 0
        )
        if cut:
            message = message[:-cut] + REDACTED
    message = mask_fragments(message, [form for form in forms if form != REDACTED])  # quoted in part
    if message != err.message:
        err.message = message
        err.args = (message,)
