"""The composition root: the only place that knows the pipeline's order and its implementations."""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import TYPE_CHECKING

from sidecar.api.admin_servicer import AdminServicer
from sidecar.api.conversation_servicer import ConversationServicer
from sidecar.api.convert import Tiers
from sidecar.api.escalation_servicer import EscalationServicer
from sidecar.api.experiment_servicer import ExperimentServicer
from sidecar.api.gate import Gate
from sidecar.api.key_servicer import KeyServicer
from sidecar.api.paging import PageTokens
from sidecar.api.quota_servicer import QuotaServicer
from sidecar.api.servicer import GenerationServicer
from sidecar.api.services import Servicers
from sidecar.config.schema import Config
from sidecar.context.summary import Summarizer, window_fit
from sidecar.core.clock import Clock
from sidecar.core.drain import Drain
from sidecar.core.layer import Handler, Layer, compose
from sidecar.core.priority import Priority
from sidecar.deps import Deps, build_deps, persona_prompts
from sidecar.experiments.book import ExperimentBook
from sidecar.idempotency.replay import Replays
from sidecar.pipeline.admission import AdmissionLayer
from sidecar.pipeline.answers import AnswerPolicyLayer
from sidecar.pipeline.authn import AuthnLayer
from sidecar.pipeline.cache import CacheLayer, CacheObserver
from sidecar.pipeline.context import ContextLayer
from sidecar.pipeline.experiment import ExperimentLayer
from sidecar.pipeline.keys import KeyLayer
from sidecar.pipeline.observe import ObserveLayer
from sidecar.pipeline.persona import PersonaLayer
from sidecar.pipeline.quota import QuotaLayer, TokenEstimator
from sidecar.pipeline.resolve import ResolveLayer
from sidecar.pipeline.route import RouteLayer
from sidecar.pipeline.semantic import SemanticCacheLayer, SemanticObserver
from sidecar.pipeline.structured import StructuredOutputLayer
from sidecar.pipeline.upstream import UpstreamCall
from sidecar.server import Sidecar
from sidecar.telemetry.logging import RateLimitedLog

if TYPE_CHECKING:
    from sidecar.answers.queue import EscalationQueue


def priority_caps(cfg: Config) -> dict[str, Priority | None]:
    """Each tier's highest request priority (tiers.<name>.max_priority)."""
    return {
        name: Priority[tier.max_priority] if tier.max_priority is not None else None
        for name, tier in cfg.policy.tiers.items()
    }


def build_servicers(cfg: Config, d: Deps, drain: Drain) -> Servicers:
    """One servicer per service, each behind a gate on the same authorizer."""
    pages = PageTokens(os.urandom(32))
    # one limiter for every refused or rejected call's log line: a caller must not fill the log
    refusals = RateLimitedLog(logging.getLogger("sidecar.api"), d.clock, interval=60.0)
    gate = partial(Gate, d.verifier, refusals=refusals)
    tiers = Tiers(cfg.policy.tier_assignment, tuple(cfg.policy.tiers))
    limits = cfg.policy.limits
    metrics = d.telemetry.metrics
    return Servicers(
        generation=GenerationServicer(
            gate=gate("GenerationService"),
            pipeline=build_pipeline(cfg, d),
            policy=cfg.policy,
            routing=d.routing,
            providers=d.providers,
            clock=d.clock,
            pages=pages,
            metrics=metrics,
            drain=drain,
            embeddings=d.embeddings,
            replays=None
            if d.idempotency is None
            else Replays(
                d.idempotency,
                max_answer_bytes=cfg.settings.idempotency.max_response_bytes,
                field="input.request_id",
            ),
        ),
        conversation=ConversationServicer(
            gate=gate("ConversationService"),
            personas=d.personas,
            tiers=tiers,
            limits=limits,
            pages=pages,
            metrics=metrics,
        ),
        quota=QuotaServicer(gate=gate("QuotaService"), quota=d.quota, tiers=tiers, limits=limits),
        keys=KeyServicer(gate=gate("KeyService"), keys=d.keys, pages=pages),
        escalation=EscalationServicer(
            gate=gate("EscalationService"),
            queue=escalation_queue(cfg, d),
            pages=pages,
            clock=d.clock,
        ),
        admin=AdminServicer(
            gate=gate("AdminService"),
            keys=d.keys,
            ledger=d.telemetry.ledger,
            pages=pages,
            experiments=experiment_book(cfg, d),
        ),
        experiments=ExperimentServicer(
            gate=gate("ExperimentService"),
            ledger=d.telemetry.ledger,
            book=experiment_book(cfg, d),
        ),
    )


