"""tests/contract/errors.yaml, generated from the protos' comments, replayed: every reason the API
names decodes to the family every client gives it; and the committed table is what the protos give."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import grpc
import pytest
import yaml
from conftest import CONTRACT
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from orchestrator_client import errors

FAMILIES: dict[str, type[errors.SidecarError]] = {
    "invalid_request": errors.InvalidRequestError,
    "authentication": errors.AuthenticationError,
    "permission_denied": errors.PermissionDeniedError,
    "not_found": errors.NotFoundError,
    "failed_precondition": errors.FailedPreconditionError,
    "quota_exceeded": errors.QuotaExceededError,
    "transport_limit": errors.TransportLimitError,
    "conflict": errors.ConflictError,
    "unavailable": errors.UnavailableError,
    "stream_interrupted": errors.StreamInterruptedError,
    "deadline_exceeded": errors.DeadlineExceededError,
    "cancelled": errors.CancelledError,
    "internal": errors.InternalError,
}
ROWS: list[dict[str, Any]] = yaml.safe_load((CONTRACT / "errors.yaml").read_text())["reasons"]


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['code']}-{r['reason'] or 'none'}" for r in ROWS])
def test_every_reason_decodes_to_its_family(row: dict[str, Any]) -> None:
    code = grpc.StatusCode[row["code"]]
    details = []
    if row["reason"]:
        packed = any_pb2.Any()
        packed.Pack(error_details_pb2.ErrorInfo(reason=row["reason"], domain="orchestrator.sidecar"))
        details.append(packed)
    raw = status_pb2.Status(code=code.value[0], message="m", details=details).SerializeToString()
    err = errors.build(code, "m", raw)
    assert type(err) is FAMILIES[row["family"]], (row, type(err).__name__)
    assert (err.code, err.reason) == (code, row["reason"])


def test_the_table_is_what_the_protos_give() -> None:
    run = subprocess.run(
        [sys.executable, str(CONTRACT / "errors_from_proto.py"), "--check"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
