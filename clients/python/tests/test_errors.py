"""Typed errors are decoded once, and a malformed or missing details payload never crashes."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from orchestrator_client import errors


def _status(*details: object) -> bytes:
    packed = []
    for d in details:
        a = any_pb2.Any()
        a.Pack(d)  # type: ignore[arg-type]
        packed.append(a)
    return status_pb2.Status(code=8, message="m", details=packed).SerializeToString()


def test_quota_error_with_every_detail() -> None:
    raw = _status(
        error_details_pb2.ErrorInfo(
            reason="RATE_LIMITED", domain="orchestrator.sidecar", metadata={"limit": "rpm"}
        ),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=3, nanos=500_000_000)),
        error_details_pb2.QuotaFailure(
            violations=[error_details_pb2.QuotaFailure.Violation(subject="s", description="d")]
        ),
    )
    err = errors.build(grpc.StatusCode.RESOURCE_EXHAUSTED, "m", raw)
    assert isinstance(err, errors.QuotaExceededError)
    assert (err.reason, err.metadata["limit"]) == ("RATE_LIMITED", "rpm")
    assert err.retry_delay == timedelta(seconds=3.5)
    assert err.quota_violations == (errors.QuotaViolation("s", "d"),)


def test_stream_interrupted_has_partial_usage() -> None:
    info = error_details_pb2.ErrorInfo(
        reason="STREAM_INTERRUPTED",
        metadata={"promptTokens": "7", "completionTokens": "2", "usageEstimated": "true"},
    )
    err = errors.build(grpc.StatusCode.UNAVAILABLE, "m", _status(info), deltas_received=1)
    assert isinstance(err, errors.StreamInterruptedError) and isinstance(err, errors.UnavailableError)
    assert err.partial_usage == errors.PartialUsage(7, 2, True)
    bad = error_details_pb2.ErrorInfo(reason="STREAM_INTERRUPTED", metadata={"promptTokens": "-1"})
    assert errors.build(grpc.StatusCode.UNAVAILABLE, "m", _status(bad)).partial_usage is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"\xff\xff\xff garbage",
        status_pb2.Status(
            details=[any_pb2.Any(type_url="type.googleapis.com/google.rpc.ErrorInfo", value=b"\xff\x01")]
        ).SerializeToString(),
        status_pb2.Status(
            details=[any_pb2.Any(type_url="type.googleapis.com/unknown.Thing", value=b"x")]
        ).SerializeToString(),
        _status(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=-5))),
        _status(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1, nanos=-1))),
    ],
)
def test_malformed_or_missing_details_give_an_empty_typed_error(raw: bytes | None) -> None:
    err = errors.build(grpc.StatusCode.INVALID_ARGUMENT, "bad", raw)
    assert isinstance(err, errors.InvalidRequestError)
    assert err.reason == "" and err.retry_delay is None and err.field_violations == ()


def test_bad_request_violations_and_unknown_codes() -> None:
    violation = error_details_pb2.BadRequest.FieldViolation(field="input.messages", description="required")
    raw = _status(error_details_pb2.BadRequest(field_violations=[violation]))
    err = errors.build(grpc.StatusCode.INVALID_ARGUMENT, "m", raw)
    assert err.field_violations == (errors.FieldViolation("input.messages", "required"),)
    assert isinstance(errors.build(grpc.StatusCode.DATA_LOSS, "m", None), errors.InternalError)


class _BrokenCall(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        raise RuntimeError("broken")

    def trailing_metadata(self) -> object:
        return [("grpc-status-details-bin", "not bytes"), ("other", b"x")]


def test_from_rpc_error_survives_a_broken_call_object() -> None:
    err = errors.from_rpc_error(_BrokenCall())
    assert isinstance(err, errors.UnavailableError) and err.message == ""


@pytest.mark.parametrize(
    ("code", "reason", "family"),
    [
        (grpc.StatusCode.ALREADY_EXISTS, "FEEDBACK_EXISTS", "ConflictError"),
        (grpc.StatusCode.ABORTED, "SWITCH_SUPERSEDED", "ConflictError"),
        (grpc.StatusCode.ABORTED, "ROTATION_IN_PROGRESS", "ConflictError"),
        (grpc.StatusCode.OUT_OF_RANGE, "", "InvalidRequestError"),
        (grpc.StatusCode.UNIMPLEMENTED, "", "InternalError"),
        (grpc.StatusCode.UNAVAILABLE, "SOME_FUTURE_REASON", "UnavailableError"),
    ],
)
def test_families_by_code_agree_with_the_other_clients(
    code: grpc.StatusCode, reason: str, family: str
) -> None:
    """A conflicting Feedback score or a superseded Switch is a conflict to handle (ConflictError, as
    in TypeScript and Java), not an InternalError to report as a bug."""
    err = errors.build(code, "m", _status(error_details_pb2.ErrorInfo(reason=reason)))
    assert type(err).__name__ == family and err.reason == reason


def test_a_stream_broken_after_a_delta_is_interrupted() -> None:
    """The connection broken after a delta (the sidecar killed: UNAVAILABLE with no details) is a
    StreamInterruptedError, not a plain UnavailableError a caller would retry; before any delta it
    is retryable, and a reason the sidecar gave keeps its own family."""
    broken = errors.build(grpc.StatusCode.UNAVAILABLE, "Socket closed", None, deltas_received=2)
    assert isinstance(broken, errors.StreamInterruptedError) and broken.partial_usage is None
    assert broken.deltas_received == 2
    before = errors.build(grpc.StatusCode.UNAVAILABLE, "Socket closed", None)
    assert type(before) is errors.UnavailableError
    schema = _status(error_details_pb2.ErrorInfo(reason="SCHEMA_VALIDATION_FAILED"))
    assert (
        type(errors.build(grpc.StatusCode.UNAVAILABLE, "m", schema, deltas_received=2))
        is errors.UnavailableError
    )


MALFORMED_COUNTS = ["²", "٣", "+7", "-0", "7.5", "1e3", "0x10", "", " 7", "99999999999999999999"]


@pytest.mark.parametrize("bad", MALFORMED_COUNTS)
def test_partial_usage_only_from_plain_digits(bad: str) -> None:
    """A token count is ASCII digits, nothing else (the same rule in every client): never a crash."""
    info = error_details_pb2.ErrorInfo(
        reason="STREAM_INTERRUPTED", metadata={"promptTokens": bad, "completionTokens": "2"}
    )
    err = errors.build(grpc.StatusCode.UNAVAILABLE, "m", _status(info), deltas_received=1)
    assert isinstance(err, errors.StreamInterruptedError) and err.partial_usage is None


@pytest.mark.parametrize("raw", [None, b"", _status(error_details_pb2.ErrorInfo(reason=""))])
def test_resource_exhausted_without_the_sidecars_reason_is_grpcs_own_limit(raw: bytes | None) -> None:
    """gRPC's own refusal (an oversized message, the server's concurrent-call limit) carries no
    ErrorInfo reason: a TransportLimitError, never the typed quota error."""
    err = errors.build(grpc.StatusCode.RESOURCE_EXHAUSTED, "received message larger than max", raw)
    assert type(err) is errors.TransportLimitError and not isinstance(err, errors.QuotaExceededError)
