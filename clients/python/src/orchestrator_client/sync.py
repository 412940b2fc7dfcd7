"""The blocking client: the same calls as `AsyncClient`, for code without an event loop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import grpc

from . import experiments, messages, retry
from ._auth import sync_channel
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
from .aio import EmbedInput, GenerateInput, StreamInput, closed_error
from .errors import CancelledError, build, from_rpc_error


class Client:
    """A connection to the sidecar. Use `with Client() as client:` or call `close()`."""

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
        self._raw = grpc.insecure_channel(conn.target, options=channel_options(max_reply_bytes, options))
        self.channel = sync_channel(self._raw, conn.token)
        self.generation = generation_service_pb2_grpc.GenerationServiceStub(self.channel)
        self.conversations = conversation_service_pb2_grpc.ConversationServiceStub(self.channel)
        self.quota = quota_service_pb2_grpc.QuotaServiceStub(self.channel)
        self.keys = key_service_pb2_grpc.KeyServiceStub(self.channel)
        self.escalations = escalation_service_pb2_grpc.EscalationServiceStub(self.channel)
        self.experiments = experiment_service_pb2_grpc.ExperimentServiceStub(self.channel)

    def generate(
        self,
        request: GenerateInput,
        *,
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
        priority: experiments.Priority | None = None,
    ) -> generate_pb2.GenerateResponse:
        """One whole answer; `retry_policy` as in `AsyncClient.generate`."""
        req = messages.generate_request(request, priority)
        if retry_policy is None:
            return self._unary(self.generation.Generate, req, timeout)  # type: ignore[no-any-return]
        if not req.input.request_id:
            req = generate_pb2.GenerateRequest()
            req.CopyFrom(messages.generate_request(request, priority))
            req.input.request_id = uuid.uuid4().hex
        response: generate_pb2.GenerateResponse = retry.call_sync(
            lambda left: self._unary(self.generation.Generate, req, left), retry_policy, timeout
        )
        return response

    def embed(
        self,
        request: EmbedInput,
        *,
        tenant_id: str = "",
        user_id: str = "",
        route: str = "",
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
    ) -> embed_pb2.EmbedResponse:
        """One vector per text, in order; the arguments as in `AsyncClient.embed`."""
        req = messages.embed_request(request, tenant_id=tenant_id, user_id=user_id, route=route)
        if retry_policy is None:
            return self._unary(self.generation.Embed, req, timeout)  # type: ignore[no-any-return]
        keyed = messages.with_request_id(req)
        response: embed_pb2.EmbedResponse = retry.call_sync(
            lambda left: self._unary(self.generation.Embed, keyed, left), retry_policy, timeout
        )
        return response

    def stream(
        self,
        request: StreamInput,
        *,
        timeout: float | None = None,
        priority: experiments.Priority | None = None,
    ) -> Stream:
        if self._closed:
            raise closed_error()
        call = self.generation.StreamGenerate(messages.stream_request(request, priority), timeout=timeout)
        return Stream(call)

    def switch(
        self, request: personas_pb2.SwitchRequest, *, timeout: float | None = None
    ) -> personas_pb2.SwitchResponse:
        return self._unary(self.conversations.Switch, request, timeout)  # type: ignore[no-any-return]

    def get_quota(
        self,
        tenant_id: str,
        user_id: str = "",
        *,
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
    ) -> quota_pb2.GetQuotaResponse:
        request = quota_pb2.GetQuotaRequest(tenant_id=tenant_id, user_id=user_id)
        return self._retried(self.quota.GetQuota, request, timeout, retry_policy)  # type: ignore[no-any-return]

    def feedback(
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
        request = experiments.feedback_request(tenant_id, request_id, score, label)
        return self._retried(self.experiments.Feedback, request, timeout, retry_policy)  # type: ignore[no-any-return]

    def get_experiment_report(
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
        request = experiments.report_request(tenant_id, experiment, start, end)
        return self._retried(self.experiments.GetExperimentReport, request, timeout, retry_policy)  # type: ignore[no-any-return]

    def list_models(
        self,
        request: models_pb2.ListModelsRequest | None = None,
        *,
        timeout: float | None = None,
        retry_policy: retry.RetryPolicy | None = None,
    ) -> models_pb2.ListModelsResponse:
        request = request or models_pb2.ListModelsRequest()
        return self._retried(self.generation.ListModels, request, timeout, retry_policy)  # type: ignore[no-any-return]

    def accept_escalation(
        self, tenant_id: str, user_id: str, escalation_id: str, *, timeout: float | None = None
    ) -> escalation_pb2.AcceptEscalationResponse:
        request = escalation_pb2.AcceptEscalationRequest(
            tenant_id=tenant_id, user_id=user_id, escalation_id=escalation_id
        )
        return self._unary(self.escalations.AcceptEscalation, request, timeout)  # type: ignore[no-any-return]

    def list_escalations(
        self, request: escalation_pb2.ListEscalationsRequest, *, timeout: float | None = None
    ) -> escalation_pb2.ListEscalationsResponse:
        return self._unary(self.escalations.ListEscalations, request, timeout)  # type: ignore[no-any-return]

    def answer_escalation(
        self, request: escalation_pb2.AnswerEscalationRequest, *, timeout: float | None = None
    ) -> escalation_pb2.AnswerEscalationResponse:
        return self._unary(self.escalations.AnswerEscalation, request, timeout)  # type: ignore[no-any-return]

    def decline_escalation(
        self, request: escalation_pb2.DeclineEscalationRequest, *, timeout: float | None = None
    ) -> escalation_pb2.DeclineEscalationResponse:
        return self._unary(self.escalations.DeclineEscalation, request, timeout)  # type: ignore[no-any-return]

    def get_answer_report(
        self, tenant_id: str, agent_id: str, *, timeout: float | None = None
    ) -> escalation_pb2.GetAnswerReportResponse:
        request = escalation_pb2.GetAnswerReportRequest(tenant_id=tenant_id, agent_id=agent_id)
        return self._unary(self.escalations.GetAnswerReport, request, timeout)  # type: ignore[no-any-return]

    def _retried(
        self, method: Any, request: Any, timeout: float | None, policy: retry.RetryPolicy | None
    ) -> Any:
        """A call safe to repeat (a read, or a score whose repeat is `already_recorded`), retried
        under `policy` within `timeout` when one is given (Switch never is: docs)."""
        if policy is None:
            return self._unary(method, request, timeout)
        return retry.call_sync(lambda left: self._unary(method, request, left), policy, timeout)

    def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        if self._closed:
            raise closed_error()
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def close(self) -> None:
        """Ends the connection: calls still open, and every call made after, fail CANCELLED."""
        self._closed = True
        self._raw.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Stream:
    """One StreamGenerate call, iterated with `for`; see `AsyncStream`."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._cancelled = False
        self._pieces: list[str] = []
        self.deltas = 0
        self.result: generate_pb2.GenerateResponse | None = None

    @property
    def text(self) -> str:
        return "".join(self._pieces)

    def __iter__(self) -> Iterator[generate_pb2.StreamGenerateResponse]:
        try:
            for event in self._call:
                self._record(event)
                yield event
        except grpc.RpcError as err:
            if self._cancelled:
                raise CancelledError(
                    grpc.StatusCode.CANCELLED, "cancelled by the client", deltas_received=self.deltas
                ) from None
            raise from_rpc_error(err, deltas_received=self.deltas) from None
        finally:
            if not self._call.done():  # a loop left early ends the call on the wire (see AsyncStream)
                self.cancel()
        if self._cancelled:
            raise CancelledError(
                grpc.StatusCode.CANCELLED, "cancelled by the client", deltas_received=self.deltas
            )
        if self.result is None:
            raise build(
                grpc.StatusCode.UNAVAILABLE,
                "the stream ended without a result",
                None,
                deltas_received=self.deltas,
            )

    def _record(self, event: generate_pb2.StreamGenerateResponse) -> None:
        kind = event.WhichOneof("event")
        if kind == "delta":
            self.deltas += 1
            if event.delta.WhichOneof("kind") == "text":
                self._pieces.append(event.delta.text)
        elif kind == "result":
            self.result = event.result

    def cancel(self) -> None:
        self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.result is None and not self._cancelled:
            self.cancel()
