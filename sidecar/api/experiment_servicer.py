"""orchestrator.v1.ExperimentService: feedback on a tenant's finished calls, and experiment reports
over that tenant's calls."""

from __future__ import annotations

from sidecar._gen.orchestrator.v1 import experiments_pb2 as pb
from sidecar.api import experiments as api_experiments
from sidecar.api.gate import Context, Gate, rpc_failure
from sidecar.experiments.book import ExperimentBook
from sidecar.ledger.writer import LedgerWriter


class ExperimentServicer:
    """Implements orchestrator.v1.ExperimentService (registered by the generated adder)."""

    def __init__(self, *, gate: Gate, ledger: LedgerWriter | None, book: ExperimentBook) -> None:
        self._gate, self._ledger, self._book = gate, ledger, book

    async def Feedback(self, request: pb.FeedbackRequest, context: Context) -> pb.FeedbackResponse:
        await self._gate.admit(context, "Feedback", request.tenant_id)
        try:
            return await api_experiments.feedback(self._ledger, request)
        except Exception as exc:
            await rpc_failure(context, exc, "Feedback")

    async def GetExperimentReport(
        self, request: pb.GetExperimentReportRequest, context: Context
    ) -> pb.GetExperimentReportResponse:
        await self._gate.admit(context, "GetExperimentReport", request.tenant_id)
        try:
            return await api_experiments.report(self._ledger, self._book, request)
        except Exception as exc:
            await rpc_failure(context, exc, "GetExperimentReport")
