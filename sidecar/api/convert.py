"""Proto <-> domain. Every field of a request is checked here, and all violations reported at once."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.protobuf import duration_pb2, timestamp_pb2

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import models_pb2
from sidecar.api import answers, content, context_cache, tools
from sidecar.api.priority import request_priority, requested_variant
from sidecar.config.schema import DeploymentConfig, RequestLimits
from sidecar.config.tiers import TierAssignment, UnknownTier, resolve_tier
from sidecar.core.clock import Deadline
from sidecar.core.errors import FieldViolation, InvalidRequestError
from sidecar.core.outcome import Outcome
from sidecar.core.types import (
    Call,
    Credentials,
    FinishReason,
    GenerationParams,
    InlineEnvelope,
    KeyRef,
    KeySource,
    Reasoning,
    Target,
)
from sidecar.providers.base import Provider
from sidecar.providers.registry import describe
from sidecar.quota.limits import to_micros
from sidecar.routing.breaker import BreakerState
from sidecar.routing.plan import Routing

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@\-]{0,127}")  # tenant, user, conversation, request ids
_ROUTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\-]{0,127}")
_META_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/\-]*")
# not printable: C0 and C1 controls, DEL, and the bidirectional embeddings, overrides and isolates that
# make a log line or a command read other than it is. The left-to-right and right-to-left marks
# (U+200E, U+200F) stay allowed: right-to-left keyboards put them in ordinary text.
NOT_PRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FINISH = {
    None: gen.FINISH_REASON_UNSPECIFIED,
    FinishReason.STOP: gen.FINISH_REASON_STOP,
    FinishReason.LENGTH: gen.FINISH_REASON_LENGTH,
    FinishReason.CONTENT_FILTER: gen.FINISH_REASON_CONTENT_FILTER,
    FinishReason.TOOL_CALLS: gen.FINISH_REASON_TOOL_CALLS,
}


MAX_VIOLATIONS = 20  # a hostile request must not make the error itself expensive
_MIN_SECONDS, _MAX_SECONDS = -62_135_596_800, 253_402_300_799  # google.protobuf.Timestamp's range


ID_RULE = "at most 128 of letters, digits and ._:@- starting with a letter or digit"


class Violations:
    """Every bad field of a request, collected so that one error lists them all (up to a bound)."""

    def __init__(self, prefix: str = "") -> None:
        self.items: list[FieldViolation] = []
        self._prefix = prefix

    def add(self, field: str, description: str) -> None:
        if len(self.items) < MAX_VIOLATIONS:
            self.items.append(FieldViolation(self._prefix + field, description))

    def check_id(self, field: str, value: str, *, required: bool = False) -> None:
        """A tenant, user, conversation or request id."""
        if not value:
            if required:
                self.add(field, "required")
        elif not ID.fullmatch(value):
            self.add(field, ID_RULE)

    def time(self, field: str, stamp: timestamp_pb2.Timestamp, *, present: bool) -> float | None:
        """A required Timestamp in seconds, or None (and a violation) when it is missing, outside
        0001-01-01..9999-12-31 or has nanos outside 0..999,999,999 (protobuf refuses to convert it)."""
        if not present:
            self.add(field, "required")
            return None
        if not (_MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS and 0 <= stamp.nanos < 1_000_000_000):
            self.add(field, "a timestamp between 0001-01-01 and 9999-12-31, nanos 0 to 999999999")
            return None
        return stamp.seconds + stamp.nanos / 1e9

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidRequestError(self.items)


def caller_tier(tiers: Tiers, tenant: str, user: str, metadata: Mapping[str, str], bad: Violations) -> str:
    """The caller's tier; a tier named in trusted metadata that the policy lacks is a violation."""
    try:
        return resolve_tier(tiers.assignment, tiers.names, tenant=tenant, user=user, metadata=metadata)
    except UnknownTier as unknown:
        bad.add(unknown.field, f"a tier this sidecar defines: one of {', '.join(unknown.known)}")
        return ""


INPUT = "input."  # violations of a generation request name fields under GenerateRequest.input


