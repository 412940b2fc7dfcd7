"""The one place a SidecarError becomes a gRPC status (google.rpc.Status with rich details)."""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from sidecar.core.errors import SidecarError

DOMAIN = "orchestrator.sidecar"


def to_rpc_status(err: SidecarError) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)
    details: list[Message] = [info]
    if err.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description, reason=err.reason
                    )
                    for v in err.violations
                ]
            )
        )
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
    return status_pb2.Status(
        code=code_pb2.Code.Value(err.code.value), message=err.message, details=map(_pack, details)
    )


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
