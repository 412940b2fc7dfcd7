"""Typed errors: a failed call's google.rpc.Status decoded once into an exception you can catch.

Every error is a `SidecarError` carrying the gRPC code, the stable `ErrorInfo.reason` and metadata,
`RetryInfo` as a timedelta, `BadRequest` field violations and `QuotaFailure` violations. The class
says the family (catch `QuotaExceededError`, `InvalidRequestError`, ...); the reason says which one.
A RESOURCE_EXHAUSTED without a reason is gRPC's own limit (`TransportLimitError`), not a quota.
A missing or malformed details payload gives the same class with empty details, never a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str


@dataclass(frozen=True, slots=True)
class QuotaViolation:
    subject: str
    description: str


@dataclass(frozen=True, slots=True)
class PartialUsage:
    """What an interrupted stream used before it broke (counted by the sidecar: estimated)."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool


class SidecarError(Exception):
    """A call the sidecar (or the transport) failed."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        retry_delay: timedelta | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
        quota_violations: tuple[QuotaViolation, ...] = (),
        deltas_received: int = 0,
    ) -> None:
        super().__init__(f"{code.name}{f' {reason}' if reason else ''}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: Mapping[str, str] = dict(metadata or {})
        self.retry_delay = retry_delay
        self.field_violations = field_violations
        self.quota_violations = quota_violations
        self.deltas_received = deltas_received


class InvalidRequestError(SidecarError):
    """INVALID_ARGUMENT: the request (a field named in `field_violations`) is wrong; do not retry as is."""


class AuthenticationError(SidecarError):
    """UNAUTHENTICATED: MISSING_CREDENTIALS or INVALID_CREDENTIALS."""


class PermissionDeniedError(SidecarError):
    """PERMISSION_DENIED: METHOD_NOT_ALLOWED, TENANT_NOT_ALLOWED, MODEL_NOT_ALLOWED, ..."""


class NotFoundError(SidecarError):
    """NOT_FOUND: MODEL_NOT_FOUND (metadata `model`) and other unknown names."""


class FailedPreconditionError(SidecarError):
    """FAILED_PRECONDITION: USER_KEY_REQUIRED, KEYS_DISABLED, ..."""


class QuotaExceededError(SidecarError):
    """RESOURCE_EXHAUSTED with the sidecar's reason: the caller's own quota or rate limit
    (RATE_LIMITED, *_QUOTA_EXCEEDED, ...); `retry_delay` says when to try again."""


class TransportLimitError(SidecarError):
    """RESOURCE_EXHAUSTED from gRPC itself, without the sidecar's ErrorInfo: a message over a size
    limit (a reply over this client's `max_reply_bytes`, a request over the sidecar's
    `settings.max_receive_message_bytes`) or the sidecar's limit of concurrent calls. Not the
    caller's quota; never retried (no `RetryInfo`)."""


class ConflictError(SidecarError):
    """ABORTED / ALREADY_EXISTS: SWITCH_SUPERSEDED, FEEDBACK_EXISTS, ROTATION_IN_PROGRESS: a
    conflicting change came first; read the current state before trying again."""


class UnavailableError(SidecarError):
    """UNAVAILABLE: no deployment could answer (PROVIDERS_UNAVAILABLE), a store is down, or the
    sidecar itself is unreachable (no reason)."""


class StreamInterruptedError(UnavailableError):
    """STREAM_INTERRUPTED, or the connection broken after a delta: the stream broke after its first
    delta; never retried (`partial_usage` is None when the sidecar could not send it)."""

    @property
    def partial_usage(self) -> PartialUsage | None:
        prompt = _int(self.metadata.get("promptTokens"))
        completion = _int(self.metadata.get("completionTokens"))
        if prompt is None or completion is None:
            return None
        return PartialUsage(prompt, completion, self.metadata.get("usageEstimated") == "true")


class DeadlineExceededError(SidecarError):
    """DEADLINE_EXCEEDED: the caller's deadline passed (in the client or in the sidecar)."""


class CancelledError(SidecarError):
    """CANCELLED: the call was cancelled (by this client or the peer)."""


class InternalError(SidecarError):
    """INTERNAL and anything else: quote `metadata['requestId']` when present."""


