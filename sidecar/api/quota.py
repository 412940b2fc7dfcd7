"""GetQuota at the edge: validate the request and find the tier; limit states -> QuotaLimit."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from sidecar._gen.orchestrator.v1 import quota_pb2
from sidecar.api.convert import ID, Tiers
from sidecar.config.schema import RequestLimits
from sidecar.config.tiers import UnknownTier, resolve_tier
from sidecar.core.errors import FieldViolation, InvalidRequestError
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
_ID_RULE = "at most 128 of letters, digits and ._:@- starting with a letter or digit"


def quota_caller(req: quota_pb2.GetQuotaRequest, tiers: Tiers, limits: RequestLimits) -> tuple[str, str, str]:
    """(tenant, user, tier) of a GetQuota request, or InvalidRequestError naming every bad field."""
    bad: list[FieldViolation] = []
    if not req.tenant_id:
        bad.append(FieldViolation("tenant_id", "required"))
    elif not ID.fullmatch(req.tenant_id):
        bad.append(FieldViolation("tenant_id", _ID_RULE))
    if req.user_id and not ID.fullmatch(req.user_id):
        bad.append(FieldViolation("user_id", _ID_RULE))
    too_big = any(
        len(k) > limits.max_metadata_key_chars or len(v) > limits.max_metadata_value_chars
        for k, v in req.metadata.items()
    )
    if len(req.metadata) > limits.max_metadata_entries or too_big:
        bad.append(FieldViolation("metadata", "within the configured entry count and sizes"))
    tier = ""
    try:
        tier = resolve_tier(
            tiers.assignment, tiers.names, tenant=req.tenant_id, user=req.user_id, metadata=req.metadata
        )
    except UnknownTier as unknown:
        bad.append(
            FieldViolation(unknown.field, f"a tier this sidecar defines: one of {', '.join(unknown.known)}")
        )
    if bad:
        raise InvalidRequestError(bad)
    return req.tenant_id, req.user_id, tier


def to_response(tier: str, states: list[LimitState]) -> quota_pb2.GetQuotaResponse:
    return quota_pb2.GetQuotaResponse(tier=tier, limits=[_limit(s) for s in states])


def _limit(s: LimitState) -> quota_pb2.QuotaLimit:
    lim = s.limit
    out = quota_pb2.QuotaLimit(
        name=lim.name,
        metric=_METRICS[lim.metric],
        scope=_SCOPES[lim.scope],
        window=_WINDOWS[lim.window],
        limit=lim.native(lim.limit),
        used=s.used,
        reserved=s.reserved,
        remaining=s.remaining,
        shadow=lim.shadow,
    )
    if s.reset_at is not None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromNanoseconds(int(s.reset_at * 1e9))
        out.reset_time.CopyFrom(stamp)
    return out
