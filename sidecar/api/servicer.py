"""orchestrator.v1.GenerationService: convert at the edge, run the pipeline, classify errors once."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import NoReturn, Protocol

import grpc

from sidecar._gen.orchestrator.v1 import embed_pb2, models_pb2
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.api import convert, tools
from sidecar.api import embed as api_embed
from sidecar.api import personas as api_personas
from sidecar.api.answer import Answer
from sidecar.api.errors import abort, internal
from sidecar.api.gate import Context, Gate, rpc_failure
from sidecar.api.paging import PageTokens
from sidecar.authz.scope import caller_scope
from sidecar.config.schema import Policy
from sidecar.core.clock import Clock, Deadline
from sidecar.core.drain import Drain
from sidecar.core.errors import SidecarDrainingError, SidecarError, StreamInterruptedError
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.outcome import Outcome
from sidecar.core.tokens import count_prompt_tokens, count_tokens
from sidecar.core.types import Call, Usage
from sidecar.embeddings.service import EmbeddingService, EmbedRequest
from sidecar.idempotency.replay import Replays
from sidecar.providers.base import Provider
from sidecar.routing.plan import Routing

_log = logging.getLogger("sidecar.api")
SCHEMA_CHECKS = 2  # requests whose JSON Schemas are checked at once, each on a thread
EMBED_CUT = "the sidecar shut down before the embedding call finished (its shutdown grace ran out); retry it"


class EdgeMetrics(Protocol):
    """What the servicer itself reports (the pipeline's calls are measured by the observe layer)."""

    def call_rejected(self, stream: bool, code: str, reason: str) -> None: ...


class GenerationServicer:
    """Implements orchestrator.v1.GenerationService (registered by the generated adder)."""

    def __init__(
        self,
        *,
        gate: Gate,
        pipeline: Handler,
        policy: Policy,
        routing: Routing,
        providers: Mapping[str, Provider],
        clock: Clock,
        pages: PageTokens,
        metrics: EdgeMetrics | None = None,
        replays: Replays | None = None,
        drain: Drain | None = None,
        embeddings: EmbeddingService | None = None,
    ) -> None:
        self._embeddings = embeddings
        self._gate = gate
        self._replays = replays
        self._embed_replays = None if replays is None else replays.scoped("embed", field="request_id")
        self._pipeline = pipeline
        self._drain = drain or Drain(clock)
        self._policy = policy
        self._routing = routing
        self._providers = providers
        self._clock = clock
        self._pages = pages
        self._metrics = metrics
        self._tiers = convert.Tiers(policy.tier_assignment, tuple(policy.tiers))
        self._schema_checks = asyncio.Semaphore(SCHEMA_CHECKS)

    async def Generate(self, request: gen.GenerateRequest, context: Context) -> gen.GenerateResponse:
        what = request.input
        caller = await self._gate.admit(context, "Generate", what.tenant_id, self._refused_unary)
        call = await self._call(what, context, stream=False, caller=caller.name)
        if self._replays is None or not what.request_id:
            return await self._generate(call, context)
        try:
            raw, replayed = await self._replays.answer(
                caller_scope(what.tenant_id, caller.name),
                what.request_id,
                what.SerializeToString(deterministic=True),
                lambda: self._generate_bytes(call, context),
            )
        except Exception as exc:
            await self._fail(context, call, exc)
        response = gen.GenerateResponse.FromString(raw)
        response.summary.replayed = replayed
        return response

    async def _generate(self, call: Call, context: Context) -> gen.GenerateResponse:
        answer = Answer()  # a unary answer carries no thinking
        try:
            with self._drain.call():
                async with inner_stream(self._pipeline, call) as stream:
                    async for chunk in stream:
                        answer.feed(chunk)
        except asyncio.CancelledError:
            if not self._drain.cut_now():
                raise  # the caller's own cancellation
            await self._cut(context, call, ())
        except Exception as exc:
            await self._fail(context, call, exc)
        return self._response(call, answer)

    async def _generate_bytes(self, call: Call, context: Context) -> bytes:
        return (await self._generate(call, context)).SerializeToString()

    async def StreamGenerate(
        self, request: gen.StreamGenerateRequest, context: Context
    ) -> AsyncGenerator[gen.StreamGenerateResponse, None]:
        caller = await self._gate.admit(
            context, "StreamGenerate", request.input.tenant_id, self._refused_stream
        )
        call = await self._call(request.input, context, stream=True, caller=caller.name)
        reasoning = call.params.reasoning
        answer = Answer(thinking=reasoning is not None and reasoning.include_thinking)
        try:
            with self._drain.call():
                async with inner_stream(self._pipeline, call) as stream:
                    async for chunk in stream:
                        for delta in answer.feed(chunk):
                            yield delta
        except asyncio.CancelledError:
            if not self._drain.cut_now():
                raise  # the caller's own cancellation
            await self._cut(context, call, (answer.text,))
        except Exception as exc:
            await self._fail(context, call, exc)
        final = gen.StreamGenerateResponse()
        self._response(call, answer, final.result)
        yield final

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: Context
    ) -> models_pb2.ListModelsResponse:
        await self._gate.admit(context, "ListModels", None)
        try:
            at = self._pages.request(request)
        except SidecarError as exc:
            await rpc_failure(context, exc, "ListModels")
        routes = convert.to_routes(self._routing, self._policy.deployments, self._providers)
        page, token = self._pages.page(routes, at)
        return models_pb2.ListModelsResponse(routes=page, next_page_token=token)

    async def Embed(self, request: embed_pb2.EmbedRequest, context: Context) -> embed_pb2.EmbedResponse:
        """Validated before anything else (a refused request claims no idempotency key); a repeat of
        a request_id within the idempotency window gets the first call's answer, charged once."""
        caller = await self._gate.admit(context, "Embed", request.tenant_id)
        try:  # a provider call like Generate: refused while draining, given the grace when running
            with self._drain.call():
                req = api_embed.to_request(
                    request,
                    tiers=self._tiers,
                    limits=self._policy.limits,
                    deadline=Deadline.after(context.time_remaining(), self._clock),
                )
                if self._embed_replays is None or not request.request_id:
                    return await self._embed(req)
                raw, replayed = await self._embed_replays.answer(
                    caller_scope(request.tenant_id, caller.name),
                    request.request_id,
                    request.SerializeToString(deterministic=True),
                    lambda: self._embed_bytes(req),
                )
        except asyncio.CancelledError:
            if not self._drain.cut_now():
                raise  # the caller's own cancellation
            await rpc_failure(context, SidecarDrainingError(EMBED_CUT), "Embed")  # nothing was delivered
        except Exception as exc:
            await rpc_failure(context, exc, "Embed")
        response = embed_pb2.EmbedResponse.FromString(raw)
        response.replayed = replayed
        return response

    async def _embed(self, req: EmbedRequest) -> embed_pb2.EmbedResponse:
        if self._embeddings is None:
            raise RuntimeError("GenerationServicer built without an embedding service")
        return api_embed.to_response(await self._embeddings.embed(req), req.request_id)

    async def _embed_bytes(self, req: EmbedRequest) -> bytes:
        return (await self._embed(req)).SerializeToString()

    async def _call(
        self, request: gen.GenerationInput, context: Context, *, stream: bool, caller: str
    ) -> Call:
        """The request as a Call; `caller` is the name of the credential the gate authenticated."""
        record = Outcome(started_at=self._clock.monotonic())
        try:
            convert_call = functools.partial(
                convert.to_call,
                request,
                stream=stream,
                limits=self._policy.limits,
                deadline=Deadline.after(context.time_remaining(), self._clock),
                credentials=convert.credentials_from(context.invocation_metadata()),
                record=record,
                tiers=self._tiers,
            )
            call = dataclasses.replace(await self._converted(request, convert_call), caller=caller)
            return api_personas.with_persona_fields(call, request)
        except SidecarError as err:
            self._gate.refusal("rejected request", reason=err.reason, detail=err.message)
            self._rejected(stream, err)
            await abort(context, err)
        except Exception as exc:  # a bug in validation: INTERNAL with a request id, never grpc's UNKNOWN
            await rpc_failure(context, exc, "StreamGenerate" if stream else "Generate")

    async def _converted(self, request: gen.GenerationInput, convert_call: Callable[[], Call]) -> Call:
        """The converted call. Checking JSON Schemas costs CPU by the subschema: a request that carries
        some is converted off the event loop (so other calls go on), two at a time (the default
        executor also resolves upstream host names and refreshes credentials)."""
        if not tools.carries_schemas(request):
            return convert_call()
        async with self._schema_checks:
            return await asyncio.to_thread(convert_call)

    def malformed(self, method: str, err: SidecarError) -> None:
        """A request of `method` whose bytes did not decode (api/decode.py): a refused generation call."""
        if method in ("Generate", "StreamGenerate"):
            self._rejected(method == "StreamGenerate", err)

    def _refused_unary(self, err: SidecarError) -> None:
        self._rejected(False, err)

    def _refused_stream(self, err: SidecarError) -> None:
        self._rejected(True, err)

    def _rejected(self, stream: bool, err: SidecarError) -> None:
        """A generation call refused at the edge (the gate, a field): counted with empty route labels."""
        if self._metrics is not None:
            self._metrics.call_rejected(stream, err.code.value, err.reason)

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
        err = exc.nested_in(convert.INPUT) if isinstance(exc, SidecarError) else internal(call.request_id)
        # the route the call was resolved to (the default one named or not), else what it asked for
        route = call.record.route or call.model
        fields = {"request_id": call.request_id, "route": route, "reason": err.reason}
        if isinstance(exc, SidecarError):
            _log.warning("call failed: %s", err.message, extra=fields)
        else:
            _log.error("call crashed", exc_info=exc, extra=fields)
        await abort(context, err)

    def _response(
        self, call: Call, answer: Answer, into: gen.GenerateResponse | None = None
    ) -> gen.GenerateResponse:
        """The reply, built in its own fields (a sub-message given to a constructor is copied)."""
        response = gen.GenerateResponse() if into is None else into
        answer.message(response.message)
        summary = convert.to_summary(
            call.record,
            request_id=call.request_id,
            finished_at=self._clock.monotonic(),
            into=response.summary,
        )
        api_personas.annotate_summary(summary, call.record)
        return response


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
