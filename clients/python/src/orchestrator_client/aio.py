"""The asyncio client: `AsyncClient(...).generate(...)`, `.stream(...)`, `.switch(...)`, `.get_quota(...)`,
the escalation queue (`.accept_escalation(...)`, `.list_escalations(...)`, ...);
every other RPC through the generated stubs it exposes (`.generation`, `.conversations`, `.quota`,
`.keys`), which carry the token too."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from . import messages, retry
from ._auth import async_interceptors
from ._connection import DEFAULT_MAX_REPLY_BYTES, channel_options, resolve
from ._gen.orchestrator.v1 import (
    conversation_service_pb2_grpc,
    embed_pb2,
    escalation_pb2,
    escalation_service_pb2_grpc,
    experiment_service_pb2_grpc,
    experiments_pb2,
    generate_pb2,
    generation_service_pb2_grpc,
    key_service_pb2_grpc,
    models_pb2,
    personas_pb2,
    quota_pb2,
    quota_service_pb2_grpc,
)
from ._loops import LoopChannels, LoopStub, running_loop
from .errors import CancelledError, SidecarError, build, from_rpc_error
from .experiments import Priority, feedback_request, report_request

GenerateInput = generate_pb2.GenerateRequest | generate_pb2.GenerationInput | str
StreamInput = generate_pb2.StreamGenerateRequest | generate_pb2.GenerationInput | str
EmbedInput = embed_pb2.EmbedRequest | Sequence[str]


class _LazyStub:
    """A generated stub whose calls run over the channel of the loop running when each is made (see
    `AsyncClient.channel`): one object for every loop, so it may be read where no loop runs (at
    import time) or kept from one loop to the next. One assigned to the client is returned instead."""

    def __init__(self, stub: type) -> None:
        self._stub = stub
        self._slot = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = f"_stub_{name}"

    def __get__(self, client: AsyncClient | None, owner: type | None = None) -> Any:
        if client is None:
            return self
        if self._slot not in client.__dict__:
            client.__dict__[self._slot] = LoopStub(client._channels, self._stub)
        return client.__dict__[self._slot]

    def __set__(self, client: AsyncClient, stub: Any) -> None:
        client.__dict__[self._slot] = stub


class AsyncClient:
    """A connection to the sidecar. Use `async with AsyncClient() as client:` or call `close()`."""

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        conn = resolve(address, token)
        self._closed = False
        self._target = conn.target
        self._channel_options = channel_options(max_reply_bytes, options)
        interceptors = async_interceptors(conn.token)
        self._channels = LoopChannels(
            lambda: grpc.aio.insecure_channel(
                self._target, options=self._channel_options, interceptors=interceptors
            ),
            refused=closed_error,
        )

    @property
    def channel(self) -> grpc.aio.Channel:
        """The gRPC channel of the running event loop, made there on first use: grpc.aio binds a
        channel to the loop running when it is made, so a client made outside any loop (a
        module-level one) or used from several loops in turn (successive `asyncio.run` calls,
        pytest-asyncio's per-test loops, a loop per thread) has one channel per loop. Read with no
        loop running, a RuntimeError."""
        return self._channels.current().channel

    # the generated stubs (the token attached), made on first use over `channel`; assignable
    generation = _LazyStub(generation_service_pb2_grpc.GenerationServiceStub)
    conversations = _LazyStub(conversation_service_pb2_grpc.ConversationServiceStub)
    quota = _LazyStub(quota_service_pb2_grpc.QuotaServiceStub)
    keys = _LazyStub(key_service_pb2_grpc.KeyServiceStub)
    escalations = _LazyStub(escalation_service_pb2_grpc.EscalationServiceStub)
    experiments = _LazyStub(experiment_service_pb2_grpc.ExperimentServiceStub)

    async def generate(
        self,
        request: GenerateInput,
        *,
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
        priority: Priority | None = None,
    ) -> generate_pb2.GenerateResponse:
        """One whole answer. With `retry_policy`, UNAVAILABLE / RESOURCE_EXHAUSTED are retried within
        `timeout` under one request_id, so the sidecar charges a repeated request once."""
        req = messages.generate_request(request, priority)
        if retry_policy is None:
            return await self._generate(req, timeout)
        if not req.input.request_id:
            req = generate_pb2.GenerateRequest()
            req.CopyFrom(messages.generate_request(request, priority))
            req.input.request_id = uuid.uuid4().hex
        return await retry.call_async(lambda left: self._generate(req, left), retry_policy, timeout)

    async def _generate(
        self, req: generate_pb2.GenerateRequest, timeout: float | None
    ) -> generate_pb2.GenerateResponse:
        self._check_open()
        try:
            response: generate_pb2.GenerateResponse = await self.generation.Generate(req, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None
        return response

    async def embed(
        self,
        request: EmbedInput,
        *,
        tenant_id: str = "",
        user_id: str = "",
        route: str = "",
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
    ) -> embed_pb2.EmbedResponse:
        """One vector per text (`response.embeddings[i].values`), in order; `request` is an
        EmbedRequest or the texts (then `tenant_id`, `user_id`, `route` fill the request). With
        `retry_policy`, UNAVAILABLE / RESOURCE_EXHAUSTED are retried within `timeout` under one
        request_id (made when the request has none), so the sidecar charges a repeated request once."""
        req = messages.embed_request(request, tenant_id=tenant_id, user_id=user_id, route=route)
        if retry_policy is None:
            return await self._unary(self.generation.Embed, req, timeout)  # type: ignore[no-any-return]
        keyed = messages.with_request_id(req)
        response: embed_pb2.EmbedResponse = await retry.call_async(
            lambda left: self._unary(self.generation.Embed, keyed, left), retry_policy, timeout
        )
        return response

    def stream(
        self,
        request: StreamInput,
        *,
        timeout: float | None = None,
        priority: Priority | None = None,
    ) -> AsyncStream:
        """The answer as it is generated: `async for event in client.stream(...)`; `.cancel()` stops it.
        Made inside a running loop, the call starts at once; made where none runs, it starts in the
        loop that first reads it."""
        self._check_open()
        req = messages.stream_request(request, priority)
        stream = AsyncStream(lambda: self.generation.StreamGenerate(req, timeout=timeout))
        if running_loop() is not None:
            stream._start()
        return stream

    async def switch(
        self, request: personas_pb2.SwitchRequest, *, timeout: float | None = None
    ) -> personas_pb2.SwitchResponse:
        """Change a conversation's persona (by id, or a command such as `/persona critic`)."""
        return await self._unary(self.conversations.Switch, request, timeout)  # type: ignore[no-any-return]

    async def get_quota(
        self,
        tenant_id: str,
        user_id: str = "",
        *,
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
    ) -> quota_pb2.GetQuotaResponse:
        """The caller's tier and every limit that applies, with what is used and left."""
        request = quota_pb2.GetQuotaRequest(tenant_id=tenant_id, user_id=user_id)
        return await self._retried(self.quota.GetQuota, request, timeout, retry_policy)  # type: ignore[no-any-return]

    async def feedback(
        self,
        tenant_id: str,
        request_id: str,
        score: float,
        label: str = "",
        *,
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
    ) -> experiments_pb2.FeedbackResponse:
        """Score a finished call of the tenant (by its request id) once; the same score again is
        harmless (`already_recorded`), another one raises ConflictError (FEEDBACK_EXISTS)."""
        request = feedback_request(tenant_id, request_id, score, label)
        return await self._retried(self.experiments.Feedback, request, timeout, retry_policy)  # type: ignore[no-any-return]

    async def get_experiment_report(
        self,
        tenant_id: str,
        experiment: str,
        start: datetime,
        end: datetime,
        *,
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
    ) -> experiments_pb2.GetExperimentReportResponse:
        """The tenant's calls of an experiment in [start, end): per variant statistics, the tests
        against the control and a verdict (statistics without a finite value are unset)."""
        request = report_request(tenant_id, experiment, start, end)
        return await self._retried(self.experiments.GetExperimentReport, request, timeout, retry_policy)  # type: ignore[no-any-return]

    async def list_models(
        self,
        request: models_pb2.ListModelsRequest | None = None,
        *,
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
    ) -> models_pb2.ListModelsResponse:
        request = request or models_pb2.ListModelsRequest()
        return await self._retried(self.generation.ListModels, request, timeout, retry_policy)  # type: ignore[no-any-return]

    async def accept_escalation(
        self, tenant_id: str, user_id: str, escalation_id: str, *, timeout: float | None = None
    ) -> escalation_pb2.AcceptEscalationResponse:
        """The user accepts an escalation offer (`summary.answer_decision.escalation_id`): queued."""
        request = escalation_pb2.AcceptEscalationRequest(
            tenant_id=tenant_id, user_id=user_id, escalation_id=escalation_id
        )
        return await self._unary(self.escalations.AcceptEscalation, request, timeout)  # type: ignore[no-any-return]

    async def list_escalations(
        self, request: escalation_pb2.ListEscalationsRequest, *, timeout: float | None = None
    ) -> escalation_pb2.ListEscalationsResponse:
        """One page of an agent's escalations (the creator's queue: QUEUED unless `states` says)."""
        return await self._unary(self.escalations.ListEscalations, request, timeout)  # type: ignore[no-any-return]

    async def answer_escalation(
        self, request: escalation_pb2.AnswerEscalationRequest, *, timeout: float | None = None
    ) -> escalation_pb2.AnswerEscalationResponse:
        """The creator answers: the answer becomes a canonical answer and joins the conversation."""
        return await self._unary(self.escalations.AnswerEscalation, request, timeout)  # type: ignore[no-any-return]

    async def decline_escalation(
        self, request: escalation_pb2.DeclineEscalationRequest, *, timeout: float | None = None
    ) -> escalation_pb2.DeclineEscalationResponse:
        return await self._unary(self.escalations.DeclineEscalation, request, timeout)  # type: ignore[no-any-return]

    async def get_answer_report(
        self, tenant_id: str, agent_id: str, *, timeout: float | None = None
    ) -> escalation_pb2.GetAnswerReportResponse:
        """An agent's figures: auto-answer and reuse rates, backlog, declines, time to answer."""
        request = escalation_pb2.GetAnswerReportRequest(tenant_id=tenant_id, agent_id=agent_id)
        return await self._unary(self.escalations.GetAnswerReport, request, timeout)  # type: ignore[no-any-return]

    async def _retried(
        self, method: Any, request: Any, timeout: float | None, policy: retry.RetryPolicy | None
    ) -> Any:
        """A call safe to repeat (a read, or a score whose repeat is `already_recorded`), retried
        under `policy` within `timeout` when one is given (Switch never is: docs)."""
        if policy is None:
            return await self._unary(method, request, timeout)
        return await retry.call_async(lambda left: self._unary(method, request, left), policy, timeout)

    async def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        self._check_open()
        try:
            return await method(request, timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None

    def _check_open(self) -> None:
        if self._closed:
            raise closed_error()

    async def close(self) -> None:
        """Ends the connection: calls still open, and every call made after, fail CANCELLED."""
        self._closed = True
        await self._channels.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def closed_error() -> CancelledError:
    """A call on a closed client, as in every client (grpc's own is a ValueError, no SidecarError)."""
    return CancelledError(grpc.StatusCode.CANCELLED, "the client is closed")


class AsyncStream:
    """One StreamGenerate call: iterate for the events (deltas, then one `result`).

    After iteration, `result` is the final GenerateResponse and `text` the joined deltas. A failure
    raises a typed SidecarError (STREAM_INTERRUPTED after a delta: `StreamInterruptedError`, with
    `partial_usage`); `cancel()` ends the call and a following read raises `CancelledError`.
    """

    def __init__(self, start: Any) -> None:
        self._start_call = start
        self._call: Any = None  # the grpc.aio call, once started
        self._cancelled = False
        self._pieces: list[str] = []
        self.deltas = 0
        self.result: generate_pb2.GenerateResponse | None = None

    def _start(self) -> Any:
        if self._call is None:
            self._call = self._start_call()
        return self._call

    @property
    def text(self) -> str:
        return "".join(self._pieces)

    def __aiter__(self) -> AsyncIterator[generate_pb2.StreamGenerateResponse]:
        return self._events()

    async def _events(self) -> AsyncIterator[generate_pb2.StreamGenerateResponse]:
        if self._cancelled:
            raise self._cancelled_error()
        call = self._start()
        try:
            async for event in call:
                self._record(event)
                yield event
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err, deltas_received=self.deltas) from None
        except asyncio.CancelledError:
            if not self._cancelled:
                raise
        finally:
            # a loop left early (break, an exception in its body, aclose) ends the call on the
            # wire: otherwise the sidecar keeps generating, and charging, for a reader that is gone
            if not call.done():
                self.cancel()
        if self._cancelled:
            raise self._cancelled_error()
        if self.result is None:
            raise build(grpc.StatusCode.UNAVAILABLE, "the stream ended without a result", None,
                        deltas_received=self.deltas)  # fmt: skip

    def _record(self, event: generate_pb2.StreamGenerateResponse) -> None:
        kind = event.WhichOneof("event")
        if kind == "delta":
            self.deltas += 1
            if event.delta.WhichOneof("kind") == "text":
                self._pieces.append(event.delta.text)
        elif kind == "result":
            self.result = event.result

    def _cancelled_error(self) -> SidecarError:
        return CancelledError(
            grpc.StatusCode.CANCELLED, "cancelled by the client", deltas_received=self.deltas
        )

    def cancel(self) -> None:
        """Stop the call: the sidecar stops generating and charges what was produced."""
        self._cancelled = True
        if self._call is not None:  # one never started is never sent
            self._call.cancel()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.result is None and not self._cancelled:
            self.cancel()
