"""Experiments through the real server: sticky assignment to variants, their deployments and prompts,
the ledger's experiment columns, feedback, the report, a reload with its audit trail; and the
experiment columns on a real PostgreSQL (migrated on open)."""

from __future__ import annotations

import copy
import dataclasses
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.config.experiments import ExperimentConfig
from sidecar.core.clock import SystemClock
from sidecar.core.errors import InvalidRequestError
from sidecar.experiments.feedback import Feedback, FeedbackTargetNotFoundError, record_feedback
from sidecar.experiments.report import Verdict, build_report
from sidecar.ledger.postgres import PostgresLedger
from sidecar.ledger.record import FeedbackStatus, UsageRecord
from sidecar.ledger.sqlite import SqliteLedger
from tests.conftest import make_config, user
from tests.integration.test_ledger import fresh_database
from tests.support.api import generate_request, text_of

pytestmark = pytest.mark.integration
Serve = Callable[..., Any]

EXPERIMENT = {
    "route": "chat",
    "control": "a",
    "variants": {
        "a": {"weight": 1, "deployments": ["one"]},
        "b": {"weight": 1, "deployments": ["two"], "system_prompt": "Be brief.", "params": {"max_tokens": 7}},
    },
    "min_samples": 2,
}


def config(**exp: Any) -> dict[str, Any]:
    return {
        "policy": {
            "default_route": "chat",
            "deployments": {
                "one": {"provider": "echo", "model": "echo-one"},
                "two": {"provider": "echo", "model": "echo-two"},
            },
            "routes": {"chat": {"deployments": ["one", "two"]}},
            "experiments": {"tone": copy.deepcopy({**EXPERIMENT, **exp})},  # callers change their copy
        }
    }


def request(user_id: str, rid: str, **metadata: str) -> gen.GenerateRequest:
    return generate_request(
        messages=[user("hi")], tenant_id="acme", user_id=user_id, request_id=rid, metadata=metadata
    )


def ledger_rows(path: Path) -> dict[str, tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute("SELECT request_id, experiment, variant, model FROM usage_records").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in found}


async def test_variants_are_sticky_served_and_recorded(serve: Serve, tmp_path: Path) -> None:
    running = await serve(config())
    for i in range(12):
        for again in range(2):
            assert text_of(await running.stub.Generate(request(f"u{i}", f"r{i}-{again}"), timeout=10))
    forced = await running.stub.Generate(request("u0", "forced", experiment_variant="b"), timeout=10)
    assert text_of(forced)
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await running.stub.Generate(request("u0", "bad", experiment_variant="c"), timeout=10)
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    await running.sidecar.deps.telemetry.ledger.flush()
    rows = ledger_rows(tmp_path / "usage.db")
    for i in range(12):
        first, second = rows[f"r{i}-0"], rows[f"r{i}-1"]
        assert first == second  # sticky per (tenant, user)
        experiment, variant, model = first
        assert experiment == "tone" and model == {"a": "echo-one", "b": "echo-two"}[variant]
    assert {rows[f"r{i}-0"][1] for i in range(12)} == {"a", "b"}
    assert rows["forced"][1:] == ("b", "echo-two")


