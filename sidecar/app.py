"""The composition root: the only place that knows the pipeline's order and its implementations."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sidecar.admission.queue import AdmissionObserver, AdmissionQueue
from sidecar.api.admin_servicer import AdminServicer
from sidecar.api.conversation_servicer import ConversationServicer
from sidecar.api.convert import Tiers
from sidecar.api.gate import Gate
from sidecar.api.key_servicer import KeyServicer
from sidecar.api.paging import PageTokens
from sidecar.api.quota_servicer import QuotaServicer
from sidecar.api.servicer import GenerationServicer
from sidecar.api.services import ADMIN_NAME, DATA_PLANE_NAMES, Servicers, add_admin, add_data_plane
from sidecar.authz.policy import Authorizer, credentials_from_settings
from sidecar.cache.store import AiocacheStore, ByteStore, RedisByteStore
from sidecar.config.schema import Config
from sidecar.context.summary import Summarizer
from sidecar.context.tokenizer import Tokenizers
from sidecar.core.clock import Clock, SystemClock
from sidecar.core.drain import Drain
from sidecar.core.layer import Handler, Layer, compose
from sidecar.core.priority import Priority
from sidecar.core.tokens import count_tokens
from sidecar.embeddings.routing import EmbeddingDeployments, EmbeddingRouter
from sidecar.embeddings.service import EmbeddingService
from sidecar.experiments.book import ExperimentBook
from sidecar.experiments.control import ExperimentControl
from sidecar.idempotency.replay import Replays
from sidecar.idempotency.store import IdempotencyStore, MemoryIdempotencyStore
from sidecar.keys.backend import KeyBackend
from sidecar.keys.cache import KeyCache, KeyCachePolicy
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.rotation import Rotation, RotationLock, SqliteRotationLock
from sidecar.keys.service import KeyService
from sidecar.keys.store import KeyStore, SqliteKeyStore
from sidecar.personas.registry import PersonaRegistry, TokenCounter
from sidecar.personas.service import PersonaService
from sidecar.pipeline.admission import AdmissionLayer
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
from sidecar.providers._http import HttpClient
from sidecar.providers.base import Provider
from sidecar.providers.registry import build_providers
from sidecar.quota.service import QuotaService
from sidecar.quota.signals import QuotaSignals
from sidecar.quota.store import MemoryQuotaStore, QuotaStore
from sidecar.routing.breaker import BreakerPolicy, Breakers
from sidecar.routing.plan import AlwaysHealthy, HealthView, Routing
from sidecar.routing.probe import HealthProber, ProbePolicy, provider_probes
from sidecar.routing.retry import BudgetPolicy, RetryBudgets
from sidecar.routing.stats import Stats
from sidecar.routing.strategy import ComplexityPolicy
from sidecar.routing.table import RouteTable
from sidecar.sessions.store import ConversationStore, MemoryConversationStore, StorePolicy
from sidecar.stores.redis import ErrorObserver, RedisEndpoint, RedisOps, connect
from sidecar.telemetry.health import DrainingHealth
from sidecar.telemetry.memory import AllocatorTrimmer
from sidecar.telemetry.metrics import DeploymentView, Metrics, SidecarCollector
from sidecar.telemetry.runtime import Telemetry, build_telemetry
from sidecar.telemetry.tracing import TraceContextInterceptor, Tracing

if TYPE_CHECKING:
    from sidecar.cache.semantic import SemanticStore

CUT_WAIT_SECONDS = 1.0  # after the grace: how long cut calls and short RPCs get to send their status
_log = logging.getLogger("sidecar")


@dataclass(frozen=True)
class Deps:
    """The collaborators the layers are built from."""

    clock: Clock
    http: HttpClient
    providers: Mapping[str, Provider]
    routing: Routing
    prober: HealthProber | None
    verifier: Authorizer  # authenticates every call; authorizes methods at the API edge
    keys: KeyService | None
    personas: PersonaService
    tokenizers: Tokenizers
    cache: ByteStore | None  # cached answers; None when the response cache is off
    telemetry: Telemetry
    embeddings: EmbeddingService
    quota: QuotaService | None = None
    admission: AdmissionQueue | None = None
    experiments: ExperimentControl | None = None
    idempotency: IdempotencyStore | None = None
    semantic: SemanticStore | None = None  # the semantic cache's store, when a route enables it


def build_deps(cfg: Config, clock: Clock | None = None, *, span_exporters: tuple[object, ...] = ()) -> Deps:
    """`span_exporters`: extra OpenTelemetry span exporters (tests pass an in-memory one)."""
    clock = clock or SystemClock()
    http = HttpClient(cfg.settings.http, clock)
    providers = build_providers(cfg, http)
    prober = build_prober(cfg, providers, clock)
    tokenizers = Tokenizers.build(cfg.policy.deployments, cfg.policy.context.encodings_dir)
    telemetry = build_telemetry(cfg.settings.telemetry, clock, span_exporters=span_exporters)
    routing = build_routing(cfg, clock, prober or AlwaysHealthy(), telemetry.tracing, tokenizers)
    quota = build_quota(cfg, clock, quota_signals(telemetry))
    deps = Deps(
        clock=clock,
        http=http,
        providers=providers,
        routing=routing,
        prober=prober,
        verifier=build_authorizer(cfg),
        keys=build_keys(cfg, clock, telemetry),
        personas=build_personas(
            cfg,
            clock,
            count=tokenizers.count_text_max,
            on_store_error=partial(telemetry.metrics.store_error, "sessions"),
        ),
        tokenizers=tokenizers,
        cache=build_cache(cfg, clock),
        quota=quota,
        telemetry=telemetry,
        admission=build_admission(cfg, clock, telemetry.metrics),
        experiments=ExperimentControl(
            ExperimentBook(cfg.policy.experiments, persona_prompts(cfg)),
            cfg.policy.experiments,
            clock=clock,
            ledger=telemetry.ledger.store if telemetry.ledger is not None else None,
        ),
        idempotency=build_idempotency(cfg, clock),
        embeddings=build_embeddings(cfg, http, routing, clock, quota, telemetry),
        semantic=build_semantic_store(cfg, clock),
    )
    telemetry.metrics.registry.register(build_collector(cfg, deps))
    return deps


def build_admission(cfg: Config, clock: Clock, metrics: Metrics) -> AdmissionQueue | None:
    """The sidecar's capacity and priority queue, when the policy has an admission section."""
    a = cfg.policy.admission
    if a is None:
        return None
    observer = AdmissionObserver(
        on_depth=lambda p, depth: metrics.admission_queue_depth(p.label, depth),
        on_waited=lambda p, seconds: metrics.admission_waited(p.label, seconds),
        on_shed=lambda p: metrics.admission_shed_call(p.label),
        on_in_flight=metrics.admission_running_calls,
    )
    return AdmissionQueue(
        capacity=a.capacity,
        queue_size=a.queue_size,
        retry_after=a.retry_after_seconds,
        max_wait=a.max_wait_seconds,
        clock=clock,
        observer=observer,
    )


