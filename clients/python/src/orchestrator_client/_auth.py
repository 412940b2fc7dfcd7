"""Interceptors that attach `authorization: Bearer <token>` to every call, stubs included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio


def _metadata(existing: Any, token: str) -> list[tuple[str, str | bytes]]:
    pairs = [(k, v) for k, v in (existing or ()) if k != "authorization"]
    pairs.append(("authorization", f"Bearer {token}"))
    return pairs


def _async_details(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*_metadata(details.metadata, token)),
        details.credentials,
        details.wait_for_ready,
    )


# grpc.aio files each interceptor under one kind only, so each kind gets its own class.
class _AsyncUnaryToken(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_async_details(details, self._token), request)


class _AsyncStreamToken(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_async_details(details, self._token), request)


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, base: Any, token: str) -> None:
        self.method = base.method
        self.timeout = base.timeout
        self.metadata = tuple(_metadata(base.metadata, token))
        self.credentials = base.credentials
        self.wait_for_ready = base.wait_for_ready
        self.compression = getattr(base, "compression", None)


class _SyncToken(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.StreamStreamClientInterceptor,  # type: ignore[type-arg]
):
    def __init__(self, token: str) -> None:
        self._token = token

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_CallDetails(details, self._token), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_CallDetails(details, self._token), request)

    def intercept_stream_unary(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(_CallDetails(details, self._token), requests)

    def intercept_stream_stream(self, continuation: Callable[..., Any], details: Any, requests: Any) -> Any:
        return continuation(_CallDetails(details, self._token), requests)


def async_interceptors(token: str | None) -> list[Any]:
    return [_AsyncUnaryToken(token), _AsyncStreamToken(token)] if token else []


def sync_channel(channel: grpc.Channel, token: str | None) -> grpc.Channel:
    return grpc.intercept_channel(channel, _SyncToken(token)) if token else channel
