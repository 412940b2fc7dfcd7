"""Decoding rich gRPC errors the way a client would: rpc_status.aio.from_call."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status


@dataclass
class RichError:
    code: grpc.StatusCode
    message: str
    info: error_details_pb2.ErrorInfo
    bad_request: error_details_pb2.BadRequest | None
    retry: error_details_pb2.RetryInfo | None

    @property
    def reason(self) -> str:
        return self.info.reason

    @property
    def fields(self) -> list[str]:
        return [v.field for v in self.bad_request.field_violations] if self.bad_request else []


async def rich(err: grpc.aio.AioRpcError) -> RichError:
    decoded = rpc_status.from_call(err)  # checks code and message against the rich status
    assert decoded is not None, f"no rich status on {err.code()}: {err.details()}"
    info = error_details_pb2.ErrorInfo()
    bad: error_details_pb2.BadRequest | None = None
    retry: error_details_pb2.RetryInfo | None = None
    infos = 0
    for detail in decoded.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
            infos += 1
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
    assert infos == 1, "exactly one ErrorInfo"
    assert decoded.message == err.details()
    return RichError(err.code(), err.details() or "", info, bad, retry)
