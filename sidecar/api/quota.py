"""GetQuota at the edge: validate the request and find the tier; limit states -> QuotaLimit."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from sidecar._gen.orchestrator.v1 import quota_pb2
from sidecar.api.convert import Tiers, Violations, caller_tier, check_metadata
from sidecar.config.schema import RequestLimits
from sidecar.quota.limits import MICROS, Limit
from sidecar.quota.service import LimitState

_METRICS = {
    "requests": quota_pb2.QUOTA_METRIC_REQUESTS,
    "tokens": quota_pb2.QUOTA_METRIC_TOKENS,
    "usd": quota_pb2.QUOTA_METRIC_USD,
    "concurrency": quota_pb2.QUOTA_METRIC_CONCURRENCY,
}
_WINDOWS = {
    "minute": quota_pb2.QUOTA_WINDOW_MINUTE,
    "day": quota_pb2.QUOTA_WINDOW_DAY,
    "month": quota_pb2.QUOTA_WINDOW_MONTH,
    None: quota_pb2.QUOTA_WINDOW_CONCURRENT,
}
_SCOPES = {"tenant": quota_pb2.QUOTA_SCOPE_TENANT, "user": quota_pb2.QUOTA_SCOPE_USER}


def quota_caller(req: quota_pb2.GetQuotaRequest, tiers: Tiers, limits: RequestLimits) -> tuple[str, str, str]:
    """(tenant, user, tier) of a GetQuota request, or InvalidRequestError naming every bad field."""
    bad = Violations()
    bad.check_id("tenant_id", req.tenant_id, required=True)
    bad.check_id("user_id", req.user_id)
    check_metadata(req.metadata, limits, bad)
    tier = caller_tier(tiers, req.tenant_id, req.user_id, req.metadata, bad)
    bad.raise_if_any()
    return req.tenant_id, req.user_id, tier


def to_response(tier: str, states: list[LimitState]) -> quota_pb2.GetQuotaResponse:
    return quota_pb2.GetQuotaResponse(tier=tier, limits=[_limit(s) for s in states])


def _store_units(lim: Limit, native: float) -> int:
    """An amount in the limit's integer unit (micro-dollars for usd)."""
    return round(native * MICROS) if lim.metric == "usd" else round(native)


def _limit(s: LimitState) -> quota_pb2.QuotaLimit:
    lim = s.limit
    out = quota_pb2.QuotaLimit(
        name=lim.name,
        metric=_METRICS[lim.metric],
        scope=_SCOPES[lim.scope],
        window=_WINDOWS[lim.window],
        limit=lim.limit,
        used=_store_units(lim, s.used),
        reserved=_store_units(lim, s.reserved),
        remaining=_store_units(lim, s.remaining),
        shadow=lim.shadow,
    )
    if s.reset_at is not None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(int(s.reset_at * 1e9))
        out.reset_time.CopyFrom(stamp)
    return out
