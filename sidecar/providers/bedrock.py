"""AWS Bedrock Converse and ConverseStream: SigV4 (or a Bedrock API key), binary event stream.

The requests go through the shared HTTP client, signed by botocore with the AWS credential chain,
so they are cancelled and bounded by the call's deadline like every other provider's. The answer
of ConverseStream (`application/vnd.amazon.eventstream`) is split into messages by botocore's own
event-stream parser (prelude, headers, payload and both CRC32s checked), never by hand. The request
body (tools, images, thinking) is built by bedrock_wire.py, the answers read by bedrock_answer.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from functools import partial
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import SecretStr
from yarl import URL

from sidecar.config.providers import BedrockOptions
from sidecar.config.schema import DeploymentConfig
from sidecar.core.clock import Deadline
from sidecar.core.errors import (
    DeadlineExceededError,
    ProviderError,
    ProviderMalformedError,
    ProviderRejectedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from sidecar.core.types import Chunk, Secret
from sidecar.providers._http import HttpClient, Progress, Timeouts
from sidecar.providers.aws_auth import AwsSigner, signed_secrets
from sidecar.providers.base import (
    PROBE_MAX_BODY_BYTES,
    ProviderRequest,
    credentials_in,
    scrub_credentials,
    wire_body,
)
from sidecar.providers.bedrock_answer import EventMessage, StreamParser, parse_response, parse_usage
from sidecar.providers.bedrock_wire import CONTINUED, answer_tool, capabilities, to_wire
from sidecar.providers.stream import parse_answer, stream_chunks

EVENT_STREAM = "application/vnd.amazon.eventstream"
__all__ = ["CONTINUED", "EventMessage", "StreamParser", "parse_response", "parse_usage", "to_wire"]


_PRELUDE = 12  # total length, headers length, prelude CRC
_MIN_MESSAGE = _PRELUDE + 4
_MAX_MESSAGE = _MIN_MESSAGE + 128 * 1024 + 24 * 1024 * 1024  # botocore's header and payload bounds


class _Framer:
    """Cuts the bytes of each read into whole event-stream messages by their length prefix, joining
    each message's bytes once. botocore's buffer re-joins everything it holds on every add, which is
    quadratic in a message split over many small reads; here it is given whole messages only, and
    still checks both CRCs and parses the headers."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0
        self._need = 0  # the length of the first pending message, once its prefix is in
        self.broken: ProviderMalformedError | None = None  # a length no message can have

    @property
    def pending(self) -> int:
        """Bytes of a message not yet whole (at the end of the stream: a message cut short)."""
        return self._size

    def feed(self, data: bytes) -> bytes:
        """The whole messages the bytes so far complete (b"" for none); the rest is kept. After a
        length out of bounds, `broken` is set: the messages before it still count."""
        self._pieces.append(data)
        self._size += len(data)
        if self._size < max(self._need, 4) or self.broken is not None:
            return b""
        buffer = b"".join(self._pieces)
        end = 0
        while len(buffer) - end >= 4:
            need = int.from_bytes(buffer[end : end + 4], "big")
            if not _MIN_MESSAGE <= need <= _MAX_MESSAGE:
                self.broken = ProviderMalformedError(f"event-stream message length {need} out of bounds")
                break
            self._need = need
            if len(buffer) - end < need:
                break
            end, self._need = end + need, 0
        rest = buffer[end:]
        self._pieces, self._size = ([rest] if rest else []), len(rest)
        return buffer[:end]


async def event_messages(
    reads: AsyncGenerator[bytes, None], progress: Progress | None = None
) -> AsyncGenerator[list[EventMessage], None]:
    """Bytes as they arrive -> the complete event-stream messages of each read (botocore's parser);
    each read that completes a message is marked as the stream's progress (the read timeout). A
    stream that ends in the middle of a message was cut short: the answer is interrupted, never
    taken for complete without what that message held."""
    from botocore.eventstream import EventStreamBuffer, ParserError

    framer, buffer = _Framer(), EventStreamBuffer()
    async with aclosing(reads):
        async for data in reads:
            if whole := framer.feed(data):
                buffer.add_data(whole)
            messages: list[EventMessage] = []
            try:
                messages.extend(EventMessage(m.headers, m.payload) for m in buffer)
            except ParserError as exc:
                if messages:  # the good messages before the broken one still count
                    yield messages
                raise ProviderMalformedError(f"broken event-stream message ({type(exc).__name__})") from exc
            if messages:
                if progress is not None:
                    progress.mark()
                yield messages
            if framer.broken is not None:
                raise framer.broken
    if framer.pending:
        raise ProviderUnavailableError(
            f"upstream stream ended in the middle of an event-stream message ({framer.pending} bytes of it)"
        )