async def test_feedback_report_and_reload_audit(serve: Serve, tmp_path: Path) -> None:
    running = await serve(config())
    from tests.integration.test_experiment_service import sticky

    users = sticky("a", 3) + sticky("b", 3)
    for i, variant in enumerate(["a", "a", "a", "b", "b", "b"]):
        reply = await running.stub.Generate(request(users[i], f"q{i}"), timeout=10)
        assert reply.summary.experiment_variant == variant
    ledger = running.sidecar.deps.telemetry.ledger
    await ledger.flush()
    store = ledger.store
    for i, score in enumerate([0.2, 0.3, 0.25, 0.9, 0.95, 0.85]):
        await record_feedback(store, Feedback("acme", f"q{i}", score, "accuracy"))
    with pytest.raises(FeedbackTargetNotFoundError):
        await record_feedback(store, Feedback("other-tenant", "q0", 1.0))  # tenant-scoped
    with pytest.raises(InvalidRequestError) as bad:
        await record_feedback(store, Feedback("acme", "q0", float("nan"), "no spaces allowed"))
    assert [v.field for v in bad.value.violations] == ["score", "label"]
    rows = await store.experiment_rows("tone", time.time() - 60, time.time() + 60)
    exp = ExperimentConfig.model_validate(EXPERIMENT)
    report = build_report("tone", exp, rows)
    assert [(v.variant, v.calls, v.feedback.n) for v in report.variants] == [("a", 3, 3), ("b", 3, 3)]
    assert report.verdicts[0].verdict is Verdict.PROMOTE
    # promote b without a restart: every call goes to b, and the change is in the audit trail
    (tmp_path / "r").mkdir()
    reloaded = make_config(
        {"settings": {"listen": {"address": "127.0.0.1:0"}}, **config(promoted="b")}, None, tmp_path / "r"
    )
    await running.sidecar.reload(reloaded, source="test")
    reply = await running.stub.Generate(request("u0", "after"), timeout=10)
    assert text_of(reply)
    await ledger.flush()
    assert ledger_rows(tmp_path / "usage.db")["after"][1] == "b"
    with sqlite3.connect(tmp_path / "usage.db") as conn:
        audit = conn.execute("SELECT experiment, change, source FROM experiment_audit").fetchall()
    assert audit == [  # the start is in the trail too: a restart with another config is a change
        ("tone", "in force at start: status running, promoted -, weights a=1,b=1", "start"),
        ("tone", "promoted - -> b", "test"),
    ]


def _record(rid: str, variant: str, tenant: str = "acme") -> UsageRecord:
    return UsageRecord(
        rid, tenant, "u", "", "chat", "echo", "m", 1, 2, 0, 0.5, 0.1, 0.0, "OK", 1000.0,
        experiment="tone", variant=variant,
    )  # fmt: skip


async def test_experiment_columns_on_postgres(postgres_url: str) -> None:
    store = PostgresLedger(await fresh_database(postgres_url), clock=SystemClock(), timeout=10)
    await store.open()
    try:
        await store.write([_record("p1", "a"), _record("p2", "b"), _record("p3", "a", tenant="other")])
        stored = await store.feedback("acme", "p2", 0.75, "")
        assert (stored.status, stored.experiment, stored.variant) == (FeedbackStatus.STORED, "tone", "b")
        assert (await store.feedback("acme", "p2", 0.75, "")).status is FeedbackStatus.REPEATED
        assert (await store.feedback("acme", "p2", 0.5, "")).status is FeedbackStatus.CONFLICT
        assert (await store.feedback("acme", "nope", 0.75, "")).status is FeedbackStatus.NOT_FOUND
        assert (await store.feedback("acme", "p3", 0.75, "")).status is FeedbackStatus.NOT_FOUND
        rows = sorted(await store.experiment_rows("tone", 0, 2000, "acme"), key=lambda r: r.variant)
        assert [(r.variant, r.feedback, r.tokens) for r in rows] == [("a", None, 3), ("b", 0.75, 3)]
        assert len(await store.experiment_rows("tone", 0, 2000)) == 3  # every tenant's (the CLI)
        assert len(await store.experiment_rows("tone", 0, 2000, limit=2)) == 2
        assert len(await store.experiment_rows("tone", 0, 2000, "acme", limit=1)) == 1
        again = [dataclasses.replace(_record("p4", v), time=1000.0 + i) for i, v in enumerate("aba")]
        await store.write(again)  # one request id, three calls: one Feedback scores the latest only
        assert (await store.feedback("acme", "p4", 0.5, "")).variant == "a"
        assert (await store.feedback("acme", "p4", 0.5, "")).status is FeedbackStatus.REPEATED
        latest = sorted(
            (r.feedback for r in await store.experiment_rows("tone", 1000.5, 2000, "acme")), key=str
        )
        assert latest == [0.5, None]
    finally:
        await store.aclose()


