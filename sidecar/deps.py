"""The collaborators the pipeline is built from: stores, services and clients, each built from the config
(optional back-ends import their clients lazily). `sidecar/app.py` composes them into the pipeline."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from sidecar.admission.deployments import DeploymentSlots, SlotsObserver
from sidecar.admission.queue import AdmissionObserver, AdmissionQueue
from sidecar.authz.policy import Authorizer, credentials_from_settings
from sidecar.cache.store import AiocacheStore, ByteStore, RedisByteStore
from sidecar.config.schema import Config
from sidecar.context.tokenizer import Tokenizers
from sidecar.core.clock import Clock, SystemClock
from sidecar.core.tokens import count_tokens
from sidecar.embeddings.routing import EmbeddingDeployments, EmbeddingRouter
from sidecar.embeddings.service import EmbeddingService
from sidecar.experiments.book import ExperimentBook
from sidecar.experiments.control import ExperimentControl
from sidecar.idempotency.store import IdempotencyStore, MemoryIdempotencyStore
from sidecar.keys.build import build_keys
from sidecar.keys.service import KeyService
from sidecar.personas.registry import PersonaRegistry, TokenCounter
from sidecar.personas.service import PersonaService
from sidecar.providers._http import HttpClient
from sidecar.providers.base import Provider
from sidecar.providers.registry import build_providers
from sidecar.quota.service import QuotaService
from sidecar.quota.signals import STORE_OPERATIONS, QuotaSignals
from sidecar.quota.store import MemoryQuotaStore, QuotaStore
from sidecar.routing.breaker import BreakerPolicy, Breakers
from sidecar.routing.key_pause import KeyPauses
from sidecar.routing.plan import AlwaysHealthy, HealthView, Routing
from sidecar.routing.probe import HealthProber, ProbePolicy, provider_probes
from sidecar.routing.retry import BudgetPolicy, RetryBudgets
from sidecar.routing.stats import Stats
from sidecar.routing.strategy import ComplexityPolicy, LatencyPolicy
from sidecar.routing.table import RouteTable
from sidecar.sessions.store import ConversationStore, MemoryConversationStore, StorePolicy
from sidecar.stores.redis import ErrorObserver, RedisEndpoint, RedisOps
from sidecar.telemetry.collector import DeploymentView, SidecarCollector
from sidecar.telemetry.metrics import Metrics
from sidecar.telemetry.runtime import Telemetry, build_telemetry
from sidecar.telemetry.tracing import Tracing

if TYPE_CHECKING:
    from sidecar.answers.model import Escalation
    from sidecar.answers.queue import EscalationQueue
    from sidecar.answers.service import AnswerService
    from sidecar.answers.store import AnswerStore
    from sidecar.cache.semantic import SemanticStore


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
    deployment_slots: DeploymentSlots | None = None  # per-deployment capacities, checked by the route
    experiments: ExperimentControl | None = None
    idempotency: IdempotencyStore | None = None
    semantic: SemanticStore | None = None  # the semantic cache's store, when a route enables it
    answers: AnswerService | None = None  # the answer policy of creator agents (policy.answers)
    escalations: EscalationQueue | None = None


def build_deps(cfg: Config, clock: Clock | None = None, *, span_exporters: tuple[object, ...] = ()) -> Deps:
    """`span_exporters`: extra OpenTelemetry span exporters (tests pass an in-memory one)."""
    clock = clock or SystemClock()
    http = HttpClient(cfg.settings.http, clock)
    providers = build_providers(cfg, http)
    prober = build_prober(cfg, providers, clock)
    tokenizers = Tokenizers.build(cfg.policy.deployments, cfg.policy.context.encodings_dir)
    telemetry = build_telemetry(cfg.settings.telemetry, clock, span_exporters=span_exporters)
    routing = build_routing(cfg, clock, prober or AlwaysHealthy(), telemetry.tracing, tokenizers)
    quota = build_quota(cfg, clock, quota_signals(telemetry, clock))
    if quota is not None:  # the alert on the store's errors sees the first ones (series at 0)
        telemetry.metrics.expect_store_errors("quota", STORE_OPERATIONS)
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
        deployment_slots=build_deployment_slots(cfg, clock, telemetry.metrics),
        experiments=ExperimentControl(
            ExperimentBook(cfg.policy.experiments, persona_prompts(cfg)),
            cfg.policy.experiments,
            clock=clock,
            ledger=telemetry.ledger.store if telemetry.ledger is not None else None,
        ),
        idempotency=build_idempotency(cfg, clock, partial(telemetry.metrics.store_error, "idempotency")),
        embeddings=build_embeddings(cfg, http, routing, clock, quota, telemetry),
        semantic=build_semantic_store(cfg, clock),
    )
    deps = with_answers(cfg, deps)
    telemetry.metrics.registry.register(build_collector(cfg, deps))
    return deps


def build_deployment_slots(cfg: Config, clock: Clock, metrics: Metrics) -> DeploymentSlots | None:
    """Per-deployment capacities (policy.admission.deployments): shed calls and waits are counted
    with the sidecar-wide admission metrics (by priority); queue depths are not."""
    a = cfg.policy.admission
    if a is None or not a.deployments:
        return None
    observer = SlotsObserver(  # once per call: a call may wait in several deployments' queues
        on_waited=lambda p, seconds: metrics.admission_waited(p.label, seconds),
        on_shed=lambda p: metrics.admission_shed_call(p.label),
    )
    queues = {
        name: AdmissionQueue(
            capacity=capacity,
            queue_size=a.queue_size,
            retry_after=a.retry_after_seconds,
            max_wait=a.max_wait_seconds,
            clock=clock,
            deployment=name,
        )
        for name, capacity in a.deployments.items()
    }
    return DeploymentSlots(queues, clock=clock, observer=observer)


def with_answers(cfg: Config, d: Deps) -> Deps:
    """The answer policy and its escalation queue, when the policy has an answers section (numpy,
    and redis when shared, imported lazily)."""
    a = cfg.policy.answers
    if a is None:
        return d
    from dataclasses import replace

    from sidecar.answers.metrics import AnswerMetrics
    from sidecar.answers.queue import EscalationQueue
    from sidecar.answers.service import AnswerService

    route = a.embedding_route or cfg.policy.embeddings.default_route
    answers = AnswerService(
        a,
        build_answer_store(cfg, d.clock),
        embed=d.embeddings.prompt_embedding,
        embedding_route=route,
        model=d.embeddings.primary_model(route),
        clock=d.clock,
        names={p.id: p.name for p in cfg.policy.personas.all()},
        observer=AnswerMetrics(d.telemetry.metrics.registry).observer(),
    )
    return replace(d, answers=answers, escalations=EscalationQueue(answers, remember=_remember(d.personas)))


def build_answer_store(cfg: Config, clock: Clock) -> AnswerStore:
    a = cfg.policy.answers
    assert a is not None
    if a.store == "redis" and a.redis_url is not None:
        from sidecar.answers.redis_store import RedisAnswerStore

        endpoint = RedisEndpoint.of(a.redis_url, a.redis, cfg.secret, default_timeout=a.timeout_seconds)
        return RedisAnswerStore(RedisOps(endpoint, retries=1, clock=clock), prefix=a.key_prefix, clock=clock)
    from sidecar.answers.sqlite_store import SqliteAnswerStore

    return SqliteAnswerStore(a.sqlite_path)


def _remember(personas: PersonaService) -> Callable[[Escalation], Awaitable[None]]:
    """A creator's answer, appended to the conversation the question came from."""
    from sidecar.core.types import Message, Role
    from sidecar.sessions.store import ConversationKey

    async def remember(e: Escalation) -> None:
        note = f"(answered personally by the creator) {e.answer}"
        await personas.remember(
            ConversationKey(e.tenant, e.user, e.conversation), (Message(Role.ASSISTANT, note),)
        )

    return remember