def to_call(
    req: gen.GenerationInput,
    *,
    stream: bool,
    limits: RequestLimits,
    deadline: Deadline,
    credentials: Credentials,
    record: Outcome,
    tiers: Tiers,
) -> Call:
    """Validate a request and turn it into a Call, or raise InvalidRequestError naming every field."""
    bad = Violations(INPUT)
    messages = content.messages(req.messages, limits, bad, remembered=bool(req.conversation_id))
    params = _params(req.config, limits, bad) if req.HasField("config") else GenerationParams()
    params = _with_tools(req, params, bad)
    for field in ("tenant_id", "user_id", "conversation_id", "request_id"):
        bad.check_id(field, getattr(req, field))
    if req.model and not _ROUTE.fullmatch(req.model):
        bad.add("model", "a route alias: at most 128 of letters, digits and ._:/-")
    check_metadata(req.metadata, limits, bad)
    key_source = _key_source(req, bad) if req.HasField("provider_key") else None
    tier = caller_tier(tiers, req.tenant_id, req.user_id, req.metadata, bad)
    priority = request_priority(req, bad.add)
    variant = requested_variant(req, bad.add)
    cache_bypass = context_cache.cache_bypass(req.cache_mode, bad.add)
    layer = answers.audience_layer(req.audience_layer, bad.add)
    if bad.items:
        raise InvalidRequestError(bad.items)
    return Call(
        request_id=req.request_id or os.urandom(16).hex(),
        model=req.model,
        messages=messages,
        params=params,
        tenant_id=req.tenant_id,
        user_id=req.user_id,
        conversation_id=req.conversation_id,
        metadata=dict(req.metadata),
        stream=stream,
        deadline=deadline,
        credentials=credentials,
        record=record,
        key_source=key_source,
        tier=tier,
        cache_bypass=cache_bypass,
        priority=priority,
        experiment_variant=variant,
        audience_layer=layer,
    )


def _with_tools(req: gen.GenerationInput, params: GenerationParams, bad: Violations) -> GenerationParams:
    """The tool and answer-format fields; a call without any keeps `params` as it is (no copy:
    the common case, bench/analysis.md)."""
    budget = tools.SchemaBudget()  # one for the request's schemas together
    specs = tools.tools(req, bad.add, budget)
    choice = tools.tool_choice(req, specs, bad.add)
    parallel = req.parallel_tool_calls if req.HasField("parallel_tool_calls") else None
    response_format = tools.response_format(req, bad.add, budget)
    if not specs and choice is None and parallel is None and response_format is None:
        return params
    return dataclasses.replace(
        params, tools=specs, tool_choice=choice, parallel_tool_calls=parallel, response_format=response_format
    )


@dataclass(frozen=True)
class Tiers:
    """What the edge needs to resolve a call's tier: the policy's assignment and its tier names."""

    assignment: TierAssignment
    names: tuple[str, ...]


KEY_REF = re.compile(r"key_[A-Za-z0-9_\-]{8,64}")  # RegisterKey references
_MAX_ENVELOPE_CHARS = 65_536


def _key_source(req: gen.GenerationInput, bad: Violations) -> KeySource | None:
    if not (req.tenant_id and req.user_id):
        bad.add("provider_key", "user keys are bound to a tenant_id and user_id: set both")
    kind = req.provider_key.WhichOneof("source")
    if kind == "key_ref":
        if KEY_REF.fullmatch(req.provider_key.key_ref):
            return KeyRef(req.provider_key.key_ref)
        bad.add("provider_key.key_ref", "a key reference from RegisterKey (key_...)")
    elif kind == "envelope":
        if 0 < len(req.provider_key.envelope) <= _MAX_ENVELOPE_CHARS:
            return InlineEnvelope(req.provider_key.envelope)
        bad.add("provider_key.envelope", f"an envelope of 1 to {_MAX_ENVELOPE_CHARS} characters")
    else:
        bad.add("provider_key", "set key_ref or envelope, or leave provider_key out")
    return None