def persona_prompts(cfg: Config) -> dict[str, str]:
    """Persona id -> system prompt, for experiment variants that name a persona."""
    return {p.id: p.system_prompt for p in cfg.policy.personas.all()}


def priority_caps(cfg: Config) -> dict[str, Priority | None]:
    """Each tier's highest request priority (tiers.<name>.max_priority)."""
    return {
        name: Priority[tier.max_priority] if tier.max_priority is not None else None
        for name, tier in cfg.policy.tiers.items()
    }


def build_authorizer(cfg: Config) -> Authorizer:
    """The credentials of settings.auth; the admin service is open to anonymous callers only on its
    own Unix socket (the config refuses it on the listener without credentials)."""
    auth = cfg.settings.auth
    configured = [(c.name, cfg.secrets[c.token.env], c.allow, c.tenants) for c in auth.credentials]
    return Authorizer(
        credentials_from_settings(cfg.secret(auth.token), configured),
        admin_open=cfg.settings.admin.mode == "unix_socket",
    )


def build_idempotency(cfg: Config, clock: Clock) -> IdempotencyStore | None:
    """Where first answers wait for their retries: this process, or Redis shared by sidecars."""
    idem = cfg.settings.idempotency
    if not idem.enabled:
        return None
    if idem.backend == "redis" and idem.redis_url is not None:
        from sidecar.idempotency.redis_store import RedisIdempotencyStore

        return RedisIdempotencyStore(
            idem.redis_url, prefix=idem.key_prefix, window_seconds=idem.window_seconds, clock=clock
        )
    return MemoryIdempotencyStore(
        clock=clock, window_seconds=idem.window_seconds, max_entries=idem.max_entries
    )


