"""The grpc.aio servicer: convert at the edge, run the pipeline, classify errors once."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any, NoReturn

import grpc

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import models_pb2
from sidecar.api import convert
from sidecar.api.errors import abort, internal
from sidecar.config.schema import Policy
from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import SidecarError
from sidecar.core.layer import Handler, collect
from sidecar.core.types import Call, CallRecord
from sidecar.pipeline.authn import TokenVerifier
from sidecar.providers.base import Provider
from sidecar.routing.plan import Routing

_log = logging.getLogger("sidecar.api")
Context = grpc.aio.ServicerContext[Any, Any]


class OrchestratorServicer:
    """Implements orchestrator.v1.OrchestratorService (registered by the generated adder)."""

    def __init__(
        self,
        *,
        pipeline: Handler,
        policy: Policy,
        routing: Routing,
        providers: Mapping[str, Provider],
        verifier: TokenVerifier,
        clock: Clock,
    ) -> None:
        self._pipeline = pipeline
        self._policy = policy
        self._routing = routing
        self._providers = providers
        self._verifier = verifier
        self._clock = clock

    async def Generate(self, request: gen.GenerateRequest, context: Context) -> gen.GenerateResponse:
        call = await self._call(request, context, stream=False)
        try:
            text, _ = await collect(self._pipeline, call)
        except Exception as exc:
            await self._fail(context, call, exc)
        summary = self._summary(call)
        return gen.GenerateResponse(text=text, summary=summary)

    async def StreamGenerate(
        self, request: gen.StreamGenerateRequest, context: Context
    ) -> AsyncGenerator[gen.StreamGenerateResponse, None]:
        call = await self._call(request, context, stream=True)
        record = call.record
        try:
            async with aclosing(self._pipeline(call)) as stream:
                async for chunk in stream:
                    if chunk.text:
                        if record.first_token_at is None:
                            record.first_token_at = self._clock.monotonic()
                        yield convert.to_delta(chunk)
        except Exception as exc:
            await self._fail(context, call, exc)
        yield gen.StreamGenerateResponse(summary=self._summary(call))

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: Context
    ) -> models_pb2.ListModelsResponse:
        try:
            self._verifier.verify(convert.credentials_from(context.invocation_metadata()))
        except SidecarError as err:
            await abort(context, err)
        return convert.to_list_models(self._routing, self._policy.deployments, self._providers)

    async def _call(self, request: convert.GenerateLike, context: Context, *, stream: bool) -> Call:
        record = CallRecord(started_at=self._clock.monotonic())
        try:
            return convert.to_call(
                request,
                stream=stream,
                limits=self._policy.limits,
                deadline=Deadline.after(context.time_remaining(), self._clock),
                credentials=convert.credentials_from(context.invocation_metadata()),
                record=record,
            )
        except SidecarError as err:
            _log.info("rejected request", extra={"reason": err.reason, "detail": err.message})
            await abort(context, err)

    async def _fail(self, context: Context, call: Call, exc: Exception) -> NoReturn:
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        err = exc if isinstance(exc, SidecarError) else internal(call.request_id)
        fields = {"request_id": call.request_id, "route": call.model, "reason": err.reason}
        if isinstance(exc, SidecarError):
            _log.warning("call failed: %s", err.message, extra=fields)
        else:
            _log.error("call crashed", exc_info=exc, extra=fields)
        await abort(context, err)

    def _summary(self, call: Call) -> gen.GenerationSummary:
        return convert.to_summary(
            call.record, request_id=call.request_id, finished_at=self._clock.monotonic()
        )
