"""GetUsage at the edge: validate the request, query the ledger, groups -> proto."""

from __future__ import annotations

import logging

from sidecar._gen.orchestrator.v1 import usage_pb2
from sidecar.api.convert import Violations, duration
from sidecar.api.paging import PageTokens
from sidecar.core.errors import SidecarError
from sidecar.ledger.record import GroupBy, LedgerDisabledError, LedgerUnavailableError, UsageGroup, UsageQuery
from sidecar.ledger.writer import LedgerWriter

_log = logging.getLogger("sidecar.api")
MAX_RANGE_SECONDS = 366 * 86_400
_GROUP_BY = {
    usage_pb2.USAGE_GROUP_BY_USER: GroupBy.USER,
    usage_pb2.USAGE_GROUP_BY_MODEL: GroupBy.MODEL,
    usage_pb2.USAGE_GROUP_BY_ROUTE: GroupBy.ROUTE,
    usage_pb2.USAGE_GROUP_BY_DAY: GroupBy.DAY,
}


def to_query(req: usage_pb2.GetUsageRequest) -> UsageQuery:
    """A UsageQuery from the request; every violation reported at once."""
    bad = Violations()
    bad.check_id("tenant_id", req.tenant_id, required=True)
    bad.check_id("user_id", req.user_id)
    start = bad.time("start_time", req.start_time, present=req.HasField("start_time"))
    end = bad.time("end_time", req.end_time, present=req.HasField("end_time"))
    if start is not None and end is not None:
        if end <= start:
            bad.add("end_time", "must be after start_time")
        elif end - start > MAX_RANGE_SECONDS:
            bad.add("end_time", "at most 366 days after start_time")
    group_by = _GROUP_BY.get(req.group_by)
    if group_by is None:
        bad.add("group_by", "one of USER, MODEL, ROUTE, DAY")
    bad.raise_if_any()
    assert group_by is not None and start is not None and end is not None
    return UsageQuery(tenant=req.tenant_id, start=start, end=end, group_by=group_by, user=req.user_id or None)


async def get_usage(
    ledger: LedgerWriter | None, req: usage_pb2.GetUsageRequest, pages: PageTokens
) -> usage_pb2.GetUsageResponse:
    at = pages.request(req)
    query = to_query(req)
    if ledger is None:
        raise LedgerDisabledError("this sidecar keeps no usage ledger (settings.telemetry.ledger.backend)")
    try:
        groups = await ledger.usage(query)
    except SidecarError:
        raise
    except Exception as exc:
        _log.error("ledger query failed", extra={"error": type(exc).__name__})
        raise LedgerUnavailableError("the usage ledger cannot be read now; retry later") from exc
    page, token = pages.page(groups, at)
    return usage_pb2.GetUsageResponse(groups=[_group(g) for g in page], next_page_token=token)


def _group(g: UsageGroup) -> usage_pb2.UsageGroup:
    return usage_pb2.UsageGroup(
        key=g.key,
        cost_micros=g.cost_micros,
        prompt_tokens=g.tokens_in,
        completion_tokens=g.tokens_out,
        cached_tokens=g.tokens_cached,
        requests=g.requests,
        errors=g.errors,
        latency_p50=duration(g.latency_p50),
        latency_p95=duration(g.latency_p95),
        latency_p99=duration(g.latency_p99),
    )