def build_servicers(cfg: Config, d: Deps, drain: Drain) -> Servicers:
    """One servicer per service, each behind a gate on the same authorizer."""
    pages = PageTokens(os.urandom(32))
    tiers = Tiers(cfg.policy.tier_assignment, tuple(cfg.policy.tiers))
    limits = cfg.policy.limits
    metrics = d.telemetry.metrics
    return Servicers(
        generation=GenerationServicer(
            gate=Gate(d.verifier, "GenerationService"),
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
            gate=Gate(d.verifier, "ConversationService"),
            personas=d.personas,
            tiers=tiers,
            limits=limits,
            pages=pages,
            metrics=metrics,
        ),
        quota=QuotaServicer(gate=Gate(d.verifier, "QuotaService"), quota=d.quota, tiers=tiers, limits=limits),
        keys=KeyServicer(gate=Gate(d.verifier, "KeyService"), keys=d.keys, pages=pages),
        admin=AdminServicer(
            gate=Gate(d.verifier, "AdminService"), keys=d.keys, ledger=d.telemetry.ledger, pages=pages
        ),
    )


def build_cache(cfg: Config, clock: Clock | None = None) -> ByteStore | None:
    """The store for cached answers (imported only when the response cache is on)."""
    c = cfg.settings.cache
    if not c.enabled:
        return None
    if c.backend == "redis" and c.redis_url is not None:
        endpoint = RedisEndpoint.of(c.redis_url, c.redis, cfg.secret, default_timeout=c.timeout_seconds)
        return RedisByteStore(RedisOps(endpoint, retries=1, clock=clock), c.namespace)
    return AiocacheStore.memory(c.namespace, timeout=c.timeout_seconds, max_entries=c.max_entries)


def build_embeddings(
    cfg: Config,
    http: HttpClient,
    routing: Routing,
    clock: Clock,
    quota: QuotaService | None,
    telemetry: Telemetry,
) -> EmbeddingService:
    """Embedding routes over embedding deployments (built at first use), sharing the route breakers."""
    policy = cfg.policy.embeddings
    deployments = EmbeddingDeployments(policy, http=http, secret=cfg.secret)
    router = EmbeddingRouter(policy, deployments, routing.breakers)
    return EmbeddingService(
        policy, router, clock=clock, quota=quota, metrics=telemetry.metrics, ledger=telemetry.ledger
    )


def build_semantic_store(cfg: Config, clock: Clock | None = None) -> SemanticStore | None:
    """The semantic cache's store when a route enables it (numpy, and redis when shared, lazily)."""
    if not any(r.cache.semantic is not None and r.cache.semantic.enabled for r in cfg.policy.routes.values()):
        return None
    s = cfg.settings.cache.semantic
    if s.backend == "redis" and s.redis_url is not None:
        from sidecar.cache.semantic_redis import RedisSemanticStore

        endpoint = RedisEndpoint.of(s.redis_url, s.redis, cfg.secret, default_timeout=s.timeout_seconds)
        return RedisSemanticStore(
            RedisOps(endpoint, retries=1, clock=clock), prefix=cfg.settings.cache.namespace
        )
    from sidecar.cache.semantic import MemorySemanticStore

    return MemorySemanticStore(max_entries=s.max_entries)


