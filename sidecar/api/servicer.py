"""The grpc.aio servicer: convert at the edge, run the pipeline, classify errors once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, NoReturn, Protocol

import grpc

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import keys_pb2, models_pb2, personas_pb2, quota_pb2, usage_pb2
from sidecar.api import convert
from sidecar.api import keys as api_keys
from sidecar.api import personas as api_personas
from sidecar.api import quota as api_quota
from sidecar.api import usage as api_usage
from sidecar.api.errors import abort, internal
from sidecar.config.schema import Policy
from sidecar.core.clock import Clock, Deadline
from sidecar.core.drain import Drain
from sidecar.core.errors import KeysDisabledError, SidecarError, StreamInterruptedError
from sidecar.core.layer import Handler, collect, inner_stream
from sidecar.core.outcome import Outcome
from sidecar.core.tokens import count_prompt_tokens, count_tokens
from sidecar.core.types import Call, Usage
from sidecar.keys.service import KeyService
from sidecar.ledger.writer import LedgerWriter
from sidecar.personas.service import PersonaService
from sidecar.pipeline.authn import TokenVerifier
from sidecar.providers.base import Provider
from sidecar.quota.service import QuotaService
from sidecar.routing.plan import Routing

_log = logging.getLogger("sidecar.api")
Context = grpc.aio.ServicerContext[Any, Any]


class EdgeMetrics(Protocol):
    """What the servicer itself reports (the pipeline's calls are measured by the observe layer)."""

    def call_rejected(self, stream: bool, code: str) -> None: ...

    def persona_switched(self, outcome: str) -> None: ...


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
        keys: KeyService | None = None,
        personas: PersonaService | None = None,
        quota: QuotaService | None = None,
        ledger: LedgerWriter | None = None,
        metrics: EdgeMetrics | None = None,
        drain: Drain | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._drain = drain or Drain(clock)
        self._policy = policy
        self._routing = routing
        self._providers = providers
        self._verifier = verifier
        self._clock = clock
        self._keys = keys
        self._quota = quota
        self._ledger = ledger
        self._metrics = metrics
        self._tiers = convert.Tiers(policy.tier_assignment, tuple(policy.tiers))
        self._personas = personas

    async def Generate(self, request: gen.GenerateRequest, context: Context) -> gen.GenerateResponse:
        call = await self._call(request, context, stream=False)
        try:
            with self._drain.call():
                text, _ = await collect(self._pipeline, call)
        except asyncio.CancelledError:
            if not self._drain.cut_now():
                raise  # the caller's own cancellation
            await self._cut(context, call, ())
        except Exception as exc:
            await self._fail(context, call, exc)
        summary = self._summary(call)
        return gen.GenerateResponse(text=text, summary=summary)

    async def StreamGenerate(
        self, request: gen.StreamGenerateRequest, context: Context
    ) -> AsyncGenerator[gen.StreamGenerateResponse, None]:
        call = await self._call(request, context, stream=True)
        delivered: list[str] = []
        try:
            with self._drain.call():
                async with inner_stream(self._pipeline, call) as stream:
                    async for chunk in stream:
                        if chunk.text:
                            delivered.append(chunk.text)
                            yield convert.to_delta(chunk)
        except asyncio.CancelledError:
            if not self._drain.cut_now():
                raise  # the caller's own cancellation
            await self._cut(context, call, delivered)
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

    async def RegisterKey(
        self, request: keys_pb2.RegisterKeyRequest, context: Context
    ) -> keys_pb2.RegisterKeyResponse:
        keys = await self._admit(context)
        try:
            owner, secret = api_keys.register_context(request)
            record = await keys.register(owner, secret)
        except Exception as exc:
            await self._rpc_failure(context, exc, "RegisterKey")
        return keys_pb2.RegisterKeyResponse(key_ref=record.ref, last_four=record.last_four)

    async def ListKeys(
        self, request: keys_pb2.ListKeysRequest, context: Context
    ) -> keys_pb2.ListKeysResponse:
        keys = await self._admit(context)
        try:
            records = await keys.list(*api_keys.list_owner(request))
        except Exception as exc:
            await self._rpc_failure(context, exc, "ListKeys")
        return keys_pb2.ListKeysResponse(keys=[api_keys.to_key_info(r) for r in records])

    async def DeleteKey(
        self, request: keys_pb2.DeleteKeyRequest, context: Context
    ) -> keys_pb2.DeleteKeyResponse:
        keys = await self._admit(context)
        try:
            deleted = await keys.delete(*api_keys.delete_target(request))
        except Exception as exc:
            await self._rpc_failure(context, exc, "DeleteKey")
        return keys_pb2.DeleteKeyResponse(deleted=deleted)

    async def RotateKeys(
        self, request: keys_pb2.RotateKeysRequest, context: Context
    ) -> keys_pb2.RotateKeysResponse:
        keys = await self._admit(context)
        try:
            rotated, failed = await keys.rotate()
        except Exception as exc:
            await self._rpc_failure(context, exc, "RotateKeys")
        return keys_pb2.RotateKeysResponse(rotated=rotated, failed=failed)

    async def ListPersonas(
        self, request: personas_pb2.ListPersonasRequest, context: Context
    ) -> personas_pb2.ListPersonasResponse:
        service = await self._admit_personas(context)
        try:
            category, tier = api_personas.list_filter(request, self._tiers)
        except SidecarError as err:
            await abort(context, err)
        found = service.registry.list(category=category, tier=tier)
        return personas_pb2.ListPersonasResponse(
            personas=[api_personas.to_persona(p) for p in found],
            default_persona_id=service.registry.default or "",
        )

    async def Switch(
        self, request: personas_pb2.SwitchRequest, context: Context
    ) -> personas_pb2.SwitchResponse:
        service = await self._admit_personas(context)
        try:
            result = await service.switch(
                api_personas.switch_command(request, self._tiers, self._policy.limits)
            )
        except asyncio.CancelledError:
            self._switched("CANCELLED")
            raise
        except Exception as exc:
            self._switched(exc.reason if isinstance(exc, SidecarError) else "INTERNAL")
            await self._rpc_failure(context, exc, "Switch")
        self._switched("OK")
        return api_personas.to_switch_response(result)

    def _switched(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.persona_switched(outcome)

    async def ListSwitchHistory(
        self, request: personas_pb2.ListSwitchHistoryRequest, context: Context
    ) -> personas_pb2.ListSwitchHistoryResponse:
        service = await self._admit_personas(context)
        try:
            records = await service.switches(*api_personas.history_query(request))
        except Exception as exc:
            await self._rpc_failure(context, exc, "ListSwitchHistory")
        return personas_pb2.ListSwitchHistoryResponse(
            switches=[api_personas.to_switch_record(r) for r in records]
        )

    async def ClearConversation(
        self, request: personas_pb2.ClearConversationRequest, context: Context
    ) -> personas_pb2.ClearConversationResponse:
        service = await self._admit_personas(context)
        try:
            cleared = await service.clear(api_personas.conversation_key(request))
        except Exception as exc:
            await self._rpc_failure(context, exc, "ClearConversation")
        return personas_pb2.ClearConversationResponse(cleared=cleared)

    async def _admit_personas(self, context: Context) -> PersonaService:
        try:
            self._verifier.verify(convert.credentials_from(context.invocation_metadata()))
        except SidecarError as err:
            await abort(context, err)
        assert self._personas is not None, "the composition root always builds the persona service"
        return self._personas

    async def GetQuota(
        self, request: quota_pb2.GetQuotaRequest, context: Context
    ) -> quota_pb2.GetQuotaResponse:
        try:
            self._verifier.verify(convert.credentials_from(context.invocation_metadata()))
            tenant, user, tier = api_quota.quota_caller(request, self._tiers, self._policy.limits)
            states = [] if self._quota is None else await self._quota.snapshot(tenant, user, tier)
        except Exception as exc:
            await self._rpc_failure(context, exc, "GetQuota")
        return api_quota.to_response(tier, states)

    async def GetUsage(
        self, request: usage_pb2.GetUsageRequest, context: Context
    ) -> usage_pb2.GetUsageResponse:
        try:
            self._verifier.verify(convert.credentials_from(context.invocation_metadata()))
            return await api_usage.get_usage(self._ledger, request)
        except SidecarError as err:
            await abort(context, err)

    async def _rpc_failure(self, context: Context, exc: Exception, rpc: str) -> NoReturn:
        """The failure of an RPC other than a generation: classified errors go out as they are;
        anything else (a store I/O error, a bug) is INTERNAL, logged with the RPC's name."""
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, SidecarError):
            await abort(context, exc)
        request_id = uuid.uuid4().hex
        _log.error("%s crashed", rpc, exc_info=exc, extra={"request_id": request_id})
        await abort(context, internal(request_id))

    async def _admit(self, context: Context) -> KeyService:
        """Authenticate a key RPC and check user keys are on."""
        try:
            self._verifier.verify(convert.credentials_from(context.invocation_metadata()))
            if self._keys is None:
                raise KeysDisabledError("this sidecar has no key backend configured (settings.keys.backend)")
        except SidecarError as err:
            await abort(context, err)
        return self._keys

    async def _call(
        self, request: gen.GenerateRequest | gen.StreamGenerateRequest, context: Context, *, stream: bool
    ) -> Call:
        record = Outcome(started_at=self._clock.monotonic())
        try:
            call = convert.to_call(
                request,
                stream=stream,
                limits=self._policy.limits,
                deadline=Deadline.after(context.time_remaining(), self._clock),
                credentials=convert.credentials_from(context.invocation_metadata()),
                record=record,
                tiers=self._tiers,
            )
            return api_personas.with_persona_fields(call, request)
        except SidecarError as err:
            _log.info("rejected request", extra={"reason": err.reason, "detail": err.message})
            if self._metrics is not None:
                self._metrics.call_rejected(stream, err.code.value)
            await abort(context, err)

    async def _cut(self, context: Context, call: Call, delivered: Sequence[str]) -> NoReturn:
        """The shutdown cut the call (its grace ran out): end it with an explicit status and the
        partial usage instead of a bare CANCELLED."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        err = shutdown_cut(call, delivered)
        _log.warning("call cut by shutdown", extra={"request_id": call.request_id, "reason": err.reason})
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
        summary = convert.to_summary(
            call.record, request_id=call.request_id, finished_at=self._clock.monotonic()
        )
        return api_personas.annotate_summary(summary, call.record)


def shutdown_cut(call: Call, delivered: Sequence[str]) -> StreamInterruptedError:
    """The status of a call the shutdown cut: like an upstream interruption, with the partial usage
    (the prompt and the text delivered, counted by the sidecar) and the cause."""
    record = call.record
    usage = Usage(
        prompt_tokens=record.usage.prompt_tokens or count_prompt_tokens(m.text for m in call.messages),
        completion_tokens=max(record.usage.completion_tokens, sum(count_tokens(t) for t in delivered)),
    )
    target = record.target
    return StreamInterruptedError(
        "the sidecar shut down before the call finished (its shutdown grace ran out)",
        metadata={
            "deployment": target.deployment if target is not None else "",
            "cause": "SIDECAR_SHUTDOWN",
            "promptTokens": str(usage.prompt_tokens),
            "completionTokens": str(usage.completion_tokens),
            "usageEstimated": "true",
        },
    )
