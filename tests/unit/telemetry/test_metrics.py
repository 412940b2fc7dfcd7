"""The metrics module: per-call series, opt-in attribution with a series cap, other layers' signals."""

from __future__ import annotations

from prometheus_client import generate_latest

from sidecar.telemetry.collector import DeploymentView, SidecarCollector
from sidecar.telemetry.metrics import CallOutcome, Metrics


def outcome(**kw: object) -> CallOutcome:
    base: dict[str, object] = dict(
        route="chat", provider="openai", model="gpt-x", stream=False, code="OK", seconds=0.5,
        overhead_seconds=0.0004, ttft_seconds=None, tokens_in=10, tokens_out=5, tokens_cached=0,
        cost_usd=0.001, retries=0, fallbacks=0, hedges=0, cache_hit=False,
    )  # fmt: skip
    base.update(kw)
    return CallOutcome(**base)  # type: ignore[arg-type]


def series(m: Metrics) -> int:
    return sum(len(f.samples) for f in m.registry.collect())


def test_each_registry_is_its_own() -> None:
    a, b = Metrics(), Metrics()
    a.call_started()
    a.call_finished(outcome())
    assert a.registry.get_sample_value("sidecar_requests_total", _req()) == 1
    assert b.registry.get_sample_value("sidecar_requests_total", _req()) is None


def _req(**kw: str) -> dict[str, str]:
    return {"route": "chat", "provider": "openai", "model": "gpt-x", "stream": "false", "code": "OK", **kw}


def test_overhead_histogram_buckets_are_sub_millisecond() -> None:
    m = Metrics()
    m.call_started()
    m.call_finished(outcome(overhead_seconds=0.0004))
    le = {"route": "chat", "stream": "false"}
    assert m.registry.get_sample_value("sidecar_overhead_seconds_bucket", {**le, "le": "0.00025"}) == 0
    assert m.registry.get_sample_value("sidecar_overhead_seconds_bucket", {**le, "le": "0.0005"}) == 1


def test_many_tenants_and_users_do_not_grow_the_series_by_default() -> None:
    m = Metrics()
    m.call_started()
    m.call_finished(outcome(), tenant="t0", user="u0")
    before = series(m)
    for i in range(2000):
        m.call_started()
        m.call_finished(outcome(), tenant=f"tenant-{i}", user=f"user-{i}")
    assert series(m) == before
    assert b"tenant-" not in generate_latest(m.registry)