def build_summarizer(cfg: Config, d: Deps) -> Summarizer | None:
    """Rolling conversation summaries, written as the caller's own calls through the observed and
    metered part of the pipeline: metrics, ledger and GetUsage see them; tier and quota apply."""
    summary = cfg.policy.context.summary
    if summary is None:
        return None
    handler = compose(
        UpstreamCall(d.providers, clock=d.clock),
        [observe_layer(cfg, d), quota_layer(cfg, d), *routed_layers(cfg, d)],
    )
    tiers = cfg.policy.tiers

    def allowed(tier: str) -> bool:
        config = tiers.get(tier)
        return config is None or config.allowed_routes is None or summary.route in config.allowed_routes

    return Summarizer(handler, config=summary, store=d.personas.store, clock=d.clock, allowed=allowed)


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


def quota_layer(cfg: Config, d: Deps) -> Layer:
    """The caller's quotas, estimated with the counting service."""
    return partial(
        QuotaLayer,
        quota=d.quota,
        table=d.routing.table,
        estimator=TokenEstimator(prompt=d.tokenizers.count_prompt_max, text=d.tokenizers.count_text_max),
        tracing=d.telemetry.tracing,
    )


def quota_signals(telemetry: Telemetry) -> QuotaSignals:
    """Near-limit events and quota-store failures, counted in the metrics (refusals are counted by
    the observe layer from the error)."""
    metrics = telemetry.metrics
    signals = QuotaSignals()
    signals.on_near_limit.append(lambda event: metrics.quota_near_limit(event.limit, event.level))
    signals.on_store_error.append(partial(metrics.store_error, "quota"))
    return signals


def build_quota(cfg: Config, clock: Clock, signals: QuotaSignals | None = None) -> QuotaService | None:
    """Quotas when the policy has a quota section; Redis and the webhook import their clients lazily."""
    q = cfg.policy.quota
    if q is None:
        return None
    store: QuotaStore = MemoryQuotaStore(clock)
    if q.store == "redis" and q.redis_url is not None:
        from sidecar.quota.redis_store import RedisQuotaStore

        endpoint = RedisEndpoint.of(q.redis_url, q.redis, cfg.secret, default_timeout=q.store_timeout_seconds)
        store = RedisQuotaStore(RedisOps(endpoint, clock=clock), clock, prefix=q.key_prefix)  # never retried
    signals = signals or QuotaSignals()
    if q.webhook is not None and signals.webhook is None:
        from sidecar.quota.webhook import WebhookSender

        signals.webhook = WebhookSender(q.webhook, clock=clock)
    return QuotaService(q, cfg.policy.tiers, store, clock, signals)


def build_collector(cfg: Config, d: Deps) -> SidecarCollector:
    """Breakers, probe health, in-flight attempts, the key cache and the ledger queue, read at scrape time."""
    names = tuple(cfg.policy.deployments)
    routing, prober, keys, ledger = d.routing, d.prober, d.keys, d.telemetry.ledger

    def deployments() -> dict[str, DeploymentView]:
        return {
            n: DeploymentView(
                breaker_state=routing.breakers.get(n).state().value,
                healthy=prober.healthy(n) if prober is not None else True,
                in_flight=routing.stats.get(n).in_flight,
            )
            for n in names
        }

    def key_cache() -> tuple[int, int] | None:
        if keys is None:
            return None
        stats = keys.cache.stats()
        return stats.hits, stats.misses

    return SidecarCollector(deployments, key_cache, lambda: ledger.depth() if ledger is not None else None)


