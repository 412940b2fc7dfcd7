"""orchestrator.v1.AdminService: tenant-wide operations (key rotation, key listings, usage)."""

from __future__ import annotations

from sidecar._gen.orchestrator.v1 import experiments_pb2, keys_pb2, usage_pb2
from sidecar.api import experiments as api_experiments
from sidecar.api import keys as api_keys
from sidecar.api import usage as api_usage
from sidecar.api.gate import Context, Gate, rpc_failure
from sidecar.api.key_servicer import enabled
from sidecar.api.paging import PageTokens
from sidecar.authz.policy import ALL_TENANTS
from sidecar.experiments.book import ExperimentBook
from sidecar.keys.service import KeyService
from sidecar.ledger.writer import LedgerWriter


class AdminServicer:
    """Implements orchestrator.v1.AdminService (registered by the generated adder)."""

    def __init__(
        self,
        *,
        gate: Gate,
        keys: KeyService | None,
        ledger: LedgerWriter | None,
        pages: PageTokens,
        experiments: ExperimentBook,
    ) -> None:
        self._gate, self._keys, self._ledger, self._pages = gate, keys, ledger, pages
        self._experiments = experiments

    async def RotateKeys(
        self, request: keys_pb2.RotateKeysRequest, context: Context
    ) -> keys_pb2.RotateKeysResponse:
        await self._gate.admit(context, "RotateKeys", ALL_TENANTS)
        try:
            rotated, failed = await enabled(self._keys).rotate()
        except Exception as exc:
            await rpc_failure(context, exc, "RotateKeys")
        return keys_pb2.RotateKeysResponse(rotated=rotated, failed=failed)

    async def ListTenantKeys(
        self, request: keys_pb2.ListTenantKeysRequest, context: Context
    ) -> keys_pb2.ListTenantKeysResponse:
        await self._gate.admit(context, "ListTenantKeys", request.tenant_id)
        try:
            keys = enabled(self._keys)
            at = self._pages.request(request)
            records = await keys.list(*api_keys.list_owner(request, user_required=False))
        except Exception as exc:
            await rpc_failure(context, exc, "ListTenantKeys")
        page, token = self._pages.page(records, at)
        return keys_pb2.ListTenantKeysResponse(
            keys=[api_keys.to_key_info(r) for r in page], next_page_token=token
        )

    async def GetUsage(
        self, request: usage_pb2.GetUsageRequest, context: Context
    ) -> usage_pb2.GetUsageResponse:
        await self._gate.admit(context, "GetUsage", request.tenant_id)
        try:
            return await api_usage.get_usage(self._ledger, request, self._pages)
        except Exception as exc:
            await rpc_failure(context, exc, "GetUsage")

    async def GetExperimentReportAcrossTenants(
        self, request: experiments_pb2.GetExperimentReportAcrossTenantsRequest, context: Context
    ) -> experiments_pb2.GetExperimentReportAcrossTenantsResponse:
        """Every tenant's calls: only a credential allowed every tenant."""
        await self._gate.admit(context, "GetExperimentReportAcrossTenants", ALL_TENANTS)
        try:
            report = await api_experiments.report(self._ledger, self._experiments, request)
        except Exception as exc:
            await rpc_failure(context, exc, "GetExperimentReportAcrossTenants")
        return experiments_pb2.GetExperimentReportAcrossTenantsResponse(report=report)
