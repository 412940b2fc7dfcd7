"""Timestamps in requests (GetUsage, the experiment reports): one protobuf cannot convert (nanos out of
0..999,999,999, seconds outside years 1..9999) is INVALID_ARGUMENT naming the field; it was a
ValueError from Timestamp.ToNanoseconds, answered INTERNAL with a traceback in the log."""

from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2

from sidecar._gen.orchestrator.v1 import experiments_pb2, usage_pb2
from sidecar.api.experiments import _validated
from sidecar.api.usage import to_query
from sidecar.core.errors import InvalidRequestError

NOW = 1_780_000_000
GOOD = timestamp_pb2.Timestamp(seconds=NOW)
BAD = [
    ("negative nanos", timestamp_pb2.Timestamp(seconds=NOW, nanos=-1)),
    ("a second of nanos", timestamp_pb2.Timestamp(seconds=NOW, nanos=1_000_000_000)),
    ("before year 1", timestamp_pb2.Timestamp(seconds=-(2**62))),
    ("after year 9999", timestamp_pb2.Timestamp(seconds=2**62)),
]


def fields(err: InvalidRequestError) -> list[str]:
    return [v.field for v in err.violations]


@pytest.mark.parametrize("case,stamp", BAD, ids=[b[0] for b in BAD])
def test_usage_names_a_timestamp_protobuf_cannot_convert(case: str, stamp: timestamp_pb2.Timestamp) -> None:
    for start, end, field in ((stamp, GOOD, "start_time"), (GOOD, stamp, "end_time")):
        req = usage_pb2.GetUsageRequest(
            tenant_id="acme", start_time=start, end_time=end, group_by=usage_pb2.USAGE_GROUP_BY_USER
        )
        with pytest.raises(InvalidRequestError) as info:
            to_query(req)
        assert fields(info.value) == [field]


@pytest.mark.parametrize("case,stamp", BAD, ids=[b[0] for b in BAD])
def test_experiment_reports_name_a_timestamp_protobuf_cannot_convert(
    case: str, stamp: timestamp_pb2.Timestamp
) -> None:
    req = experiments_pb2.GetExperimentReportAcrossTenantsRequest(
        experiment="tone", start_time=stamp, end_time=GOOD
    )
    with pytest.raises(InvalidRequestError) as info:
        _validated(req, None)
    assert fields(info.value) == ["start_time"]


def test_valid_times_keep_their_nanos_and_every_violation_is_listed() -> None:
    start = timestamp_pb2.Timestamp(seconds=NOW, nanos=500_000_000)
    req = experiments_pb2.GetExperimentReportRequest(
        tenant_id="acme",
        experiment="tone",
        start_time=start,
        end_time=timestamp_pb2.Timestamp(seconds=NOW + 2),
    )
    assert _validated(req, "acme") == (NOW + 0.5, NOW + 2)
    req = usage_pb2.GetUsageRequest(tenant_id="a b", start_time=GOOD, end_time=GOOD)
    with pytest.raises(InvalidRequestError) as info:
        to_query(req)
    assert fields(info.value) == ["tenant_id", "end_time", "group_by"]