def build_keys(cfg: Config, clock: Clock, telemetry: Telemetry | None = None) -> KeyService | None:
    """User keys, when a key-encryption backend is configured; backends import their clients lazily."""
    k = cfg.settings.keys
    backend: KeyBackend
    if k.backend == "local" and k.local is not None:
        backend = LocalKekBackend.from_file(k.local.kek_file)
    elif k.backend == "aws-kms" and k.aws_kms is not None:
        from sidecar.keys.aws_kms import AwsKmsBackend

        backend = AwsKmsBackend(
            k.aws_kms.key_id,
            region=k.aws_kms.region,
            endpoint_url=k.aws_kms.endpoint_url,
            previous_key_ids=k.aws_kms.previous_key_ids,
        )
    elif k.backend == "vault" and k.vault is not None:
        from sidecar.keys.vault_transit import VaultTransitBackend

        v, token = k.vault, cfg.secret(k.vault.token)
        backend = VaultTransitBackend(
            v.key_name,
            url=v.url,
            token=token.get_secret_value() if token else None,
            kubernetes_role=v.kubernetes_role,
            namespace=v.namespace,
            mount_point=v.mount_point,
            previous_key_names=v.previous_key_names,
        )
    else:
        return None
    cache = KeyCache(KeyCachePolicy(**k.cache.model_dump()), clock)
    store: KeyStore
    lock: RotationLock
    if k.store == "redis" and k.redis_url is not None:
        from sidecar.keys.redis_store import DEFAULT_PREFIX, RedisKeyStore
        from sidecar.keys.rotation import RedisRotationLock

        endpoint = RedisEndpoint.of(k.redis_url, k.redis, cfg.secret, default_timeout=2.0)
        store = RedisKeyStore(RedisOps(endpoint, decode_responses=True, retries=1, clock=clock), clock)
        lock = RedisRotationLock(connect(endpoint, decode_responses=True), prefix=DEFAULT_PREFIX)
    else:
        store = SqliteKeyStore(k.store_path, clock)
        lock = SqliteRotationLock(k.store_path, clock)
    rotation = Rotation(store, backend, lock, clock=clock, per_second=k.rotation_per_second)
    if telemetry is None:
        return KeyService(backend, store, cache, clock, rotation=rotation)
    return KeyService(
        backend, store, cache, clock, observer=telemetry.metrics, tracing=telemetry.tracing, rotation=rotation
    )


def build_personas(
    cfg: Config, clock: Clock, count: TokenCounter = count_tokens, on_store_error: ErrorObserver | None = None
) -> PersonaService:
    """The persona registry and the conversation store (memory, or Redis imported lazily)."""
    p = cfg.policy.personas
    registry = PersonaRegistry.from_config(p, tiers=cfg.policy.tiers, routes=cfg.policy.routes, count=count)
    s = p.sessions
    policy = StorePolicy(s.ttl_seconds, s.max_history_messages, s.max_switch_history, s.max_conversations)
    store: ConversationStore
    if s.store == "redis" and s.redis_url is not None:
        from sidecar.sessions.redis import RedisConversationStore

        endpoint = RedisEndpoint.of(s.redis_url, s.redis, cfg.secret, default_timeout=5.0)
        ops = RedisOps(endpoint, retries=1, observer=on_store_error, clock=clock)
        store = RedisConversationStore(ops, policy, prefix=s.key_prefix)
    else:
        store = MemoryConversationStore(policy, clock)
    return PersonaService(registry, store, clock=clock, memory_default=s.memory)


def build_prober(cfg: Config, providers: Mapping[str, Provider], clock: Clock) -> HealthProber | None:
    """Zero-cost probes of every deployment, unless disabled."""
    probes = cfg.policy.routing.probes
    if not probes.enabled:
        return None
    policy = ProbePolicy(**probes.model_dump(exclude={"enabled"}))
    checks = provider_probes(providers, policy=policy, clock=clock)
    return HealthProber(checks, policy=policy, clock=clock, rng=random.Random())


def build_routing(
    cfg: Config,
    clock: Clock,
    health: HealthView,
    tracing: Tracing | None = None,
    tokens: Tokenizers | None = None,
) -> Routing:
    r = cfg.policy.routing
    return Routing(
        table=RouteTable.from_policy(cfg.policy),
        breakers=Breakers(BreakerPolicy(**r.breaker.model_dump()), clock),
        budgets=RetryBudgets(BudgetPolicy(**r.retry_budget.model_dump()), clock),
        stats=Stats(),
        health=health,
        complexity=ComplexityPolicy(**r.complexity.model_dump()),
        tracing=tracing or Tracing.disabled(),
        tokens=tokens or Tokenizers({}),
    )