def test_allow_listed_tenants_get_series_up_to_the_cap() -> None:
    allowed = [f"t{i}" for i in range(10)]
    m = Metrics(tenant_allow=allowed, max_label_series=3)
    for i in range(10):
        for user in ("a", "b"):
            m.call_started()
            m.call_finished(outcome(cost_usd=1.0), tenant=f"t{i}", user=user)
    m.call_started()
    m.call_finished(outcome(cost_usd=1.0), tenant="not-listed", user="x")
    text = generate_latest(m.registry).decode()
    tenants = {
        line.split('tenant="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("sidecar_attributed_requests_total{")
    }
    assert tenants == {"t0", "t1", "t2", "other"}  # three allowed, then everything is `other`
    assert (
        m.registry.get_sample_value("sidecar_attributed_requests_total", {"tenant": "t0", "user": "other"})
        == 2
    )
    total = sum(
        m.registry.get_sample_value("sidecar_attributed_cost_usd_total", {"tenant": t, "user": "other"}) or 0
        for t in tenants
    )
    assert total == 21


def test_signals_of_other_layers() -> None:
    m = Metrics()
    m.quota_refused("tenant_tokens_day")
    m.quota_near_limit("tenant_usd_month", 90)
    m.cache_lookup(hit=True)
    m.cache_lookup(hit=False)
    m.cache_lookup(hit=False)
    m.store_error("redis", "incr")
    m.key_decrypted(0.003)
    m.ledger_dropped("queue_full", 3)
    m.ledger_wrote(7)
    v = m.registry.get_sample_value
    assert v("sidecar_quota_refusals_total", {"limit": "tenant_tokens_day"}) == 1
    assert v("sidecar_quota_near_limit_total", {"limit": "tenant_usd_month", "percent": "90"}) == 1
    assert v("sidecar_cache_lookups_total", {"result": "hit"}) == 1
    assert v("sidecar_cache_lookups_total", {"result": "miss"}) == 2
    assert v("sidecar_store_errors_total", {"store": "redis", "op": "incr"}) == 1
    assert v("sidecar_key_decrypt_seconds_count", {}) == 1
    assert v("sidecar_ledger_dropped_records_total", {"cause": "queue_full"}) == 3
    assert v("sidecar_ledger_written_records_total", {}) == 7


def test_label_values_from_other_modules_are_bounded() -> None:
    m = Metrics()
    m.quota_refused("sk-live-secret value with spaces")
    m.quota_near_limit("x" * 200, 150)
    assert m.registry.get_sample_value("sidecar_quota_refusals_total", {"limit": "other"}) == 1
    assert (
        m.registry.get_sample_value("sidecar_quota_near_limit_total", {"limit": "other", "percent": "100"})
        == 1
    )


def test_collector_reads_breakers_health_key_cache_and_ledger_at_scrape_time() -> None:
    views = {"a": DeploymentView("open", False, 2), "b": DeploymentView("closed", True, 0)}
    depth = [5]
    m = Metrics()
    m.registry.register(SidecarCollector(lambda: views, lambda: (7, 3), lambda: depth[0]))
    v = m.registry.get_sample_value
    assert v("sidecar_breaker_state", {"deployment": "a", "state": "open"}) == 1
    assert v("sidecar_breaker_state", {"deployment": "a", "state": "closed"}) == 0
    assert v("sidecar_deployment_healthy", {"deployment": "a"}) == 0
    assert v("sidecar_deployment_healthy", {"deployment": "b"}) == 1
    assert v("sidecar_deployment_in_flight", {"deployment": "a"}) == 2
    assert v("sidecar_key_cache_lookups_total", {"result": "hit"}) == 7
    assert v("sidecar_ledger_queue_depth", {}) == 5
    views["a"] = DeploymentView("half_open", True, 0)
    depth[0] = 0
    assert v("sidecar_breaker_state", {"deployment": "a", "state": "half_open"}) == 1
    assert v("sidecar_ledger_queue_depth", {}) == 0


def test_each_token_direction_is_counted_on_its_own() -> None:
    """An upstream that reports no prompt tokens (0, or only output) still has its output tokens
    counted, as the ledger and the caller's summary count them."""
    m = Metrics()
    m.call_started()
    m.call_finished(outcome(tokens_in=0, tokens_out=7, cost_usd=14.0))
    m.call_started()
    m.call_finished(outcome(tokens_in=3, tokens_out=0, tokens_cached=2))

    def tokens(direction: str) -> float | None:
        labels = {"route": "chat", "provider": "openai", "model": "gpt-x", "direction": direction}
        return m.registry.get_sample_value("sidecar_tokens_total", labels)

    assert (tokens("input"), tokens("output"), tokens("cached")) == (3, 7, 2)


def test_build_info() -> None:
    [sample] = [s for f in Metrics().registry.collect() for s in f.samples if s.name == "sidecar_build_info"]
    assert sample.value == 1 and sample.labels["version"]


def test_errors_are_counted_by_reason_from_a_fixed_set() -> None:
    m = Metrics()
    for reason in ("PROVIDER_AUTH_FAILED", "PROVIDER_AUTH_FAILED", "KEY_BACKEND_UNAVAILABLE"):
        code = "INTERNAL" if reason == "PROVIDER_AUTH_FAILED" else "UNAVAILABLE"
        m.call_started()
        m.call_finished(outcome(code=code, reason=reason))
    m.call_started()
    m.call_finished(outcome(code="INTERNAL", reason="free text from somewhere: sk-live-1"))
    m.call_started()
    m.call_finished(outcome())  # OK: no error series
    m.call_rejected(False, "INVALID_ARGUMENT", "INVALID_REQUEST")

    def errors(route: str, code: str, reason: str) -> float | None:
        return m.registry.get_sample_value(
            "sidecar_errors_total", {"route": route, "code": code, "reason": reason}
        )

    assert errors("chat", "INTERNAL", "PROVIDER_AUTH_FAILED") == 2
    assert errors("chat", "UNAVAILABLE", "KEY_BACKEND_UNAVAILABLE") == 1
    assert errors("chat", "INTERNAL", "other") == 1
    assert errors("", "INVALID_ARGUMENT", "INVALID_REQUEST") == 1
    samples = [s for f in m.registry.collect() if f.name == "sidecar_errors" for s in f.samples]
    assert sum(s.value for s in samples if s.name == "sidecar_errors_total") == 5


def test_every_reason_the_sidecar_raises_is_a_known_label_value() -> None:
    import sidecar.app  # noqa: F401  (imports every module that defines an error class)
    from sidecar.core.errors import QUOTA_REASONS, SidecarError
    from sidecar.pipeline.observe import CANCELLED, DEADLINE_EXCEEDED
    from sidecar.telemetry.labels import ERROR_REASONS

    def subclasses(cls: type[SidecarError]) -> set[type[SidecarError]]:
        direct = set(cls.__subclasses__())
        return direct.union(*(subclasses(c) for c in direct))

    raised = {c.reason for c in subclasses(SidecarError)} | {SidecarError.reason}
    assert raised | set(QUOTA_REASONS) | {CANCELLED, DEADLINE_EXCEEDED} <= ERROR_REASONS


def test_a_response_cache_hit_adds_no_provider_tokens_or_first_token_time() -> None:
    """The provider saw nothing: its token counters (input, output, `cached` = its own prompt cache)
    and its time to first token stay as they were; the hit is counted as served from the cache."""
    m = Metrics()
    m.call_started()
    m.call_finished(outcome(stream=True, ttft_seconds=0.002, tokens_cached=10, cost_usd=0.0, cache_hit=True))
    labels = {"route": "chat", "provider": "openai", "model": "gpt-x"}
    for direction in ("input", "output", "cached"):
        assert not m.registry.get_sample_value("sidecar_tokens_total", {**labels, "direction": direction})
    ttft = m.registry.get_sample_value(
        "gen_ai_server_time_to_first_token_seconds_count",
        {
            "gen_ai_operation_name": "chat",
            "gen_ai_provider_name": "openai",
            "gen_ai_request_model": "gpt-x",
            "route": "chat",
        },
    )
    assert not ttft
    assert m.registry.get_sample_value("sidecar_cache_served_total", {"route": "chat"}) == 1
    assert m.registry.get_sample_value("sidecar_requests_total", _req(stream="true")) == 1