async def test_an_old_sqlite_ledger_gets_the_experiment_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # the schema before experiments (and before metadata)
        conn.execute(
            """CREATE TABLE usage_records (request_id TEXT NOT NULL, tenant TEXT NOT NULL,
            user_id TEXT NOT NULL, persona TEXT NOT NULL, route TEXT NOT NULL, provider TEXT NOT NULL,
            model TEXT NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,
            tokens_cached INTEGER NOT NULL, cost_usd REAL NOT NULL, latency_seconds REAL NOT NULL,
            overhead_seconds REAL NOT NULL, outcome TEXT NOT NULL, ts REAL NOT NULL,
            stream BOOLEAN NOT NULL, cache_hit BOOLEAN NOT NULL)"""
        )
        conn.execute(
            "INSERT INTO usage_records VALUES "
            "('old','acme','u','','chat','echo','m',1,1,0,0,0.1,0,'OK',1000,0,0)"
        )
    store = SqliteLedger(path)
    await store.open()
    try:
        await store.write([_record("new", "b")])
        rows = await store.experiment_rows("tone", 0, 2000)
        assert [r.variant for r in rows] == ["b"]
        assert len(await store.experiment_rows("tone", 0, 2000, "acme", limit=5)) == 1
        assert (await store.feedback("acme", "old", 1.0, "")).status is FeedbackStatus.STORED
    finally:
        await store.aclose()


async def test_a_reload_naming_what_the_running_policy_lacks_is_refused(serve: Serve, tmp_path: Path) -> None:
    running = await serve(config())
    raw = config()
    raw["policy"]["deployments"]["three"] = {"provider": "echo", "model": "echo-three"}
    raw["policy"]["routes"]["chat"]["deployments"].append("three")
    raw["policy"]["experiments"]["tone"]["variants"]["b"]["deployments"] = ["three"]
    (tmp_path / "r").mkdir()
    reloaded = make_config({"settings": {"listen": {"address": "127.0.0.1:0"}}, **raw}, None, tmp_path / "r")
    problems = await running.sidecar.reload(reloaded, source="test")
    assert problems == [
        "experiments.tone.variants.b.deployments: 'three' is not a deployment of route 'chat'"
    ]
    reply = await running.stub.Generate(request("u0", "still", experiment_variant="b"), timeout=10)
    assert text_of(reply)
    await running.sidecar.deps.telemetry.ledger.flush()
    assert ledger_rows(tmp_path / "usage.db")["still"][1:] == ("b", "echo-two")


async def test_a_reload_says_which_changes_only_a_restart_applies(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGHUP applies experiments and answer policies; a changed route or setting was dropped
    without a word, so an operator took the reload for applied."""
    running = await serve(config())
    cfg = running.sidecar.cfg
    with caplog.at_level("WARNING", logger="sidecar"):
        await running.sidecar.reload(cfg.model_copy(), source="test")
        assert not [r for r in caplog.records if "restart to apply" in r.getMessage()]
        changed = cfg.model_copy(
            update={
                "settings": cfg.settings.model_copy(update={"log_level": "DEBUG"}),
                "policy": cfg.policy.model_copy(update={"default_route": "other"}),
            }
        )
        await running.sidecar.reload(changed, source="test")
    [said] = [r for r in caplog.records if "restart to apply" in r.getMessage()]
    assert said.sections == "settings.log_level, policy.default_route"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("exp", "fixed", "other"), [({"status": "stopped"}, "a", "b"), ({"promoted": "b"}, "b", "a")]
)
async def test_a_stopped_or_promoted_experiment_refuses_a_forced_other_variant(
    serve: Serve, exp: dict[str, Any], fixed: str, other: str
) -> None:
    """The operator's stop (or promotion) holds for every call: a request forcing another variant is
    INVALID_ARGUMENT naming the field it used, and nothing is served by that variant."""
    running = await serve(config(**exp))
    typed = generate_request(
        messages=[user("hi")], tenant_id="acme", user_id="u0", request_id="t", experiment_variant=other
    )
    for req, field in (
        (typed, "input.experiment_variant"),
        (request("u0", "m", experiment_variant=other), "metadata[experiment_variant]"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await running.stub.Generate(req, timeout=10)
        assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert field in (bad.value.details() or "")
    same = await running.stub.Generate(request("u0", "same", experiment_variant=fixed), timeout=10)
    assert (same.summary.experiment_variant, same.summary.experiment_variant_overridden) == (fixed, True)
