"""The one place a SidecarError becomes a gRPC status (google.rpc.Status with rich details)."""

from __future__ import annotations

from typing import NoReturn
from urllib.parse import quote

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from sidecar.core.errors import SidecarError

DOMAIN = "orchestrator.sidecar"
# gRPC clients refuse trailers past 8 KiB (a soft limit, probabilistically) and 16 KiB by default,
# and the caller then sees RESOURCE_EXHAUSTED instead of its error: the status (details and the
# message, which goes out twice) is kept well under the soft limit with the other trailers.
MAX_STATUS_BYTES = 6 * 1024
MAX_VIOLATIONS = 20  # the first ones; the message counts the rest
MAX_MESSAGE_BYTES = 768  # UTF-8; grpc-message carries it percent-encoded (up to 3 bytes each)
MAX_VALUE_CHARS = 512  # each metadata value; all of them cut to 64 when the status is still too large
MAX_FIELD_CHARS = 256  # each violation's field path and description
_BAD_REQUEST_BYTES = 2 * 1024


def to_rpc_status(err: SidecarError) -> status_pb2.Status:
    """The status of an error, bounded in size (MAX_STATUS_BYTES) whatever the error holds."""
    metadata = {k: _cut(v, MAX_VALUE_CHARS) for k, v in err.metadata.items()}
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=metadata)
    details: list[Message] = [info]
    if err.violations:
        details.append(_bad_request(err))
    if err.quota_violations:
        details.append(
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(subject=v.subject, description=v.description)
                    for v in err.quota_violations
                ]
            )
        )
    if err.retry_after is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(err.retry_after * 1e9))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    if err.resource is not None:
        r = err.resource
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=r.resource_type,
                resource_name=r.resource_name,
                description=r.description,
            )
        )
    if err.reason == "INTERNAL" and "requestId" in err.metadata:
        details.append(error_details_pb2.RequestInfo(request_id=err.metadata["requestId"]))
    status = status_pb2.Status(
        code=code_pb2.Code.Value(err.code.value),
        message=_cut_bytes(err.message, MAX_MESSAGE_BYTES),
        details=map(_pack, details),
    )
    if wire_size(status) > MAX_STATUS_BYTES:  # many long metadata values
        status.details[0].Pack(_short_info(info))
    return status


def _bad_request(err: SidecarError) -> error_details_pb2.BadRequest:
    """The first violations (MAX_VIOLATIONS, within _BAD_REQUEST_BYTES), each cut to MAX_FIELD_CHARS."""
    bad = error_details_pb2.BadRequest()
    for v in err.violations[:MAX_VIOLATIONS]:
        bad.field_violations.add(
            field=_cut(v.field, MAX_FIELD_CHARS),
            description=_cut(v.description, MAX_FIELD_CHARS),
            reason=err.reason,
        )
        if bad.ByteSize() > _BAD_REQUEST_BYTES and len(bad.field_violations) > 1:
            del bad.field_violations[-1]
            break
    return bad


def _short_info(info: error_details_pb2.ErrorInfo) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo with its long metadata values cut to 64 characters (the keys all stay)."""
    return error_details_pb2.ErrorInfo(
        reason=info.reason, domain=info.domain, metadata={k: _cut(v, 64) for k, v in info.metadata.items()}
    )


def wire_size(status: status_pb2.Status) -> int:
    """Bytes of trailers the status takes: grpc-status-details-bin and the percent-encoded grpc-message."""
    return int(status.ByteSize()) + len(quote(status.message, safe=" "))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_bytes(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut on a character boundary."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode(errors="ignore") + "…"


def internal(request_id: str) -> SidecarError:
    """What an unclassified exception becomes: no text of the exception reaches the caller."""
    return SidecarError(f"internal error; quote request id {request_id}", metadata={"requestId": request_id})


async def abort(context: grpc.aio.ServicerContext[object, object], err: SidecarError) -> NoReturn:
    status = rpc_status.to_status(to_rpc_status(err))
    await context.abort(status.code, status.details, status.trailing_metadata)
    raise AssertionError("unreachable: context.abort raises")


def _pack(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed
