"""The ledger's SQL, shared by the SQLite and PostgreSQL stores (they differ in placeholders and dates)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sidecar.ledger.record import GroupBy, UsageGroup, UsageQuery, UsageRecord
from sidecar.quota.limits import to_micros

COLUMNS = (
    "request_id", "tenant", "user_id", "persona", "route", "provider", "model",
    "tokens_in", "tokens_out", "tokens_cached", "cost_usd", "latency_seconds", "overhead_seconds",
    "outcome", "ts", "stream", "cache_hit", "metadata", "experiment", "variant",
    "variant_overridden", "cost_micros",
)  # fmt: skip
# Added after the first schema: existing tables get it (NOT NULL, '{}' for the old rows).
METADATA_COLUMN = "metadata TEXT NOT NULL DEFAULT '{}'"
# The call's cost as the integer micro-dollars its summary reported and the quota charged; GetUsage
# adds these up. Added after the first schema: old rows have none (NULL), their dollars are rounded.
COST_MICROS_COLUMN = "cost_micros BIGINT"
COST_MICROS = "COALESCE(cost_micros, CAST(ROUND(cost_usd * 1000000) AS BIGINT))"
# A record's cost_micros is at most this ($9e9, exact in a double): an upstream's absurd count at the
# highest price a deployment may have would not fit a BIGINT, and its batch would not be written.
MAX_COST_MICROS = 2**53


def create_table(real: str, integer: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE IF NOT EXISTS usage_records (
            request_id TEXT NOT NULL, tenant TEXT NOT NULL, user_id TEXT NOT NULL, persona TEXT NOT NULL,
            route TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
            tokens_in {integer} NOT NULL, tokens_out {integer} NOT NULL, tokens_cached {integer} NOT NULL,
            cost_usd {real} NOT NULL, latency_seconds {real} NOT NULL, overhead_seconds {real} NOT NULL,
            outcome TEXT NOT NULL, ts {real} NOT NULL,
            stream BOOLEAN NOT NULL, cache_hit BOOLEAN NOT NULL, {METADATA_COLUMN})""",
        "CREATE INDEX IF NOT EXISTS usage_records_tenant_ts ON usage_records (tenant, ts)",
        "CREATE INDEX IF NOT EXISTS usage_records_ts ON usage_records (ts)",
    )


def insert(placeholder: Callable[[int], str]) -> str:
    values = ", ".join(placeholder(i + 1) for i in range(len(COLUMNS)))
    return f"INSERT INTO usage_records ({', '.join(COLUMNS)}) VALUES ({values})"


def row(r: UsageRecord) -> tuple[Any, ...]:
    return (
        r.request_id, r.tenant, r.user, r.persona, r.route, r.provider, r.model, r.tokens_in, r.tokens_out,
        r.tokens_cached, r.cost_usd, r.latency_seconds, r.overhead_seconds, r.outcome, r.time, r.stream,
        r.cache_hit, json.dumps(dict(r.metadata), sort_keys=True, separators=(",", ":")),
        r.experiment, r.variant, r.variant_overridden, min(to_micros(r.cost_usd), MAX_COST_MICROS),
    )  # fmt: skip


def usage(q: UsageQuery, placeholder: Callable[[int], str], day: str) -> tuple[str, list[Any]]:
    """One query: the groups' sums and counts, and nearest-rank p50/p95/p99 by window functions."""
    key = {GroupBy.USER: "user_id", GroupBy.MODEL: "model", GroupBy.ROUTE: "route", GroupBy.DAY: day}[
        q.group_by
    ]
    args: list[Any] = [q.tenant, q.start, q.end]
    where = f"tenant = {placeholder(1)} AND ts >= {placeholder(2)} AND ts < {placeholder(3)}"
    if q.user is not None:
        args.append(q.user)
        where += f" AND user_id = {placeholder(4)}"
    pct = ", ".join(
        f"MIN(CASE WHEN rn >= {p} * n THEN latency_seconds END) AS p{int(p * 100)}" for p in (0.5, 0.95, 0.99)
    )
    sql = f"""
        WITH f AS (
            SELECT {key} AS k, cost_usd, {COST_MICROS} AS micros, tokens_in, tokens_out, tokens_cached,
                   outcome, latency_seconds,
                   ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY latency_seconds) AS rn,
                   COUNT(*) OVER (PARTITION BY {key}) AS n
            FROM usage_records WHERE {where})
        SELECT k, SUM(cost_usd), SUM(tokens_in), SUM(tokens_out), SUM(tokens_cached), COUNT(*),
               SUM(CASE WHEN outcome <> 'OK' THEN 1 ELSE 0 END), {pct}, SUM(micros)
        FROM f GROUP BY k ORDER BY k"""
    return sql, args


def groups(rows: Sequence[Sequence[Any]]) -> list[UsageGroup]:
    return [
        UsageGroup(
            key=str(r[0]),
            cost_usd=float(r[1]),
            tokens_in=int(r[2]),
            tokens_out=int(r[3]),
            tokens_cached=int(r[4]),
            requests=int(r[5]),
            errors=int(r[6]),
            latency_p50=float(r[7]),
            latency_p95=float(r[8]),
            latency_p99=float(r[9]),
            cost_micros=int(r[10]),
        )
        for r in rows
    ]
