"""Request builders of the experiments and the priority option (no sidecar needed)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import orchestrator_client as oc
from orchestrator_client import priority_pb2
from orchestrator_client.experiments import priority_value, report_request
from orchestrator_client.messages import generate_request, stream_request


def test_a_priority_by_value_or_name() -> None:
    assert priority_value(priority_pb2.PRIORITY_URGENT) == priority_pb2.PRIORITY_URGENT
    for name in ("high", "HIGH", "PRIORITY_HIGH", " High "):
        assert priority_value(name) == priority_pb2.PRIORITY_HIGH
    with pytest.raises(ValueError):
        priority_value("highest")


def test_the_priority_option_sets_a_copy() -> None:
    original = oc.generate_pb2.GenerateRequest(input=oc.generation_input("hi", priority="low"))
    assert original.input.priority == priority_pb2.PRIORITY_LOW
    raised = generate_request(original, "critical")
    assert raised.input.priority == priority_pb2.PRIORITY_CRITICAL
    assert original.input.priority == priority_pb2.PRIORITY_LOW  # the caller's message is unchanged
    assert generate_request(original) is original
    assert stream_request("hi", priority_pb2.PRIORITY_HIGH).input.priority == priority_pb2.PRIORITY_HIGH


def test_a_report_request_from_datetimes() -> None:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    req = report_request("acme", "tone", start, datetime(2026, 1, 2, tzinfo=timezone.utc))
    assert (req.tenant_id, req.experiment, req.start_time.seconds) == ("acme", "tone", int(start.timestamp()))
    assert req.end_time.seconds - req.start_time.seconds == 86_400
