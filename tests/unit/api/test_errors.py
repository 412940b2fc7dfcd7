from __future__ import annotations

from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2

from sidecar.api.errors import DOMAIN, internal, to_rpc_status
from sidecar.core.errors import (
    FieldViolation,
    InvalidRequestError,
    ProvidersUnavailableError,
    RouteNotFoundError,
    StreamInterruptedError,
)


def unpack(details: list[any_pb2.Any]) -> dict[str, object]:
    types = {
        "ErrorInfo": error_details_pb2.ErrorInfo,
        "BadRequest": error_details_pb2.BadRequest,
        "RetryInfo": error_details_pb2.RetryInfo,
        "ResourceInfo": error_details_pb2.ResourceInfo,
        "RequestInfo": error_details_pb2.RequestInfo,
    }
    out: dict[str, object] = {}
    for detail in details:
        name = detail.TypeName().rsplit(".", 1)[-1]
        assert name not in out, "each detail type at most once"
        message = types[name]()
        detail.Unpack(message)
        out[name] = message
    return out


def test_invalid_request_has_bad_request_naming_fields() -> None:
    err = InvalidRequestError(
        [FieldViolation("messages", "required"), FieldViolation("config.top_p", "range")]
    )
    status = to_rpc_status(err)
    assert status.code == code_pb2.INVALID_ARGUMENT
    details = unpack(list(status.details))
    info = details["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "INVALID_REQUEST",
        DOMAIN,
        {"field": "messages"},
    )
    bad = details["BadRequest"]
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert [v.field for v in bad.field_violations] == ["messages", "config.top_p"]


def test_unavailable_has_retry_info() -> None:
    status = to_rpc_status(ProvidersUnavailableError("down", retry_after=1.5))
    assert status.code == code_pb2.UNAVAILABLE
    details = unpack(list(status.details))
    retry = details["RetryInfo"]
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToMilliseconds() == 1500
    info = details["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.metadata["retryAfterSeconds"] == "1.5"


def test_not_found_has_resource_info() -> None:
    details = unpack(list(to_rpc_status(RouteNotFoundError("gpt-9", ["echo"])).details))
    resource = details["ResourceInfo"]
    assert isinstance(resource, error_details_pb2.ResourceInfo)
    assert resource.resource_name == "gpt-9"


def test_internal_has_only_request_info() -> None:
    status = to_rpc_status(internal("req-42"))
    assert status.code == code_pb2.INTERNAL
    details = unpack(list(status.details))
    assert set(details) == {"ErrorInfo", "RequestInfo"}


def test_stream_interrupted_is_unavailable() -> None:
    status = to_rpc_status(StreamInterruptedError("cut", metadata={"completionTokens": "3"}))
    assert status.code == code_pb2.UNAVAILABLE
    info = unpack(list(status.details))["ErrorInfo"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert info.reason == "STREAM_INTERRUPTED" and info.metadata["completionTokens"] == "3"


def test_a_status_fits_the_trailer_limit_of_default_clients() -> None:
    """gRPC clients refuse trailers past 8 KiB (soft limit, probabilistically) and 16 KiB (hard) by
    default: a refused request with thousands of bad fields, or long texts in an error, must still
    reach the caller as itself. The first violations and the message's count of the rest stay."""
    from sidecar.api.errors import MAX_STATUS_BYTES, wire_size

    many = [FieldViolation(f"texts[{i}]", "empty text") for i in range(10_000)]
    long = [FieldViolation("x" * 5000, "y" * 5000)] * 3
    for err in (InvalidRequestError(many), InvalidRequestError(long)):
        status = to_rpc_status(err)
        size = wire_size(status)  # details + grpc-message
        assert size <= MAX_STATUS_BYTES
        bad = unpack(list(status.details))["BadRequest"]
        assert isinstance(bad, error_details_pb2.BadRequest)
        assert bad.field_violations[0].field[:6] == err.violations[0].field[:6]
    status = to_rpc_status(InvalidRequestError(many))
    assert "(and 9999 more)" in status.message
    huge = ProvidersUnavailableError("m" * 20_000, metadata={"candidates": "p," * 10_000})
    status = to_rpc_status(huge)
    assert wire_size(status) <= MAX_STATUS_BYTES