def _params(cfg: gen.GenerationConfig, limits: RequestLimits, bad: Violations) -> GenerationParams:
    max_tokens = cfg.max_tokens if cfg.HasField("max_tokens") else None
    if max_tokens is not None and not 1 <= max_tokens <= limits.max_tokens_cap:
        bad.add("config.max_tokens", f"must be between 1 and {limits.max_tokens_cap}")
    temperature = cfg.temperature if cfg.HasField("temperature") else None
    if temperature is not None and not 0.0 <= temperature <= 2.0:
        bad.add("config.temperature", "must be between 0 and 2")
    top_p = cfg.top_p if cfg.HasField("top_p") else None
    if top_p is not None and not 0.0 < top_p <= 1.0:
        bad.add("config.top_p", "must be greater than 0 and at most 1")
    if len(cfg.stop) > limits.max_stop_sequences:
        bad.add("config.stop", f"at most {limits.max_stop_sequences} stop sequences")
    for i, s in enumerate(cfg.stop[: limits.max_stop_sequences]):
        if not 1 <= len(s) <= limits.max_stop_chars:
            bad.add(f"config.stop[{i}]", f"must be 1 to {limits.max_stop_chars} characters")
    return GenerationParams(
        max_tokens=max_tokens,
        temperature=temperature,
        top_p=top_p,
        stop=tuple(cfg.stop),
        seed=cfg.seed if cfg.HasField("seed") else None,
        reasoning=_reasoning(cfg, limits, bad) if cfg.HasField("reasoning") else None,
    )


_EFFORTS = {
    gen.REASONING_EFFORT_UNSPECIFIED: "",
    gen.REASONING_EFFORT_LOW: "low",
    gen.REASONING_EFFORT_MEDIUM: "medium",
    gen.REASONING_EFFORT_HIGH: "high",
}
MIN_THINKING_BUDGET = 1024  # Anthropic's minimum


def _reasoning(cfg: gen.GenerationConfig, limits: RequestLimits, bad: Violations) -> Reasoning:
    r = cfg.reasoning
    effort = _EFFORTS.get(r.effort)
    if effort is None:
        bad.add("config.reasoning.effort", "REASONING_EFFORT_LOW, _MEDIUM or _HIGH")
    if r.budget_tokens and not MIN_THINKING_BUDGET <= r.budget_tokens <= limits.max_tokens_cap:
        bad.add(
            "config.reasoning.budget_tokens", f"0 (none) or {MIN_THINKING_BUDGET} to {limits.max_tokens_cap}"
        )
    return Reasoning(effort=effort or "", budget_tokens=r.budget_tokens, include_thinking=r.include_thinking)


def check_metadata(metadata: Mapping[str, str], limits: RequestLimits, bad: Violations) -> None:
    if len(metadata) > limits.max_metadata_entries:
        bad.add("metadata", f"at most {limits.max_metadata_entries} entries")
        return
    for key, value in metadata.items():
        if len(key) > limits.max_metadata_key_chars or not _META_KEY.fullmatch(key):
            shown = key[:32]
            bad.add(f"metadata[{shown!r}]", "keys are letters, digits and ._/-, up to the limit")
        elif len(value) > limits.max_metadata_value_chars or NOT_PRINTABLE.search(value):
            bad.add(f"metadata[{key!r}]", "values are printable and within the size limit")


def credentials_from(metadata: Iterable[tuple[str, str | bytes]] | None) -> Credentials:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return Credentials(bearer_token=token.strip())
    return Credentials()


def duration(seconds: float) -> duration_pb2.Duration:
    whole, nanos = divmod(max(0, int(seconds * 1e9)), 1_000_000_000)
    return duration_pb2.Duration(seconds=whole, nanos=nanos)


def _set_duration(field: duration_pb2.Duration, seconds: float) -> None:
    """`duration(seconds)` written into a message's own field (present, even when zero)."""
    field.SetInParent()
    field.seconds, field.nanos = divmod(max(0, int(seconds * 1e9)), 1_000_000_000)