_BY_CODE: Mapping[grpc.StatusCode, type[SidecarError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidRequestError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: QuotaExceededError,
    grpc.StatusCode.ABORTED: ConflictError,
    grpc.StatusCode.ALREADY_EXISTS: ConflictError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CancelledError,
}
_BY_REASON: Mapping[str, type[SidecarError]] = {"STREAM_INTERRUPTED": StreamInterruptedError}


def from_rpc_error(err: grpc.RpcError, *, deltas_received: int = 0) -> SidecarError:
    """The typed error for a failed call (sync `grpc.RpcError` or `grpc.aio.AioRpcError`)."""
    code = _call(err, "code") or grpc.StatusCode.UNKNOWN
    message = _call(err, "details") or ""
    return build(
        code, message, _details_bytes(_call(err, "trailing_metadata")), deltas_received=deltas_received
    )


def build(
    code: grpc.StatusCode, message: str, details: bytes | None, *, deltas_received: int = 0
) -> SidecarError:
    """The typed error for a status code, message and the raw `grpc-status-details-bin` bytes."""
    decoded = _decode(details)
    info = next((d for d in decoded if isinstance(d, error_details_pb2.ErrorInfo)), None)
    reason = info.reason if info is not None else ""
    cls = _BY_REASON.get(reason) or _BY_CODE.get(code, InternalError)
    if cls is QuotaExceededError and not reason:  # the sidecar's own always says which limit
        cls = TransportLimitError
    if cls is UnavailableError and not reason and deltas_received:
        # the stream broke after a delta without the sidecar saying why (the connection reset, the
        # sidecar killed): as interrupted as one it reports, the caller has seen part of the answer
        cls = StreamInterruptedError
    retry = next((d for d in decoded if isinstance(d, error_details_pb2.RetryInfo)), None)
    return cls(
        code,
        message,
        reason=reason,
        domain=info.domain if info is not None else "",
        metadata=dict(info.metadata) if info is not None else None,
        retry_delay=_delay(retry),
        field_violations=tuple(
            FieldViolation(v.field, v.description)
            for d in decoded
            if isinstance(d, error_details_pb2.BadRequest)
            for v in d.field_violations
        ),
        quota_violations=tuple(
            QuotaViolation(v.subject, v.description)
            for d in decoded
            if isinstance(d, error_details_pb2.QuotaFailure)
            for v in d.violations
        ),
        deltas_received=deltas_received,
    )


_KNOWN: tuple[type[Message], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.RetryInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.QuotaFailure,
)


def _decode(raw: bytes | None) -> list[Message]:
    """The known details of a serialized google.rpc.Status; anything unreadable is left out."""
    if not raw:
        return []
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except (DecodeError, ValueError, TypeError):
        return []
    return [m for m in (_unpack(d) for d in status.details) if m is not None]


def _unpack(packed: any_pb2.Any) -> Message | None:
    for cls in _KNOWN:
        if packed.Is(cls.DESCRIPTOR):  # type: ignore[arg-type]
            message = cls()
            try:
                return message if packed.Unpack(message) else None
            except (DecodeError, ValueError, TypeError):
                return None
    return None


def _delay(retry: error_details_pb2.RetryInfo | None) -> timedelta | None:
    if retry is None or not retry.HasField("retry_delay"):
        return None
    d = retry.retry_delay
    if d.seconds < 0 or d.nanos < 0:
        return None
    try:
        return timedelta(seconds=d.seconds, microseconds=d.nanos // 1000)
    except OverflowError:  # past timedelta (a hostile server): too long to wait, never "no RetryInfo"
        return timedelta.max


def _details_bytes(trailing: Iterable[tuple[str, Any]] | None) -> bytes | None:
    for key, value in trailing or ():
        if key == DETAILS_KEY and isinstance(value, bytes):
            return value
    return None


def _call(err: grpc.RpcError, name: str) -> Any:
    method = getattr(err, name, None)
    if not callable(method):
        return None
    try:
        return method()
    except Exception:  # a broken call object must not hide the original failure
        return None


_INT64_MAX = 2**63 - 1


def _int(value: str | None) -> int | None:
    """A count read the way every client does: ASCII digits only (`isdigit` alone takes `²`, which
    `int` refuses, and other scripts' digits), within an int64."""
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    number = int(value)
    return number if number <= _INT64_MAX else None