def _encoded(body: dict[str, Any]) -> bytes:
    """The body as JSON; tool arguments nested past the encoder's depth are the caller's request
    refused, never a crash: nothing was sent."""
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except RecursionError as exc:
        raise ProviderRejectedError("the request is nested too deeply to send; nothing was sent") from exc


def _denied(status: int, headers: Mapping[str, str]) -> bool:
    """An authenticated identity that may not call the probe's API (see BedrockProvider.probe)."""
    return status == 403 and headers.get("x-amzn-errortype", "").startswith("AccessDeniedException")


def bearer(key: str) -> dict[str, str]:
    """A Bedrock API key goes as a bearer token, instead of a SigV4 signature."""
    return {"authorization": f"Bearer {key}"}


class BedrockProvider:
    """`signer` signs requests when neither the deployment nor the caller has a Bedrock API key."""

    name: ClassVar[str] = "bedrock"

    def __init__(
        self, deployment: DeploymentConfig, *, http: HttpClient, api_key: SecretStr | None,
        signer: AwsSigner | None = None,
    ) -> None:  # fmt: skip
        options = deployment.bedrock or BedrockOptions()
        self._deployment, self._http, self._api_key = deployment, http, api_key
        if signer is None and api_key is None:
            signer = AwsSigner(service="bedrock", region=options.region, profile=options.profile)
        self._signer = signer
        model = f"{deployment.url()}/model/{quote(deployment.model, safe='')}"
        self._converse, self._converse_stream = f"{model}/converse", f"{model}/converse-stream"
        self._probe = f"{deployment.url()}/async-invoke?maxResults=1"
        self.capabilities = capabilities(deployment)

    def __repr__(self) -> str:
        return f"BedrockProvider(url={self._converse!r})"

    async def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        body, answer = _encoded(wire_body(to_wire, req, self._deployment)), answer_tool(req.params)
        timeouts = Timeouts(self._deployment.read_timeout_seconds, deadline, req.waits)
        url = self._converse_stream if req.stream else self._converse
        accept = EVENT_STREAM if req.stream else "application/json"
        headers = await self._headers("POST", url, body, {"accept": accept}, req.api_key, deadline)
        target = URL(url, encoded=True)  # sent exactly as signed (a model id's ':' stays %3A)
        try:
            if not req.stream:
                data = await self._http.post_json(target, headers=headers, body=body, timeouts=timeouts)
                yield parse_answer(partial(parse_response, answer=answer), data)
                return
            progress = Progress(self._http.clock)
            reads = self._http.post_stream(
                target, headers=headers, body=body, timeouts=timeouts, kind=EVENT_STREAM, progress=progress
            )
            batches = event_messages(reads, progress)
            chunks_of = stream_chunks(batches, StreamParser(answer), self._http.clock, deadline)
            async with aclosing(chunks_of) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ProviderError as err:  # its text may quote the request back: never the credential
            public = {"accept": accept, "content-type": "application/json"}
            signed = self._signer is not None and req.api_key is None and self._api_key is None
            scrub_credentials(err, signed_secrets(headers) if signed else credentials_in(headers, public))
            raise

    async def _headers(
        self,
        method: str,
        url: str,
        body: bytes,
        extra: Mapping[str, str],
        user_key: Secret | None,
        deadline: Deadline,
    ) -> dict[str, str]:
        headers = {"content-type": "application/json", **extra} if body else dict(extra)
        if user_key is not None:  # the caller's own Bedrock API key
            return {**headers, **bearer(user_key.reveal())}
        if self._api_key is not None:
            return {**headers, **bearer(self._api_key.get_secret_value())}
        assert self._signer is not None
        return await self._signer.sign(method, url, headers, body, deadline)

    async def probe(self, *, deadline: Deadline) -> None:
        """ListAsyncInvokes (GET /async-invoke): reachability and credentials, no tokens spent.

        An identity without `bedrock:ListAsyncInvokes` gets AccessDeniedException: AWS checked the
        signature and the identity first, so that answer proves the probe's point too. Bad or expired
        credentials (UnrecognizedClient, InvalidSignature, ExpiredToken) are auth failures.
        """
        timeouts = Timeouts(self._deployment.read_timeout_seconds, deadline)
        accept = {"accept": "application/json"}
        try:
            headers = await self._headers("GET", self._probe, b"", accept, None, deadline)
            target = URL(self._probe, encoded=True)
            data = await self._http.get_json(
                target, headers=headers, timeouts=timeouts, tolerate=_denied, max_bytes=PROBE_MAX_BODY_BYTES
            )
        except DeadlineExceededError as exc:  # the deadline is the probe's own: the upstream was too slow
            raise ProviderTimeoutError("upstream did not answer the probe in time") from exc
        if data is None:
            return
        if not isinstance(data, dict) or not isinstance(data.get("asyncInvokeSummaries", []), list):
            raise ProviderMalformedError("probe answer is not an async-invoke list")

    async def aclose(self) -> None:
        """The shared HTTP client is closed by its owner."""
