"""Request builders for the ExperimentService and the request priority."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2

from ._gen.orchestrator.v1 import experiments_pb2, priority_pb2

Priority = int | str  # priority_pb2.PRIORITY_HIGH, or a name: "HIGH", "high", "PRIORITY_HIGH"


def priority_value(priority: Priority) -> int:
    """A Priority enum value from an enum value or a level's name (ValueError for anything else)."""
    if isinstance(priority, int):
        return priority
    name = priority.strip().upper()
    return int(priority_pb2.Priority.Value(name if name.startswith("PRIORITY_") else f"PRIORITY_{name}"))


def feedback_request(
    tenant_id: str, request_id: str, score: float, label: str = ""
) -> experiments_pb2.FeedbackRequest:
    return experiments_pb2.FeedbackRequest(
        tenant_id=tenant_id, request_id=request_id, score=score, label=label
    )


def report_request(
    tenant_id: str, experiment: str, start: datetime, end: datetime
) -> experiments_pb2.GetExperimentReportRequest:
    """`start` inclusive, `end` exclusive (timezone-aware datetimes; naive ones are taken as UTC)."""
    return experiments_pb2.GetExperimentReportRequest(
        tenant_id=tenant_id, experiment=experiment, start_time=_stamp(start), end_time=_stamp(end)
    )


def _stamp(at: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(at)
    return out
