"""Policy evaluation: the limits that apply to a caller (tenant and tier), in store units.

Order of precedence, later wins by limit name: the tier's requests per minute per user
(`tier-requests-per-minute`), the global `quota.limits`, the tier's `limits`, the tenant's override
`quota.tenants[<tenant>].limits`. A limit with `enabled: false` removes the inherited one.
USD is counted in micro-dollars so every store sums integers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from sidecar.config.quota import (
    TIER_RPM_LIMIT,
    LimitConfig,
    Metric,
    QuotaPolicy,
    Scope,
    TierConfig,
    Window,
    requests_per_minute,
)

MICROS = 1_000_000
_PLAIN = re.compile(r"[A-Za-z0-9._:@-]*")
_REASONS = {
    "tokens": "TOKEN_QUOTA_EXCEEDED",
    "usd": "COST_QUOTA_EXCEEDED",
    "concurrency": "CONCURRENCY_LIMITED",
}


@dataclass(frozen=True, slots=True)
class Limit:
    name: str
    metric: Metric
    scope: Scope
    window: Window | None  # None for concurrency
    limit: int  # in store units (micro-dollars for usd)
    shadow: bool
    fail_closed: bool

    @property
    def reason(self) -> str:
        if self.metric == "requests":
            return "RATE_LIMITED" if self.window == "minute" else "REQUEST_QUOTA_EXCEEDED"
        return _REASONS[self.metric]

    def key(self, tenant: str, user: str) -> str:
        """The bucket's name within the tenant's hash slot. Ids are checked at the edge (letters, digits
        and ._:@-), so "|" separates unambiguously; anything else is percent-encoded."""
        owner = user if self.scope == "user" else tenant
        if not _PLAIN.fullmatch(owner):
            owner = quote(owner, safe="")
        return f"{self.name}|{self.scope}|{owner}"

    def subject(self, tenant: str, user: str) -> str:
        return f"tenant:{tenant}/user:{user}" if self.scope == "user" else f"tenant:{tenant}"

    def native(self, amount: int) -> float:
        """A store amount in the limit's own unit (US dollars for usd)."""
        return amount / MICROS if self.metric == "usd" else float(amount)


def to_units(metric: str, value: float) -> int:
    return to_micros(value) if metric == "usd" else round(value)


def to_micros(usd: float) -> int:
    """US dollars as integer micro-dollars, to the nearest: what a call is charged, and what its
    summary (`cost_micros`), the Embed answer and GetUsage report, so they add up the same."""
    return round(usd * MICROS)


def charged_usd(usd: float) -> float:
    """A call's cost as its summary reports it and the quota charges it (whole micro-dollars), so the
    cost counters add up to the callers' cost_micros and GetUsage, not to their unrounded prices."""
    return to_micros(usd) / MICROS


class LimitBook:
    """The resolved limits per (tenant, tier), computed once per pair from the immutable policy."""

    def __init__(self, policy: QuotaPolicy, tiers: Mapping[str, TierConfig]) -> None:
        self._policy, self._tiers = policy, tiers
        self._resolved: dict[tuple[str, str], tuple[Limit, ...]] = {}

    def for_caller(self, tenant: str, tier: str) -> tuple[Limit, ...]:
        found = self._resolved.get((tenant, tier))
        if found is None:
            found = self._resolved[(tenant, tier)] = self._resolve(tenant, tier)
            if len(self._resolved) > 100_000:  # tenants are many but bounded; never grow without end
                self._resolved.clear()
        return found

    def _resolve(self, tenant: str, tier_name: str) -> tuple[Limit, ...]:
        p, tier = self._policy, self._tiers[tier_name]
        merged: dict[str, LimitConfig] = {}
        rpm = requests_per_minute(tier_name, tier)
        if rpm is not None:
            merged[TIER_RPM_LIMIT] = LimitConfig(
                name=TIER_RPM_LIMIT, metric="requests", scope="user", window="minute", limit=rpm
            )
        override = p.tenants.get(tenant)
        for source in (p.limits, tier.limits, override.limits if override else []):
            merged.update((c.name, c) for c in source)
        return tuple(
            Limit(
                name=c.name,
                metric=c.metric,
                scope=c.scope,
                window=c.window,
                limit=to_units(c.metric, c.limit),
                shadow=c.shadow,
                fail_closed=(c.on_store_error or p.on_store_error) == "fail_closed",
            )
            for c in merged.values()
            if c.enabled
        )
