"""Every Prometheus metric of the sidecar, defined here and nowhere else, in a registry per server.

Names follow the OpenTelemetry GenAI semantic conventions where one exists (token usage, operation
duration, time to first token; their labels are the convention's attributes with `_` for `.`), and
`sidecar_*` otherwise. Every label value comes from configuration (route, deployment, provider,
model) or from a fixed set (gRPC code, direction); a route the caller names that does not exist is
`unknown`. Tenants and users get series only when allow-listed, and never more than a capped number.

The hot path (`call_finished`) reads pre-resolved labelled children from a dict keyed by a tuple,
so a call allocates no label dict. State that other objects already keep (breakers, probe health,
the key cache, the ledger queue) is read at scrape time by `SidecarCollector` (telemetry/collector.py),
not pushed per call; the injector webhook's own metrics are in injector/metrics.py.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sidecar.core.priority import Priority
from sidecar.quota.limits import charged_usd
from sidecar.telemetry.labels import OTHER, UNKNOWN, LabelCap, bounded_label, error_reason

# The causes a usage record is dropped for (ledger/writer.py): their series exist from the start at 0.
# A series made by its first increment reaches Prometheus at that value, and increase() over it is 0
# until it grows again: the chart's OrchestratorSidecarLedgerDrops missed every first burst.
LEDGER_DROP_CAUSES = ("queue_full", "write_failed")
SPAN_DROP_CAUSES = ("queue_full", "export_failed", "shutdown")  # telemetry/span_export.py

# Bucket boundaries advised by the GenAI semantic conventions.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
# The sidecar's own overhead is meant to be well under a millisecond: fine buckets there.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
DECRYPT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SIMILARITY_BUCKETS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99, 1.0)

_GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "route")


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What the outermost layer knows when a call ends; the metrics and the ledger both read it."""

    route: str  # a configured route alias, or UNKNOWN
    provider: str  # "" when no deployment was reached
    model: str
    stream: bool
    code: str  # gRPC status code name: OK, INVALID_ARGUMENT, CANCELLED, ...
    seconds: float
    overhead_seconds: float
    ttft_seconds: float | None
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    cost_usd: float
    retries: int
    fallbacks: int
    hedges: int
    cache_hit: bool
    reason: str = "OK"  # the ErrorInfo reason of a failed call (its `code` is not OK)


@dataclass(frozen=True, slots=True)
class EmbedOutcome:
    route: str  # the embedding route alias ("" when the caller named an unknown one: label `none`)
    deployment: str  # the deployment that answered ("" when none did: label `none`)
    code: str
    seconds: float
    upstream_texts: int = 0
    cached_texts: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


class _Series:
    """The labelled children one (route, provider, model, stream, code) combination writes to."""

    __slots__ = (
        "cost", "duration", "fallbacks", "from_cache", "hedges", "overhead", "requests", "retries",
        "tok_cached", "tok_in", "tok_in_h", "tok_out", "tok_out_h", "ttft",
    )  # fmt: skip

    def __init__(self, m: Metrics, route: str, provider: str, model: str, stream: str, code: str) -> None:
        genai = ("chat", provider, model, route)
        self.requests = m.requests.labels(route, provider, model, stream, code)
        self.duration = m.duration.labels(*genai, stream)
        self.overhead = m.overhead.labels(route, stream)
        self.ttft = m.ttft.labels(*genai)
        self.tok_in_h = m.token_usage.labels(*genai, "input")
        self.tok_out_h = m.token_usage.labels(*genai, "output")
        self.tok_in = m.tokens.labels(route, provider, model, "input")
        self.tok_out = m.tokens.labels(route, provider, model, "output")
        self.tok_cached = m.tokens.labels(route, provider, model, "cached")
        self.cost = m.cost.labels(route, provider, model)
        self.retries = m.retries.labels(route)
        self.fallbacks = m.fallbacks.labels(route)
        self.hedges = m.hedges.labels(route)
        self.from_cache = m.cache_served.labels(route)


