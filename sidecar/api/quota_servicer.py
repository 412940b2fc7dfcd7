"""orchestrator.v1.QuotaService: the caller's limits and what is left of them."""

from __future__ import annotations

from sidecar._gen.orchestrator.v1 import quota_pb2
from sidecar.api import quota as api_quota
from sidecar.api.convert import Tiers
from sidecar.api.gate import Context, Gate, rpc_failure
from sidecar.config.schema import RequestLimits
from sidecar.quota.service import QuotaService


class QuotaServicer:
    """Implements orchestrator.v1.QuotaService (registered by the generated adder)."""

    def __init__(
        self, *, gate: Gate, quota: QuotaService | None, tiers: Tiers, limits: RequestLimits
    ) -> None:
        self._gate, self._quota, self._tiers, self._limits = gate, quota, tiers, limits

    async def GetQuota(
        self, request: quota_pb2.GetQuotaRequest, context: Context
    ) -> quota_pb2.GetQuotaResponse:
        await self._gate.admit(context, "GetQuota", request.tenant_id)
        try:
            tenant, user, tier = api_quota.quota_caller(request, self._tiers, self._limits)
            states = [] if self._quota is None else await self._quota.snapshot(tenant, user, tier)
        except Exception as exc:
            await rpc_failure(context, exc, "GetQuota")
        return api_quota.to_response(tier, states)
