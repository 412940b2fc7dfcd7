"""Shared ledger checks: the same records and expected aggregates for every LedgerStore."""

from __future__ import annotations

import pytest

from sidecar.ledger.record import GroupBy, LedgerStore, UsageQuery, UsageRecord

DAY1 = 1_763_683_200.0  # 2025-11-21T00:00:00Z
DAY2 = DAY1 + 86_400


def _r(
    i: int, user: str, model: str, route: str, t: float, latency: float, outcome: str = "OK"
) -> UsageRecord:
    return UsageRecord(
        request_id=f"r{i}", tenant="acme", user=user, persona="", route=route, provider="openai", model=model,
        tokens_in=10 * i, tokens_out=i, tokens_cached=i % 2, cost_usd=0.25 * i, latency_seconds=latency,
        overhead_seconds=0.001, outcome=outcome, time=t,
    )  # fmt: skip


RECORDS = [
    *[_r(i, "alice", "gpt-a", "chat", DAY1 + i, latency=i / 100) for i in range(1, 101)],  # 0.01 .. 1.00
    _r(101, "bob", "gpt-b", "cheap", DAY2 + 5, latency=2.0, outcome="PROVIDERS_UNAVAILABLE"),
    _r(102, "bob", "gpt-a", "chat", DAY2 + 6, latency=3.0),
    UsageRecord(
        "x", "other-tenant", "alice", "", "chat", "openai", "gpt-a", 999, 999, 0, 99.0, 9, 0, "OK", DAY1
    ),
]


async def check_aggregates(store: LedgerStore) -> None:
    await store.write(RECORDS)
    by_user = {g.key: g for g in await store.usage(UsageQuery("acme", DAY1, DAY2 + 86_400, GroupBy.USER))}
    assert set(by_user) == {"alice", "bob"}
    alice, bob = by_user["alice"], by_user["bob"]
    assert alice.requests == 100 and alice.errors == 0
    assert alice.cost_usd == pytest.approx(sum(0.25 * i for i in range(1, 101)))
    assert (alice.tokens_in, alice.tokens_out, alice.tokens_cached) == (50500, 5050, 50)
    assert (alice.latency_p50, alice.latency_p95, alice.latency_p99) == (0.5, 0.95, 0.99)  # nearest rank
    assert (bob.requests, bob.errors, bob.latency_p50, bob.latency_p99) == (2, 1, 2.0, 3.0)

    by_model = {
        g.key: g.requests for g in await store.usage(UsageQuery("acme", DAY1, DAY2 + 86_400, GroupBy.MODEL))
    }
    assert by_model == {"gpt-a": 101, "gpt-b": 1}
    by_route = {
        g.key: g.errors for g in await store.usage(UsageQuery("acme", DAY1, DAY2 + 86_400, GroupBy.ROUTE))
    }
    assert by_route == {"chat": 0, "cheap": 1}
    by_day = {
        g.key: g.requests for g in await store.usage(UsageQuery("acme", DAY1, DAY2 + 86_400, GroupBy.DAY))
    }
    assert by_day == {"2025-11-21": 100, "2025-11-22": 2}

    only_bob = await store.usage(UsageQuery("acme", DAY1, DAY2 + 86_400, GroupBy.MODEL, user="bob"))
    assert {g.key: g.cost_usd for g in only_bob} == pytest.approx({"gpt-a": 0.25 * 102, "gpt-b": 0.25 * 101})
    first_day = await store.usage(UsageQuery("acme", DAY1, DAY2, GroupBy.USER))  # end is exclusive
    assert [(g.key, g.requests) for g in first_day] == [("alice", 100)]
    assert await store.usage(UsageQuery("nobody", DAY1, DAY2, GroupBy.USER)) == []

    assert await store.delete_before(DAY2, 60) == 60  # retention deletes a batch at a time
    assert await store.delete_before(DAY2, 60) == 41  # the rest of alice's 100 and the other tenant's one
    assert await store.delete_before(DAY2, 60) == 0
    assert [g.key for g in await store.usage(UsageQuery("acme", 0, DAY2 * 2, GroupBy.USER))] == ["bob"]


MICRO_COSTS = [1.4e-6, 1.4e-6, 1.4e-6, 6.15e-6]  # each call's summary says 1, 1, 1 and 6 micro-dollars


async def check_cost_micros(store: LedgerStore) -> None:
    """GetUsage's cost_micros is the sum of the calls' own cost_micros (what their summaries said and
    the quota charged), not their dollars summed and then rounded (10 here, for 9)."""
    from sidecar.api.convert import micros
    from sidecar.api.usage import _group

    await store.write(
        [
            UsageRecord(
                f"m{i}", "micro", "ann", "", "r", "openai", "m", 17, 6, 0, c, 0.1, 0.0, "OK", DAY1 + i
            )
            for i, c in enumerate(MICRO_COSTS)
        ]
    )
    (group,) = await store.usage(UsageQuery("micro", DAY1, DAY2, GroupBy.USER))
    assert _group(group).cost_micros == sum(micros(c) for c in MICRO_COSTS) == 9


async def check_experiment_cost_micros(store: LedgerStore) -> None:
    """An experiment report's cost is its calls' own micro-dollars summed, as GetUsage's is (9 here),
    not their dollars summed and rounded once (10)."""
    from sidecar.api.convert import micros
    from sidecar.config.experiments import ExperimentConfig
    from sidecar.experiments.report import build_report

    await store.write(
        [
            UsageRecord(
                f"x{i}",
                "micro",
                "ann",
                "",
                "r",
                "openai",
                "m",
                17,
                6,
                0,
                c,
                0.1,
                0.0,
                "OK",
                DAY1 + i,
                experiment="tone",
                variant="a",
            )
            for i, c in enumerate(MICRO_COSTS)
        ]
    )
    rows = await store.experiment_rows("tone", DAY1, DAY2)
    exp = ExperimentConfig.model_validate({"route": "r", "control": "a", "variants": {"a": {}, "b": {}}})
    (a, _) = build_report("tone", exp, rows).variants
    assert micros(a.cost_usd) == 9