def build_pipeline(cfg: Config, d: Deps) -> Handler:
    """The request path, outermost first.

    The resolve step comes right after authentication: every later layer (context, quota, cache,
    route, memory) reads the plan it makes (sidecar/core/plan.py) instead of resolving the route again;
    quota and cache need what it decides (the route a persona defaults to, the whole prompt with the
    persona prompt and stored history), so it comes before them (DESIGN.md lists them the other way).
    """
    return compose(
        UpstreamCall(d.providers, clock=d.clock),
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
            # a slot of the sidecar's capacity, in priority order, before any context or quota work
            partial(AdmissionLayer, queue=d.admission, caps=priority_caps(cfg)),
            partial(ExperimentLayer, book=experiment_book(cfg, d)),  # the variant serving the call
            partial(PersonaLayer, personas=d.personas),  # conversation memory, after success
            partial(
                ContextLayer,
                table=d.routing.table,
                tokenizers=d.tokenizers,
                policy=cfg.policy.context,
                summarizer=build_summarizer(cfg, d),
            ),
            quota_layer(cfg, d),
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
            ),
            partial(  # after an exact miss: a paraphrase answered before, in the same partition
                SemanticCacheLayer,
                store=d.semantic,
                embed=d.embeddings.prompt_vector,
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
        partial(RouteLayer, routing=d.routing, clock=d.clock),
        partial(KeyLayer, keys=d.keys, modes=user_key_modes(cfg)),
    ]


def user_key_modes(cfg: Config) -> dict[str, str]:
    return {alias: route.user_key for alias, route in cfg.policy.routes.items()}


