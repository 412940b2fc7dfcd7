"""ExperimentService through the real server: Feedback (tenant-scoped, validated, scored once) and
GetExperimentReport (one tenant's calls, finite statistics only, a verdict after min_samples), the
variant in the summary, and the per-method authorization of the service."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from sidecar._gen.orchestrator.v1 import experiments_pb2 as pb
from tests.integration.helpers import rich
from tests.integration.test_experiments import config, request

pytestmark = pytest.mark.integration
Serve = Callable[..., Any]
TOKENS = {"ACME": "acme-token", "GLOBEX": "globex-token", "GEN": "gen-token"}


def with_auth(raw: dict[str, Any]) -> dict[str, Any]:
    creds = [
        {"name": "acme", "token": {"env": "ACME"}, "allow": ["*"], "tenants": ["acme"]},
        {"name": "globex", "token": {"env": "GLOBEX"}, "allow": ["*"], "tenants": ["globex"]},
        {"name": "gen", "token": {"env": "GEN"}, "allow": ["GenerationService"]},
    ]
    return {**raw, "settings": {"auth": {"credentials": creds}}}


def bearer(name: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {TOKENS[name]}")]


def stamp(seconds: float) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromNanoseconds(int(seconds * 1e9))
    return out


def report_request(
    tenant: str = "acme", experiment: str = "tone", **kw: Any
) -> pb.GetExperimentReportRequest:
    now = time.time()
    fields = {"start_time": stamp(now - 600), "end_time": stamp(now + 600), **kw}
    return pb.GetExperimentReportRequest(tenant_id=tenant, experiment=experiment, **fields)


def ledger_feedback(path: Path) -> dict[str, tuple[float | None, str | None, bool]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute(
            "SELECT request_id, feedback_score, feedback_label, variant_overridden FROM usage_records"
        ).fetchall()
    return {r[0]: (r[1], r[2], bool(r[3])) for r in found}


async def test_feedback_is_tenant_scoped_validated_and_given_once(serve: Serve, tmp_path: Path) -> None:
    running = await serve(config())
    stub = running.stub
    reply = await stub.Generate(request("u1", "call-1"), timeout=10)
    s = reply.summary
    assert s.experiment == "tone" and s.experiment_variant in ("a", "b")
    assert not s.experiment_variant_overridden
    ok = await stub.Feedback(
        pb.FeedbackRequest(tenant_id="acme", request_id="call-1", score=0.9, label="accuracy")
    )
    assert not ok.already_recorded and (ok.experiment, ok.variant) == ("tone", s.experiment_variant)
    again = await stub.Feedback(
        pb.FeedbackRequest(tenant_id="acme", request_id="call-1", score=0.9, label="accuracy")
    )
    assert again.already_recorded
    fb = pb.FeedbackRequest
    cases = [
        (fb(tenant_id="acme", request_id="call-1", score=0), "ALREADY_EXISTS", "FEEDBACK_EXISTS", ["score"]),
        (fb(tenant_id="globex", request_id="call-1", score=0), "NOT_FOUND", "CALL_NOT_FOUND", ["request_id"]),
        (fb(tenant_id="acme", request_id="nope", score=0), "NOT_FOUND", "CALL_NOT_FOUND", ["request_id"]),
        (
            pb.FeedbackRequest(tenant_id="acme", request_id="call-1", score=float("inf"), label="no spaces"),
            "INVALID_ARGUMENT",
            "INVALID_REQUEST",
            ["score", "label"],
        ),
        (pb.FeedbackRequest(tenant_id="", request_id="", score=1e10), "INVALID_ARGUMENT", "INVALID_REQUEST",
         ["tenant_id", "request_id", "score"]),
    ]  # fmt: skip
    for req, code, reason, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Feedback(req)
        err = await rich(refused.value)
        assert (err.code.name, err.reason, err.fields) == (code, reason, fields), req
    assert ledger_feedback(tmp_path / "usage.db")["call-1"] == (0.9, "accuracy", False)  # unchanged


async def test_a_credential_scores_and_reads_only_its_tenants(serve: Serve, tmp_path: Path) -> None:
    running = await serve(with_auth(config()), environ=TOKENS)
    stub = running.stub
    await stub.Generate(request(sticky("a", 1)[0], "globex-call"), timeout=10, metadata=bearer("ACME"))
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.Feedback(
            pb.FeedbackRequest(tenant_id="globex", request_id="x", score=1), metadata=bearer("ACME")
        )
    assert (await rich(denied.value)).reason == "TENANT_NOT_ALLOWED"
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.GetExperimentReport(report_request("globex"), metadata=bearer("ACME"))
    assert (await rich(denied.value)).reason == "TENANT_NOT_ALLOWED"
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await stub.GetExperimentReport(report_request(), metadata=bearer("GEN"))
    assert (await rich(denied.value)).reason == "METHOD_NOT_ALLOWED"
    # globex's credential cannot score acme's call even under its own tenant id: NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.Feedback(
            pb.FeedbackRequest(tenant_id="globex", request_id="globex-call", score=1),
            metadata=bearer("GLOBEX"),
        )
    assert (await rich(missing.value)).reason == "CALL_NOT_FOUND"
    globex = await stub.GetExperimentReport(report_request("globex"), metadata=bearer("GLOBEX"))
    assert [v.calls for v in globex.variants] == [0, 0]
    acme = await stub.GetExperimentReport(report_request(), metadata=bearer("ACME"))
    assert [(v.variant, v.calls) for v in acme.variants] == [("a", 1), ("b", 0)]


async def test_the_report_compares_variants_and_puts_no_nan_on_the_wire(serve: Serve, tmp_path: Path) -> None:
    running = await serve(config())
    stub = running.stub
    empty = await stub.GetExperimentReport(report_request())
    assert [v.variant for v in empty.variants] == ["a", "b"]  # the control first
    for v in empty.variants:
        assert v.calls == 0 and not v.HasField("error_rate") and not v.HasField("latency_p50")
        assert not v.HasField("cost_per_call_micros") and not v.feedback.HasField("mean")
    (c,) = empty.comparisons
    assert c.verdict == pb.EXPERIMENT_VERDICT_INSUFFICIENT_DATA and not c.HasField("welch_p")
    users = sticky("a", 3) + sticky("b", 3)
    for i, (variant, score) in enumerate(
        [("a", 0.2), ("a", 0.3), ("a", 0.25), ("b", 0.9), ("b", 0.95), ("b", 0.85)]
    ):
        reply = await stub.Generate(request(users[i], f"q{i}"), timeout=10)
        assert reply.summary.experiment_variant == variant and not reply.summary.experiment_variant_overridden
        await stub.Feedback(pb.FeedbackRequest(tenant_id="acme", request_id=f"q{i}", score=score))
    other = request("u9", "other-tenant")
    other.input.tenant_id = "globex"
    await stub.Generate(other, timeout=10)
    got = await stub.GetExperimentReport(report_request())
    assert got.metric == pb.EXPERIMENT_METRIC_FEEDBACK and got.min_samples == 2 and got.status == "running"
    a, b = got.variants
    assert (a.calls, b.calls) == (3, 3)  # globex's call is not in acme's report
    assert a.error_rate == 0 and a.HasField("latency_p99") and a.total_tokens > 0
    assert a.feedback.count == 3 and abs(a.feedback.mean - 0.25) < 1e-9
    assert a.feedback.ci_low < 0.25 < a.feedback.ci_high and a.feedback.confidence == 0.95
    (c,) = got.comparisons
    assert c.verdict == pb.EXPERIMENT_VERDICT_PROMOTE and (c.control_samples, c.variant_samples) == (3, 3)
    assert abs(c.difference - 0.65) < 1e-9 and c.welch_p < 0.05 and c.HasField("mann_whitney_p")
    assert c.cohens_d > 0
    assert ledger_feedback(tmp_path / "usage.db")["q0"] == (0.2, "", False)


async def test_bad_report_requests_name_the_field(serve: Serve) -> None:
    running = await serve(config())
    now = time.time()
    cases = [
        (report_request(experiment="nope"), "NOT_FOUND", "EXPERIMENT_NOT_FOUND", ["experiment"]),
        (report_request(experiment="Bad Name"), "INVALID_ARGUMENT", "INVALID_REQUEST", ["experiment"]),
        (
            report_request(tenant="", start_time=stamp(now), end_time=stamp(now - 1)),
            "INVALID_ARGUMENT",
            "INVALID_REQUEST",
            ["tenant_id", "end_time"],
        ),
        (pb.GetExperimentReportRequest(tenant_id="acme", experiment="tone"), "INVALID_ARGUMENT",
         "INVALID_REQUEST", ["start_time", "end_time"]),
    ]  # fmt: skip
    for req, code, reason, fields in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await running.stub.GetExperimentReport(req)
        err = await rich(refused.value)
        assert (err.code.name, err.reason, err.fields) == (code, reason, fields), req


async def test_without_a_ledger_both_rpcs_are_failed_precondition(serve: Serve) -> None:
    raw = config()
    running = await serve({**raw, "settings": {"telemetry": {"ledger": {"backend": "none"}}}})
    for call in (
        running.stub.Feedback(pb.FeedbackRequest(tenant_id="acme", request_id="r", score=1)),
        running.stub.GetExperimentReport(report_request()),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert (await rich(refused.value)).reason == "LEDGER_DISABLED"


async def test_the_variant_override_field(serve: Serve) -> None:
    raw = config()
    raw["policy"]["routes"]["other"] = {"deployments": ["one"]}
    running = await serve(raw)
    stub = running.stub
    forced = request("u0", "forced")
    forced.input.experiment_variant = "b"
    reply = await stub.Generate(forced, timeout=10)
    assert (reply.summary.experiment_variant, reply.summary.experiment_variant_overridden) == ("b", True)
    assert reply.summary.served_by.model == "echo-two"
    cases = [
        (("c", {}), ["input.experiment_variant"]),
        (("b", {"experiment_variant": "a"}), ["input.experiment_variant"]),
        (("-x", {}), ["input.experiment_variant"]),
    ]
    for (named, metadata), fields in cases:
        bad = request("u0", "bad", **metadata)
        bad.input.experiment_variant = named
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Generate(bad, timeout=10)
        err = await rich(refused.value)
        assert (err.code, err.fields) == (grpc.StatusCode.INVALID_ARGUMENT, fields)
    elsewhere = request("u0", "no-experiment")
    elsewhere.input.model = "other"
    elsewhere.input.experiment_variant = "b"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Generate(elsewhere, timeout=10)
    assert (await rich(refused.value)).fields == ["input.experiment_variant"]


async def test_the_cross_tenant_report_is_admin_only(serve: Serve) -> None:
    raw = with_auth(config())
    creds = raw["settings"]["auth"]["credentials"]
    creds.append({"name": "ops", "token": {"env": "OPS"}, "allow": ["AdminService"]})
    raw["settings"]["admin"] = {"mode": "listener"}
    running = await serve(raw, environ={**TOKENS, "OPS": "ops-token"})
    stub = running.stub
    await stub.Generate(request(sticky("a", 1)[0], "a-call"), timeout=10, metadata=bearer("ACME"))
    other = request(sticky("b", 1, tenant="globex")[0], "g-call")
    other.input.tenant_id = "globex"
    await stub.Generate(other, timeout=10, metadata=bearer("GLOBEX"))
    now = time.time()
    across = pb.GetExperimentReportAcrossTenantsRequest(
        experiment="tone", start_time=stamp(now - 600), end_time=stamp(now + 600)
    )
    got = await stub.GetExperimentReportAcrossTenants(
        across, metadata=[("authorization", "Bearer ops-token")]
    )
    assert [(v.variant, v.calls) for v in got.report.variants] == [("a", 1), ("b", 1)]
    for who, reason in (("ACME", "TENANT_NOT_ALLOWED"), ("GEN", "METHOD_NOT_ALLOWED")):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.GetExperimentReportAcrossTenants(across, metadata=bearer(who))
        assert (await rich(denied.value)).reason == reason
    across.ClearField("end_time")
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.GetExperimentReportAcrossTenants(across, metadata=[("authorization", "Bearer ops-token")])
    assert (await rich(bad.value)).fields == ["end_time"]


async def test_a_range_holding_too_many_calls_is_refused(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sidecar.api import experiments as api_experiments

    monkeypatch.setattr(api_experiments, "MAX_ROWS", 2)
    running = await serve(config())
    for i in range(2):
        await running.stub.Generate(request(f"u{i}", f"c{i}"), timeout=10)
    assert sum(v.calls for v in (await running.stub.GetExperimentReport(report_request())).variants) == 2
    await running.stub.Generate(request("u9", "c9"), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await running.stub.GetExperimentReport(report_request())
    err = await rich(refused.value)
    assert (err.code, err.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["start_time"])


async def test_one_feedback_scores_one_call_when_a_request_id_was_used_again(
    serve: Serve, tmp_path: Path
) -> None:
    """A request id can name several calls of a tenant (StreamGenerate never replays: a repeated id
    starts a new generation; a failed call's retry runs again under its id). One Feedback is one
    score: it goes on the latest of them only, and a repeat of it scores nothing more."""
    running = await serve(config())
    stub = running.stub
    again = request(sticky("a", 1)[0], "same-id")
    for _ in range(3):
        [e async for e in stub.StreamGenerate(pb_stream(again))]
    first = await stub.Feedback(pb.FeedbackRequest(tenant_id="acme", request_id="same-id", score=0.9))
    assert not first.already_recorded and first.variant == "a"
    repeat = await stub.Feedback(pb.FeedbackRequest(tenant_id="acme", request_id="same-id", score=0.9))
    assert repeat.already_recorded
    with sqlite3.connect(tmp_path / "usage.db") as conn:
        scores = conn.execute(
            "SELECT feedback_score FROM usage_records WHERE request_id = 'same-id' ORDER BY ts"
        ).fetchall()
    assert scores == [(None,), (None,), (0.9,)]
    got = await stub.GetExperimentReport(report_request())
    assert [(v.variant, v.calls, v.feedback.count) for v in got.variants] == [("a", 3, 1), ("b", 0, 0)]


def pb_stream(req: Any) -> Any:
    from sidecar._gen.orchestrator.v1 import generate_pb2 as gen

    return gen.StreamGenerateRequest(input=req.input)


def sticky(variant: str, count: int, tenant: str = "acme") -> list[str]:
    """Users the stable hash assigns to `variant` (no override)."""
    from sidecar.config.experiments import ExperimentConfig
    from sidecar.experiments.assign import assign
    from tests.integration.test_experiments import EXPERIMENT

    exp = ExperimentConfig.model_validate(EXPERIMENT)
    users = (f"user-{i}" for i in range(10_000))
    found = (u for u in users if assign("tone", exp, tenant=tenant, user=u, metadata={}).variant == variant)
    return [next(found) for _ in range(count)]


async def test_calls_whose_variant_the_caller_chose_are_not_in_the_report(serve: Serve) -> None:
    """A caller may force a variant for testing (input.experiment_variant, or the older metadata
    label), so its calls are not a random sample of anything: counted in the report, any caller
    allowed Generate could pick a variant for calls it then scored 1.0, and the operator's report
    (GetExperimentReportAcrossTenants, the CLI) said PROMOTE."""
    running = await serve(config())
    stub = running.stub
    assigned = [("a", u) for u in sticky("a", 3)] + [("b", u) for u in sticky("b", 3)]
    for i, (variant, u) in enumerate(assigned):
        reply = await stub.Generate(request(u, f"s{i}"), timeout=10)
        assert reply.summary.experiment_variant == variant and not reply.summary.experiment_variant_overridden
        await stub.Feedback(
            pb.FeedbackRequest(tenant_id="acme", request_id=f"s{i}", score=[0.5, 0.6, 0.7, 0.6, 0.5, 0.7][i])
        )
    for i in range(6):
        forced = request(f"qa-{i}", f"f{i}", **({"experiment_variant": "b"} if i % 2 else {}))
        forced.input.experiment_variant = "b"
        assert (await stub.Generate(forced, timeout=10)).summary.experiment_variant_overridden
        await stub.Feedback(pb.FeedbackRequest(tenant_id="acme", request_id=f"f{i}", score=1.0))
    got = await stub.GetExperimentReport(report_request())
    assert [(v.variant, v.calls, v.feedback.count) for v in got.variants] == [("a", 3, 3), ("b", 3, 3)]
    (c,) = got.comparisons
    assert c.verdict != pb.EXPERIMENT_VERDICT_PROMOTE and (c.control_samples, c.variant_samples) == (3, 3)


async def test_a_variant_whose_calls_were_all_refused_before_a_model_ran_is_reported(serve: Serve) -> None:
    """Calls refused before any model ran (here: over the tenant's quota) count in `calls` but not
    in the latencies: a variant with only such calls had no latency, and the report put that NaN
    in a Duration, which raised ValueError: the whole report failed INTERNAL."""
    raw = config()
    raw["policy"]["quota"] = {
        "limits": [{"name": "req", "metric": "requests", "window": "day", "limit": 1, "scope": "tenant"}]
    }
    running = await serve(raw)
    stub = running.stub
    await stub.Generate(request(sticky("a", 1)[0], "served"), timeout=10)
    for i, u in enumerate(sticky("b", 2)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Generate(request(u, f"refused-{i}"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    got = await stub.GetExperimentReport(report_request())
    a, b = got.variants
    assert (a.calls, b.calls, b.errors) == (1, 2, 0) and a.HasField("latency_p50")
    assert not b.HasField("error_rate") and not b.HasField("latency_p50") and not b.HasField("latency_p99")
    assert not b.HasField("cost_per_call_micros") and not b.HasField("tokens_per_call")