class Metrics:
    """The sidecar's metrics in their own registry; a small typed method per signal."""

    def __init__(
        self,
        *,
        tenant_allow: Iterable[str] = (),
        user_allow: Iterable[str] = (),
        max_label_series: int = 100,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "sidecar_requests", "Calls finished, by route, provider, model, stream and gRPC code.",
            ("route", "provider", "model", "stream", "code"), registry=r,
        )  # fmt: skip
        self.errors = Counter(
            "sidecar_errors", "Calls that ended in an error, by route, gRPC code and ErrorInfo reason.",
            ("route", "code", "reason"), registry=r,
        )  # fmt: skip
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds", "Whole-call duration as the caller saw it.",
            (*_GENAI, "stream"), buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.overhead = Histogram(
            "sidecar_overhead_seconds", "The sidecar's own time per call: total minus time waiting upstream.",
            ("route", "stream"), buckets=OVERHEAD_BUCKETS, registry=r,
        )  # fmt: skip
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds", "Time to the first streamed token.",
            _GENAI, buckets=TTFT_BUCKETS, registry=r,
        )  # fmt: skip
        self.token_usage = Histogram(
            "gen_ai_client_token_usage", "Tokens per call, input and output.",
            (*_GENAI, "gen_ai_token_type"), buckets=TOKEN_BUCKETS, registry=r,
        )  # fmt: skip
        self.tokens = Counter(
            "sidecar_tokens", "Tokens, by direction: input, output, cached (of the input).",
            ("route", "provider", "model", "direction"), registry=r,
        )  # fmt: skip
        self.cost = Counter(
            "sidecar_cost_usd", "Cost in US dollars from the price table.",
            ("route", "provider", "model"), registry=r,
        )  # fmt: skip
        self.retries = Counter("sidecar_retries", "Retries on the same deployment.", ("route",), registry=r)
        self.fallbacks = Counter(
            "sidecar_fallbacks", "Moves to the next deployment of the route.", ("route",), registry=r
        )
        self.hedges = Counter("sidecar_hedges", "Hedged attempts raced.", ("route",), registry=r)
        self.cache_lookups = Counter(
            "sidecar_cache_lookups", "Response-cache lookups, hit or miss.", ("result",), registry=r
        )
        self.cache_served = Counter(
            "sidecar_cache_served", "Calls answered from the response cache.", ("route",), registry=r
        )
        self.semantic_lookups = Counter(
            "sidecar_semantic_cache_lookups",
            "Semantic-cache lookups: hit, near_miss (just below the threshold), miss, error.",
            ("result",), registry=r,
        )  # fmt: skip
        self.semantic_similarity = Histogram(
            "sidecar_semantic_cache_similarity", "The best similarity a semantic lookup found.",
            buckets=SIMILARITY_BUCKETS, registry=r,
        )  # fmt: skip
        self.embed_requests = Counter(
            "sidecar_embed_requests", "Embed calls finished, by embedding route, deployment and gRPC code.",
            ("route", "deployment", "code"), registry=r,
        )  # fmt: skip
        self.embed_texts = Counter(
            "sidecar_embed_texts", "Texts embedded, by source: upstream or cache.", ("route", "source"),
            registry=r,
        )  # fmt: skip
        self.embed_tokens = Counter(
            "sidecar_embed_tokens", "Input tokens embedded upstream.", ("route", "deployment"), registry=r
        )
        self.embed_cost = Counter(
            "sidecar_embed_cost_usd", "Embedding cost in US dollars from the price table.",
            ("route", "deployment"), registry=r,
        )  # fmt: skip
        self.embed_duration = Histogram(
            "sidecar_embed_duration_seconds", "Whole Embed call duration.", ("route",),
            buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.quota_refusals = Counter(
            "sidecar_quota_refusals", "Calls refused by a quota or rate limit.", ("limit",), registry=r
        )
        self.switches = Counter(
            "sidecar_persona_switches",
            "Switch calls, by outcome: OK or the error reason.",
            ("outcome",),
            registry=r,
        )
        self.quota_near = Counter(
            "sidecar_quota_near_limit", "Calls that took a limit past a warning threshold.",
            ("limit", "percent"), registry=r,
        )  # fmt: skip
        self.in_flight = Gauge("sidecar_in_flight_calls", "Calls being served now.", registry=r)
        self.decrypt = Histogram(
            "sidecar_key_decrypt_seconds", "User-key decrypts that went to the key backend.",
            buckets=DECRYPT_BUCKETS, registry=r,
        )  # fmt: skip
        self.token_renewals = Counter(
            "sidecar_key_token_renewals", "Vault token renewals, by outcome: renewed or failed.",
            ("outcome",), registry=r,
        )  # fmt: skip
        self.envelope_refusals = Counter(
            "sidecar_key_envelope_refusals",
            "Key envelopes refused before a key-backend call: known_bad (failed to open moments ago) "
            "or tenant_limit (the tenant's envelopes failed too often).",
            ("reason",), registry=r,
        )  # fmt: skip
        for reason in ("known_bad", "tenant_limit"):
            self.envelope_refusals.labels(reason)
        self.registration_refusals = Counter(
            "sidecar_key_registration_refusals",
            "RegisterKey calls refused before a key-backend call: the user's or the tenant's bound on "
            "registrations in the window (settings.keys.registrations).",
            ("scope",), registry=r,
        )  # fmt: skip
        for scope in ("user", "tenant"):
            self.registration_refusals.labels(scope)
        for outcome in ("renewed", "failed"):  # at 0 from the start: the alert sees the first failure
            self.token_renewals.labels(outcome)
        self.store_errors = Counter(
            "sidecar_store_errors", "Errors of a state store, by store and operation.", ("store", "op"),
            registry=r,
        )  # fmt: skip
        self.ledger_drops = Counter(
            "sidecar_ledger_dropped_records", "Usage records dropped: queue full or write failed.",
            ("cause",), registry=r,
        )  # fmt: skip
        for cause in LEDGER_DROP_CAUSES:
            self.ledger_drops.labels(cause)
        self.ledger_writes = Counter("sidecar_ledger_written_records", "Usage records stored.", registry=r)
        self.spans_exported_total = Counter(
            "sidecar_trace_spans_exported", "Spans the OTLP collector accepted.", registry=r
        )
        self.spans_dropped_total = Counter(
            "sidecar_trace_spans_dropped",
            "Spans lost: queue_full (the collector is behind), export_failed (it refused or did not "
            "answer), shutdown (still queued when the stop's export time ran out).",
            ("cause",), registry=r,
        )  # fmt: skip
        for cause in SPAN_DROP_CAUSES:
            self.spans_dropped_total.labels(cause)
        self.attributed_requests = Counter(
            "sidecar_attributed_requests", "Calls of allow-listed tenants and users (opt-in).",
            ("tenant", "user"), registry=r,
        )  # fmt: skip
        self.attributed_cost = Counter(
            "sidecar_attributed_cost_usd", "Cost of allow-listed tenants and users (opt-in).",
            ("tenant", "user"), registry=r,
        )  # fmt: skip
        self.admission_depth = Gauge(
            "sidecar_admission_queue_depth", "Calls waiting for an admission slot, by priority.",
            ("priority",), registry=r,
        )  # fmt: skip
        self.admission_tenants = Gauge(
            "sidecar_admission_queued_tenants", "Tenants with calls waiting for admission, by priority.",
            ("priority",), registry=r,
        )  # fmt: skip
        self.admission_wait = Histogram(
            "sidecar_admission_wait_seconds", "Time queued calls waited for admission, by priority.",
            ("priority",), buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.admission_shed = Counter(
            "sidecar_admission_shed", "Calls shed (UNAVAILABLE/OVERLOADED) by admission, by priority.",
            ("priority",), registry=r,
        )  # fmt: skip
        for level in Priority:  # at 0 from the start: an alert's rate() then sees the first shed
            self.admission_shed.labels(level.label)
        self.admission_running = Gauge(
            "sidecar_admission_running_calls", "Calls holding an admission slot.", registry=r
        )
        build = Gauge("sidecar_build_info", "Build information; always 1.", ("version", "python"), registry=r)
        build.labels(_version(), platform.python_version()).set(1)
        self._series: dict[tuple[str, str, str, bool, str], _Series] = {}
        self._tenants = LabelCap(tenant_allow, max_label_series)
        self._users = LabelCap(user_allow, max_label_series)
        self._attributed: dict[tuple[str, str], tuple[Counter, Counter]] = {}
        self._max_series = max_label_series

    # The outermost layer

    def call_started(self) -> None:
        self.in_flight.inc()

    def call_finished(self, o: CallOutcome, *, tenant: str = "", user: str = "") -> None:
        self.in_flight.dec()
        key = (o.route, o.provider, o.model, o.stream, o.code)
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = _Series(self, o.route, o.provider, o.model, str(o.stream).lower(), o.code)
        s.requests.inc()
        s.duration.observe(o.seconds)
        s.overhead.observe(o.overhead_seconds)
        if o.cache_hit:  # answered by the response cache: the provider saw nothing, used no tokens
            s.from_cache.inc()
        else:
            self._provider_work(s, o)
        cost = charged_usd(o.cost_usd)
        if cost:
            s.cost.inc(cost)
        if o.retries:
            s.retries.inc(o.retries)
        if o.fallbacks:
            s.fallbacks.inc(o.fallbacks)
        if o.hedges:
            s.hedges.inc(o.hedges)
        if o.code != "OK":
            self.errors.labels(o.route, o.code, error_reason(o.reason)).inc()
        if self._tenants or self._users:
            self._attribute(tenant, user, cost)

    @staticmethod
    def _provider_work(s: _Series, o: CallOutcome) -> None:
        """The time to first token and the tokens of a call a provider answered."""
        if o.ttft_seconds is not None:
            s.ttft.observe(o.ttft_seconds)
        if o.provider:
            s.tok_in_h.observe(o.tokens_in)
            s.tok_out_h.observe(o.tokens_out)
        if o.tokens_in:  # each direction on its own: an upstream may report output and no input
            s.tok_in.inc(o.tokens_in)
        if o.tokens_out:
            s.tok_out.inc(o.tokens_out)
        if o.tokens_cached:
            s.tok_cached.inc(o.tokens_cached)

    def call_rejected(self, stream: bool, code: str, reason: str) -> None:
        """A request refused at the edge (invalid, unknown tier): counted with empty route labels."""
        self.requests.labels("", "", "", str(stream).lower(), code).inc()
        self.errors.labels("", code, error_reason(reason)).inc()

    def persona_switched(self, outcome: str) -> None:
        """A Switch ended: OK, or its error reason (PERSONA_NOT_FOUND, SWITCH_SUPERSEDED, CANCELLED, ...)."""
        self.switches.labels(bounded_label(outcome)).inc()

    def _attribute(self, tenant: str, user: str, cost: float) -> None:
        labels = (self._tenants.value(tenant), self._users.value(user))
        pair = self._attributed.get(labels)
        if pair is None:
            opted_in = len(self._attributed) - ((OTHER, OTHER) in self._attributed)
            if opted_in >= self._max_series:
                labels = (OTHER, OTHER)
            pair = self._attributed.get(labels) or (
                self.attributed_requests.labels(*labels),
                self.attributed_cost.labels(*labels),
            )
            self._attributed[labels] = pair
        pair[0].inc()
        if cost:
            pair[1].inc(cost)

    # Signals of other layers and stores (each a small typed method)

    def quota_refused(self, limit: str) -> None:
        self.quota_refusals.labels(bounded_label(limit)).inc()

    def quota_near_limit(self, limit: str, percent: int) -> None:
        """A call took `limit` past `percent` (one of the configured warning thresholds) of its budget."""
        self.quota_near.labels(bounded_label(limit), str(max(0, min(100, int(percent))))).inc()

    def cache_lookup(self, hit: bool) -> None:
        self.cache_lookups.labels("hit" if hit else "miss").inc()

    def semantic_lookup(self, result: str) -> None:
        self.semantic_lookups.labels(bounded_label(result)).inc()

    def semantic_similarity_seen(self, similarity: float) -> None:
        self.semantic_similarity.observe(similarity)

    def embedded(
        self, e: EmbedOutcome, *, tenant: str | None = None, user: str = "", reason: str = "OK"
    ) -> None:
        """One Embed call ended (the embedding service): texts by source, tokens and cost upstream.
        A caller's Embed (`tenant` given, not a prompt embedding of the semantic cache) is a call of
        its tenant and user, as the ledger and GetUsage count it, and its error (`reason`) is in
        sidecar_errors_total like a Generate's, so the alerts on a reason see it."""
        route, deployment = (bounded_label(v) if v else "none" for v in (e.route, e.deployment))
        self.embed_requests.labels(route, deployment, e.code).inc()
        self.embed_duration.labels(route).observe(e.seconds)
        if e.upstream_texts:
            self.embed_texts.labels(route, "upstream").inc(e.upstream_texts)
        if e.cached_texts:
            self.embed_texts.labels(route, "cache").inc(e.cached_texts)
        if e.tokens:
            self.embed_tokens.labels(route, deployment).inc(e.tokens)
        if (cost := charged_usd(e.cost_usd)) > 0:
            self.embed_cost.labels(route, deployment).inc(cost)
        if tenant is None:
            return
        if e.code != "OK":
            self.errors.labels(route, e.code, error_reason(reason)).inc()
        if self._tenants or self._users:
            self._attribute(tenant, user, cost)

    def store_error(self, store: str, op: str) -> None:
        self.store_errors.labels(bounded_label(store), bounded_label(op)).inc()

    def expect_store_errors(self, store: str, ops: Iterable[str]) -> None:
        """The store's error series at 0 from the start, so that rate() sees its first errors."""
        for op in ops:
            self.store_errors.labels(bounded_label(store), bounded_label(op))

    def key_decrypted(self, seconds: float) -> None:
        self.decrypt.observe(seconds)

    def key_token_renewal(self, outcome: str) -> None:
        self.token_renewals.labels(outcome).inc()

    def key_envelope_refused(self, reason: str) -> None:
        self.envelope_refusals.labels(reason).inc()

    def key_registration_refused(self, scope: str) -> None:
        self.registration_refusals.labels(scope).inc()

    def ledger_dropped(self, cause: str, records: int = 1) -> None:
        self.ledger_drops.labels(cause).inc(records)

    def ledger_wrote(self, records: int) -> None:
        self.ledger_writes.inc(records)

    # Spans to the OTLP collector (telemetry/span_export.py; called on the exporter's thread)

    def spans_exported(self, spans: int) -> None:
        self.spans_exported_total.inc(spans)

    def spans_dropped(self, cause: str, spans: int) -> None:
        self.spans_dropped_total.labels(cause).inc(spans)

    # Admission control (sidecar/admission/queue.py): priorities are the five level names

    def admission_queue_depth(self, priority: str, depth: int) -> None:
        self.admission_depth.labels(bounded_label(priority)).set(depth)

    def admission_queued_tenants(self, priority: str, tenants: int) -> None:
        self.admission_tenants.labels(bounded_label(priority)).set(tenants)

    def admission_waited(self, priority: str, seconds: float) -> None:
        self.admission_wait.labels(bounded_label(priority)).observe(seconds)

    def admission_shed_call(self, priority: str) -> None:
        self.admission_shed.labels(bounded_label(priority)).inc()

    def admission_running_calls(self, n: int) -> None:
        self.admission_running.set(n)


def _version() -> str:
    try:
        return metadata.version("orchestrator-sidecar")
    except metadata.PackageNotFoundError:
        return UNKNOWN