def build_admission(cfg: Config, clock: Clock, metrics: Metrics) -> AdmissionQueue | None:
    """The sidecar's capacity and priority queue, when the policy has an admission section."""
    a = cfg.policy.admission
    if a is None or a.capacity is None:
        return None
    observer = AdmissionObserver(
        on_depth=lambda p, depth: metrics.admission_queue_depth(p.label, depth),
        on_tenants=lambda p, tenants: metrics.admission_queued_tenants(p.label, tenants),
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


def build_authorizer(cfg: Config) -> Authorizer:
    """The credentials of settings.auth; the admin service is open to anonymous callers only on its
    own Unix socket (the config refuses it on the listener without credentials)."""
    auth = cfg.settings.auth
    configured = [(c.name, cfg.secrets[c.token.env], c.allow, c.tenants) for c in auth.credentials]
    return Authorizer(
        credentials_from_settings(cfg.secret(auth.token), configured),
        admin_open=cfg.settings.admin.mode == "unix_socket",
    )


def build_idempotency(
    cfg: Config, clock: Clock, on_store_error: Callable[[str], None] = lambda op: None
) -> IdempotencyStore | None:
    """Where first answers wait for their retries: this process, or Redis shared by sidecars."""
    idem = cfg.settings.idempotency
    if not idem.enabled:
        return None
    if idem.backend == "redis" and idem.redis_url is not None:
        from sidecar.idempotency.redis_store import RedisIdempotencyStore

        endpoint = RedisEndpoint.of(idem.redis_url, idem.redis, cfg.secret, default_timeout=5.0)
        return RedisIdempotencyStore(
            endpoint,
            prefix=idem.key_prefix,
            window_seconds=idem.window_seconds,
            clock=clock,
            on_store_error=on_store_error,
        )
    return MemoryIdempotencyStore(
        clock=clock, window_seconds=idem.window_seconds, max_entries=idem.max_entries
    )


def build_cache(cfg: Config, clock: Clock | None = None) -> ByteStore | None:
    """The store for cached answers (imported only when the response cache is on)."""
    c = cfg.settings.cache
    if not c.enabled:
        return None
    if c.backend == "redis" and c.redis_url is not None:
        endpoint = RedisEndpoint.of(c.redis_url, c.redis, cfg.secret, default_timeout=c.timeout_seconds)
        return RedisByteStore(RedisOps(endpoint, retries=1, clock=clock), c.namespace)
    return AiocacheStore.memory(
        c.namespace, timeout=c.timeout_seconds, max_entries=c.max_entries, max_bytes=c.max_bytes
    )


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
        policy,
        router,
        clock=clock,
        quota=quota,
        metrics=telemetry.metrics,
        ledger=telemetry.ledger,
        tracing=telemetry.tracing,
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

    return MemorySemanticStore(max_entries=s.max_entries, max_bytes=s.max_bytes)


def quota_signals(telemetry: Telemetry, clock: Clock | None = None) -> QuotaSignals:
    """Near-limit events and quota-store failures, counted in the metrics (refusals are counted by
    the observe layer from the error); store failures logged once a minute at most."""
    metrics = telemetry.metrics
    signals = QuotaSignals(clock=clock)
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

        signals.webhook = WebhookSender(q.webhook, clock=clock, secret=cfg.secret(q.webhook.secret))
    return QuotaService(q, cfg.policy.tiers, store, clock, signals)


def build_collector(cfg: Config, d: Deps) -> SidecarCollector:
    """Breakers, probe health, in-flight attempts, the key cache and the ledger queue, read at scrape time."""
    names = tuple(cfg.policy.deployments)
    routing, prober, keys, ledger = d.routing, d.prober, d.keys, d.telemetry.ledger
    slots = d.deployment_slots

    def capacity(n: str) -> tuple[int, int] | None:
        queue = slots.queue(n) if slots is not None else None
        return (queue.running, queue.depth()) if queue is not None else None

    def deployments() -> dict[str, DeploymentView]:
        return {
            n: DeploymentView(
                breaker_state=routing.breakers.get(n).state().value,
                healthy=prober.healthy(n) if prober is not None else True,
                in_flight=routing.stats.get(n).in_flight,
                capacity=capacity(n),
            )
            for n in names
        }

    def key_cache() -> tuple[int, int] | None:
        if keys is None:
            return None
        stats = keys.cache.stats()
        return stats.hits, stats.misses

    return SidecarCollector(deployments, key_cache, lambda: ledger.depth() if ledger is not None else None)


def build_personas(
    cfg: Config, clock: Clock, count: TokenCounter = count_tokens, on_store_error: ErrorObserver | None = None
) -> PersonaService:
    """The persona registry and the conversation store (memory, or Redis imported lazily)."""
    p = cfg.policy.personas
    registry = PersonaRegistry.from_config(p, tiers=cfg.policy.tiers, routes=cfg.policy.routes, count=count)
    s = p.sessions
    policy = StorePolicy(
        s.ttl_seconds,
        s.max_history_messages,
        s.max_switch_history,
        s.max_conversations,
        s.max_memory_bytes,
        s.max_history_bytes,
    )
    store: ConversationStore
    if s.store == "redis" and s.redis_url is not None:
        from sidecar.sessions.redis import RedisConversationStore

        endpoint = RedisEndpoint.of(s.redis_url, s.redis, cfg.secret, default_timeout=5.0)
        ops = RedisOps(endpoint, retries=1, observer=on_store_error, clock=clock)
        store = RedisConversationStore(ops, policy, prefix=s.key_prefix)
    else:
        store = MemoryConversationStore(policy, clock)
    summaries = cfg.policy.context.summary is not None
    return PersonaService(registry, store, clock=clock, memory_default=s.memory, summaries=summaries)


def build_prober(cfg: Config, providers: Mapping[str, Provider], clock: Clock) -> HealthProber | None:
    """Zero-cost probes of every deployment, unless disabled."""
    probes = cfg.policy.routing.probes
    if not probes.enabled:
        return None
    policy = ProbePolicy(**probes.model_dump(exclude={"enabled"}))
    probed = {name: p for name, p in providers.items() if cfg.policy.deployments[name].probe}
    checks = provider_probes(probed, policy=policy, clock=clock)
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
        latency=LatencyPolicy(**r.latency.model_dump()),
        key_pauses=KeyPauses(clock),
        tracing=tracing or Tracing.disabled(),
        tokens=tokens or Tokenizers({}),
    )