def to_summary(
    record: Outcome, *, request_id: str, finished_at: float, into: gen.GenerationSummary | None = None
) -> gen.GenerationSummary:
    """Written into `into` (a reply's own field) or a new summary, in place: sub-messages passed to
    a constructor would be copied (bench/analysis.md)."""
    total = finished_at - record.started_at
    usage, target = record.usage, record.target
    summary = gen.GenerationSummary() if into is None else into
    summary.finish_reason = _FINISH[record.finish_reason]
    summary.cost_micros, summary.request_id = micros(record.cost_usd), request_id
    out = summary.usage
    out.SetInParent()
    out.prompt_tokens, out.completion_tokens = usage.prompt_tokens, usage.completion_tokens
    out.total_tokens, out.cached_tokens = usage.total_tokens, usage.cached_tokens
    out.reasoning_tokens, out.cache_write_tokens = usage.reasoning_tokens, usage.cache_write_tokens
    for a in record.attempts:
        attempt = summary.attempts.add(deployment=a.deployment, provider=a.provider, outcome=a.outcome)
        _set_duration(attempt.duration, a.seconds)
    _set_duration(summary.upstream_latency, record.upstream_seconds)
    _set_duration(summary.overhead, total - record.upstream_seconds)
    if target is not None:
        served = summary.served_by
        served.route, served.deployment = target.route, target.deployment
        served.provider, served.model = target.provider, target.model
    if record.first_token_at is not None:
        _set_duration(summary.time_to_first_token, record.first_token_at - record.started_at)
    context_cache.add_summary_fields(summary, record)
    summary.experiment, summary.experiment_variant = record.experiment, record.variant
    summary.experiment_variant_overridden = record.variant_overridden
    answers.add_summary_fields(summary, record)
    return summary


def micros(usd: float) -> int:
    """US dollars -> integer micro-dollars (rounded to the nearest), as the quota charges them."""
    return to_micros(usd)


def to_routes(
    routing: Routing, deployments: Mapping[str, DeploymentConfig], providers: Mapping[str, Provider]
) -> list[models_pb2.ModelRoute]:
    """Every configured route with its deployments, sorted by alias."""
    routes = []
    for route in routing.table.routes():
        items = [
            _deployment(target, deployments[target.deployment], providers[target.deployment], routing)
            for target in route.targets
        ]
        routes.append(
            models_pb2.ModelRoute(
                alias=route.alias,
                deployments=items,
                is_default=route.alias == routing.table.default,
                strategy=route.config.strategy,
            )
        )
    return routes


_BREAKER = {
    BreakerState.CLOSED: models_pb2.BREAKER_STATE_CLOSED,
    BreakerState.OPEN: models_pb2.BREAKER_STATE_OPEN,
    BreakerState.HALF_OPEN: models_pb2.BREAKER_STATE_HALF_OPEN,
}


def _deployment(
    target: Target, config: DeploymentConfig, provider: Provider, routing: Routing
) -> models_pb2.Deployment:
    caps = provider.capabilities
    return models_pb2.Deployment(
        name=target.deployment,
        provider=target.provider,
        model=target.model,
        capabilities=models_pb2.Capabilities(
            streaming=caps.streaming,
            tools=caps.tools,
            json_schema=caps.json_schema,
            max_context_tokens=caps.max_context_tokens,
            images=caps.images,
            reasoning=caps.reasoning,
        ),
        price=models_pb2.Price(
            input_micros_per_million=micros(target.price.input_per_million),
            output_micros_per_million=micros(target.price.output_per_million),
        ),
        description=describe(config),
        status=_status(target.deployment, routing),
        tags=config.tags,
    )


def _status(name: str, routing: Routing) -> models_pb2.DeploymentStatus:
    stats = routing.stats.get(name).snapshot()
    status = models_pb2.DeploymentStatus(
        healthy=routing.health.healthy(name),
        breaker_state=_BREAKER[routing.breakers.get(name).state()],
        last_error=stats.last_error or "",
        in_flight=stats.in_flight,
    )
    if stats.last_error_at is not None:
        status.last_error_time.FromNanoseconds(int(stats.last_error_at * 1e9))
    if stats.ewma_ttft is not None:
        status.ewma_time_to_first_token.CopyFrom(duration(stats.ewma_ttft))
    if stats.ewma_total is not None:
        status.ewma_latency.CopyFrom(duration(stats.ewma_total))
    return status