class Sidecar:
    """A built server with its lifecycle: start, then stop with a grace period."""

    def __init__(self, cfg: Config, deps: Deps) -> None:
        self.cfg, self.deps = cfg, deps
        self.server = grpc.aio.server(
            interceptors=[TraceContextInterceptor()] if deps.telemetry.tracing.enabled else None,
            options=[
                ("grpc.max_receive_message_length", cfg.settings.max_receive_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.drain = Drain(deps.clock)
        self._stopping = False
        memory = cfg.settings.memory
        self.trimmer = AllocatorTrimmer(
            threshold_bytes=memory.trim_after_request_bytes,
            delay_seconds=memory.trim_delay_seconds,
            clock=deps.clock,
        )
        servicers = build_servicers(cfg, deps, self.drain)
        # undecodable requests: INVALID_ARGUMENT; large ones: heap given back after
        add_data_plane(self.server, servicers, clock=deps.clock, on_request=self.trimmer.note)
        admin = cfg.settings.admin
        if admin.mode == "listener":
            add_admin(self.server, servicers, clock=deps.clock)
        self.health = DrainingHealth()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        served = (*DATA_PLANE_NAMES, *((ADMIN_NAME,) if admin.mode == "listener" else ()))
        reflection.enable_server_reflection(
            (*served, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        self.port = self.server.add_insecure_port(cfg.settings.listen.address)
        if (path := cfg.settings.listen.unix_socket) is not None:
            _clear_stale_socket(path)
            self.server.add_insecure_port(f"unix:{path}")
        self.admin_server = build_admin_server(cfg, servicers, deps.clock)

    async def start(self) -> None:
        await self.deps.telemetry.start()
        try:
            await self.server.start()
            if self.admin_server is not None:
                await self.admin_server.start()
                socket = self.cfg.settings.admin.unix_socket
                assert socket is not None
                socket.chmod(self.cfg.settings.admin.socket_mode)
        except BaseException:
            await self.deps.telemetry.stop()
            raise
        if self.deps.prober is not None:
            await self.deps.prober.start()
        await self.deps.embeddings.start()
        for name in ("", *DATA_PLANE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._set_ready(True)
        _log.info(
            "sidecar serving",
            extra={
                "address": self.cfg.settings.listen.address,
                "port": self.port,
                "metrics_port": self.metrics_port,
            },
        )

    async def reload(self, cfg: Config, *, source: str) -> list[str]:
        """A policy reloaded without a restart: for now its experiments (promote, stop, weights).
        Routes, deployments and personas are not reloaded: experiments that name ones the running
        policy lacks are refused whole, and the problems returned (and logged)."""
        running = self.cfg.policy
        routes = {alias: route.deployments for alias, route in running.routes.items()}
        personas = {p.id for p in running.personas.all()}
        new = cfg.policy.experiments
        problems = [p for name, exp in new.items() for p in exp.problems(name, routes, personas)]
        if problems:
            _log.error("experiments not reloaded", extra={"problems": "; ".join(problems), "source": source})
        elif self.deps.experiments is not None:
            await self.deps.experiments.apply(new, persona_prompts(cfg), source=source)
        return problems

    @property
    def metrics_port(self) -> int | None:
        """The bound /metrics port once started; None when metrics are off."""
        server = self.deps.telemetry.server
        return server.port if server is not None else None

    async def stop(self, grace: float | None = None) -> None:
        """Drain: health says NOT_SERVING (Check is still answered) and new generation calls are
        refused; running ones get the grace to finish, then are cut with STREAM_INTERRUPTED and their
        partial usage. Then Watch streams are closed and the server stops (short RPCs still in flight
        get CUT_WAIT_SECONDS), and the dependencies are closed."""
        if self._stopping:
            return  # stopped already (or stopping): a second stop() has nothing left to do
        self._stopping = True
        grace = self.cfg.settings.shutdown_grace_seconds if grace is None else grace
        self._set_ready(False)
        try:
            await self.health.enter_graceful_shutdown()
            await self.drain.drain(grace, cut_wait=min(CUT_WAIT_SECONDS, max(grace, 0.1)))
            self.health.close_watches()
            if self.admin_server is not None:
                await self.admin_server.stop(CUT_WAIT_SECONDS)
            await self.server.stop(CUT_WAIT_SECONDS)
        finally:
            await self._close_dependencies()

    def _set_ready(self, ready: bool) -> None:
        """What the kubelet's readiness and startup probes see on the metrics port (`/readyz`)."""
        if (server := self.deps.telemetry.server) is not None:
            server.readiness.set(ready)

    async def _close_dependencies(self) -> None:
        """Close everything even if one close fails: probes, providers, the HTTP pool, the key service."""
        closers = [*(p.aclose for p in self.deps.providers.values()), self.deps.http.aclose]
        closers.append(self.deps.personas.aclose)
        closers.append(self.trimmer.aclose)
        if self.deps.prober is not None:
            closers.insert(0, self.deps.prober.stop)
        if self.deps.keys is not None:
            closers.append(self.deps.keys.aclose)
        if self.deps.cache is not None:
            closers.append(self.deps.cache.aclose)
        if self.deps.semantic is not None:
            closers.append(self.deps.semantic.aclose)
        closers.append(self.deps.embeddings.aclose)
        if self.deps.quota is not None:
            closers.append(self.deps.quota.aclose)
        if self.deps.idempotency is not None:
            closers.append(self.deps.idempotency.aclose)
        closers.append(self.deps.telemetry.stop)  # last: flushes the ledger records of the calls above
        for close in closers:
            try:
                await close()
            except Exception:
                _log.exception("shutdown step failed", extra={"step": getattr(close, "__qualname__", "?")})


def _clear_stale_socket(path: Path) -> None:
    if path.is_socket():
        path.unlink()  # left behind by a previous run that was killed


def build_admin_server(cfg: Config, servicers: Servicers, clock: Clock) -> grpc.aio.Server | None:
    """The AdminService alone on its own Unix socket (settings.admin.mode unix_socket)."""
    admin = cfg.settings.admin
    if admin.mode != "unix_socket" or admin.unix_socket is None:
        return None
    server = grpc.aio.server()
    add_admin(server, servicers, clock=clock)
    _clear_stale_socket(admin.unix_socket)
    server.add_insecure_port(f"unix:{admin.unix_socket}")
    return server


def build_server(cfg: Config, clock: Clock | None = None) -> Sidecar:
    return Sidecar(cfg, build_deps(cfg, clock))