def build_summarizer(cfg: Config, d: Deps) -> Summarizer | None:
    """Rolling conversation summaries, written as the caller's own calls through the observed and
    metered part of the pipeline: metrics, ledger and GetUsage see them; tier and quota apply."""
    summary = cfg.policy.context.summary
    if summary is None:
        return None
    handler = compose(
        UpstreamCall(d.providers),
        [observe_layer(cfg, d), quota_layer(cfg, d), *routed_layers(cfg, d)],
    )
    tiers = cfg.policy.tiers

    def allowed(tier: str) -> bool:
        config = tiers.get(tier)
        return config is None or config.allowed_routes is None or summary.route in config.allowed_routes

    fits = window_fit(d.routing.table.resolve(summary.route), summary.max_tokens, d.tokenizers.prompt_max)
    return Summarizer(
        handler, config=summary, store=d.personas.store, clock=d.clock, allowed=allowed, fits=fits
    )


def escalation_queue(cfg: Config, d: Deps) -> EscalationQueue | None:
    """The escalation queue, with the writer of model-written escalation context: the user's own
    calls through the observed and metered part of the pipeline (metrics, ledger, tier, quota)."""
    if d.escalations is None or d.answers is None:
        return None
    from sidecar.answers.context import EscalationContextWriter

    handler = compose(
        UpstreamCall(d.providers),
        [observe_layer(cfg, d), quota_layer(cfg, d), *routed_layers(cfg, d)],
    )
    tiers = cfg.policy.tiers

    def allowed(tier: str, route: str) -> bool:
        config = tiers.get(tier)
        return config is None or config.allowed_routes is None or route in config.allowed_routes

    writer = EscalationContextWriter(
        handler, clock=d.clock, allowed=allowed, on_outcome=d.answers.observer.on_context
    )
    return d.escalations.with_context(writer)


def observe_layer(cfg: Config, d: Deps) -> Layer:
    """Metrics, the usage ledger and the call span: sees every outcome of the calls it wraps."""
    return partial(
        ObserveLayer,
        metrics=d.telemetry.metrics,
        ledger=d.telemetry.ledger,
        tracing=d.telemetry.tracing,
        routes=(cfg.policy.default_route, *cfg.policy.routes),
        clock=d.clock,
    )


def quota_layer(cfg: Config, d: Deps, *, caches_inside: bool = False) -> Layer:
    """The caller's quotas, estimated with the counting service. `caches_inside`: the response and
    semantic cache layers are inside it (the request path), so a call whose token or dollar estimate
    does not fit may still be answered by a hit (cache_only); without them (summaries, escalation
    context) such a call is refused as estimated: nothing inside would keep it from a provider."""
    return partial(
        QuotaLayer,
        quota=d.quota,
        table=d.routing.table,
        estimator=TokenEstimator(prompt=d.tokenizers.prompt_max, text=d.tokenizers.count_text_max),
        tracing=d.telemetry.tracing,
        cache_answers=caches_inside
        and ((cfg.settings.cache.enabled and d.cache is not None) or d.semantic is not None),
    )


