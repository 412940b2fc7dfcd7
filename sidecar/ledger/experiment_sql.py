"""The ledger's experiment columns and tables, shared by the SQLite and PostgreSQL stores.

Each usage record carries the experiment and variant that served it, and the feedback its caller
gave later (score, label); `experiment_audit` records every promotion and stop. Ledgers from before
these columns get them on open (old rows: no experiment, no feedback)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sidecar.ledger.record import AuditEntry, ExperimentRow, FeedbackResult, FeedbackStatus
from sidecar.ledger.sql import COST_MICROS


def added_columns(real: str) -> tuple[tuple[str, str], ...]:
    """(name, definition) of the columns added after the first schema."""
    return (
        ("experiment", "experiment TEXT NOT NULL DEFAULT ''"),
        ("variant", "variant TEXT NOT NULL DEFAULT ''"),
        ("feedback_score", f"feedback_score {real}"),
        ("feedback_label", "feedback_label TEXT"),
        ("variant_overridden", "variant_overridden BOOLEAN NOT NULL DEFAULT FALSE"),
    )


def create_extras(real: str) -> tuple[str, ...]:
    return (
        "CREATE INDEX IF NOT EXISTS usage_records_experiment_ts ON usage_records (experiment, ts)",
        "CREATE INDEX IF NOT EXISTS usage_records_request ON usage_records (tenant, request_id)",
        f"""CREATE TABLE IF NOT EXISTS experiment_audit (
            ts {real} NOT NULL, experiment TEXT NOT NULL, change TEXT NOT NULL, source TEXT NOT NULL)""",
    )


def feedback(placeholder: Callable[[int], str], row: str) -> str:
    """Score a tenant's finished call unless it has a score already: the row count says whether
    this statement stored it (a call scored once; `feedback_of` tells a repeat from a conflict).

    A request id may name several calls (a stream's repeat runs again, so does a failed call's
    retry): the score goes on the latest of them only, and on none when one of them is scored, so
    one Feedback is one score in the reports. `row`: the store's row identity (SQLite `rowid`,
    PostgreSQL `ctid`); placeholders 3 and 4 are used twice."""
    p = placeholder
    calls = f"FROM usage_records WHERE tenant = {p(3)} AND request_id = {p(4)}"
    return (
        f"UPDATE usage_records SET feedback_score = {p(1)}, feedback_label = {p(2)} "
        f"WHERE {row} = (SELECT {row} {calls} ORDER BY ts DESC LIMIT 1) AND feedback_score IS NULL "
        f"AND NOT EXISTS (SELECT 1 {calls} AND feedback_score IS NOT NULL)"
    )


def feedback_of(placeholder: Callable[[int], str]) -> str:
    """The stored feedback and the variant of a tenant's call (no row: no such finished call)."""
    p = placeholder
    return (
        "SELECT feedback_score, feedback_label, experiment, variant FROM usage_records "
        f"WHERE tenant = {p(1)} AND request_id = {p(2)} ORDER BY feedback_score IS NULL LIMIT 1"
    )


def feedback_result(stored: bool, found: Sequence[Any] | None, score: float, label: str) -> FeedbackResult:
    """What a Feedback did, from the UPDATE's outcome and the call's row read after it."""
    if found is None:
        return FeedbackResult(FeedbackStatus.NOT_FOUND)
    experiment, variant = str(found[2]), str(found[3])
    if stored:
        return FeedbackResult(FeedbackStatus.STORED, experiment, variant)
    same = found[0] is not None and float(found[0]) == score and (found[1] or "") == label
    status = FeedbackStatus.REPEATED if same else FeedbackStatus.CONFLICT
    return FeedbackResult(status, experiment, variant)


def rows(
    placeholder: Callable[[int], str], tenant: str | None, limit: int | None
) -> tuple[str, tuple[Any, ...]]:
    """An experiment's calls in a time range: the query and the arguments after (experiment,
    start, end); `tenant`: of one tenant only; `limit`: at most that many rows. Calls whose variant
    the request chose (`variant_overridden`: testing) are left out: they are no random sample, and a
    caller could pick a variant for calls it then scored to steer the verdict."""
    p = placeholder
    extra: tuple[Any, ...] = ()
    text = (
        # each call's own micro-dollars (as its summary said and the quota charged), so a report's
        # cost is their sum, as GetUsage's is, not the dollars summed and rounded once
        f"SELECT variant, outcome, latency_seconds, tokens_in + tokens_out, {COST_MICROS}, feedback_score "
        f"FROM usage_records WHERE experiment = {p(1)} AND ts >= {p(2)} AND ts < {p(3)} "
        "AND NOT variant_overridden"
    )
    if tenant is not None:
        extra += (tenant,)
        text += f" AND tenant = {p(3 + len(extra))}"
    if limit is not None:
        extra += (limit,)
        text += f" LIMIT {p(3 + len(extra))}"
    return text, extra


def insert_audit(placeholder: Callable[[int], str]) -> str:
    values = ", ".join(placeholder(i) for i in range(1, 5))
    return f"INSERT INTO experiment_audit (ts, experiment, change, source) VALUES ({values})"


def audit_row(e: AuditEntry) -> tuple[Any, ...]:
    return (e.time, e.experiment, e.change, e.source)


def experiment_rows(found: Sequence[Sequence[Any]]) -> list[ExperimentRow]:
    return [
        ExperimentRow(
            variant=str(r[0]),
            ok=str(r[1]) == "OK",
            latency_seconds=float(r[2]),
            tokens=int(r[3]),
            cost_usd=int(r[4]) / 1_000_000,
            feedback=float(r[5]) if r[5] is not None else None,
            outcome=str(r[1]),
        )
        for r in found
    ]