def build_pipeline(cfg: Config, d: Deps) -> Handler:
    """The request path, outermost first.

    The resolve step comes right after authentication: every later layer (context, quota, cache,
    route, memory) reads the plan it makes (sidecar/core/plan.py) instead of resolving the route again;
    quota and cache need what it decides (the route a persona defaults to, the whole prompt with the
    persona prompt and stored history), so it comes before them (DESIGN.md lists them the other way).
    """
    return compose(
        UpstreamCall(d.providers),
        [
            observe_layer(cfg, d),  # outermost: metrics, the usage ledger and the call span see every outcome
            partial(AuthnLayer, verifier=d.verifier),
            partial(  # one step decides persona, request, route, tier access, key pin, candidates
                ResolveLayer,
                personas=d.personas,
                table=d.routing.table,
                tiers=cfg.policy.tiers,
                keys=d.keys,
                modes=user_key_modes(cfg),
            ),
            # the variant serving the call: before admission, so a variant the experiment lacks is
            # INVALID_ARGUMENT at once, never a wait in the queue or a retryable OVERLOADED
            partial(ExperimentLayer, book=experiment_book(cfg, d)),
            # a slot of the sidecar's capacity, in priority order, before any context or quota work
            partial(AdmissionLayer, queue=d.admission, caps=priority_caps(cfg)),
            partial(PersonaLayer, personas=d.personas),  # conversation memory, after success
            # the agent's answer policy: decided before any model; B, C, D and F are answered here
            partial(AnswerPolicyLayer, answers=d.answers),
            partial(
                ContextLayer,
                table=d.routing.table,
                tokenizers=d.tokenizers,
                policy=cfg.policy.context,
                summarizer=build_summarizer(cfg, d),
            ),
            quota_layer(cfg, d, caches_inside=True),
            partial(
                CacheLayer,
                store=d.cache,
                settings=cfg.settings.cache,
                table=d.routing.table,
                clock=d.clock,
                observer=CacheObserver(
                    on_lookup=d.telemetry.metrics.cache_lookup,
                    on_store_error=partial(d.telemetry.metrics.store_error, "cache"),
                ),
                tracing=d.telemetry.tracing,
                semantic_inside=d.semantic is not None,  # a cache-only miss may be a semantic hit
            ),
            partial(  # after an exact miss: a paraphrase answered before, in the same partition
                SemanticCacheLayer,
                store=d.semantic,
                embed=d.embeddings.prompt_embedding,
                settings=cfg.settings.cache,
                default_embedding_route=cfg.policy.embeddings.default_route,
                table=d.routing.table,
                clock=d.clock,
                observer=SemanticObserver(
                    on_lookup=d.telemetry.metrics.semantic_lookup,
                    on_similarity=d.telemetry.metrics.semantic_similarity_seen,
                    on_store_error=partial(d.telemetry.metrics.store_error, "semantic_cache"),
                ),
                tracing=d.telemetry.tracing,
            ),
            StructuredOutputLayer,
            *routed_layers(cfg, d),
        ],
    )


def experiment_book(cfg: Config, d: Deps) -> ExperimentBook:
    if d.experiments is not None:
        return d.experiments.book
    return ExperimentBook(cfg.policy.experiments, persona_prompts(cfg))


def routed_layers(cfg: Config, d: Deps) -> list[Layer]:
    """Route, then the key per attempt: the part of the pipeline that reaches a provider."""
    return [
        partial(RouteLayer, routing=d.routing, clock=d.clock, slots=d.deployment_slots),
        partial(KeyLayer, keys=d.keys, modes=user_key_modes(cfg), pauses=d.routing.key_pauses),
    ]


def user_key_modes(cfg: Config) -> dict[str, str]:
    return {alias: route.user_key for alias, route in cfg.policy.routes.items()}


def build_server(cfg: Config, clock: Clock | None = None, *, deps: Deps | None = None) -> Sidecar:
    """The whole sidecar: its dependencies (or the given ones), the pipeline inside the servicers, and
    the servers with their lifecycle."""
    deps = deps or build_deps(cfg, clock)
    return Sidecar(cfg, deps, partial(build_servicers, cfg, deps))
