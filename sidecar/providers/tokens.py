"""Short-lived bearer tokens for providers whose platform credential is an identity, not a key.

A `TokenSource` hands out a valid token, refreshing it through the identity library when it is
about to expire. One refresh runs at a time; each caller waits for it no longer than its deadline.
The libraries are imported only when such a credential is configured.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from sidecar.core.clock import Clock, Deadline, SystemClock
from sidecar.core.errors import (
    DeadlineExceededError,
    ProviderAuthError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)

REFRESH_TIMEOUT_SECONDS = 10.0


class TokenSource(Protocol):
    async def token(self, deadline: Deadline) -> str: ...


class SingleFlight:
    """Runs one refresh at a time; waiters are bounded by their own deadline, the refresh is not
    cancelled by a waiter that gives up (the next caller reuses it)."""

    def __init__(self, refresh: Callable[[], Awaitable[None]]) -> None:
        self._refresh = refresh
        self._task: asyncio.Task[None] | None = None

    async def run(self, deadline: Deadline) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._refresh())
        remaining = deadline.remaining()
        wait = REFRESH_TIMEOUT_SECONDS if remaining is None else min(REFRESH_TIMEOUT_SECONDS, remaining)
        try:
            async with asyncio.timeout(wait):
                await asyncio.shield(self._task)
        except TimeoutError as exc:
            if deadline.expired():
                raise DeadlineExceededError("the call's deadline passed while minting a token") from exc
            raise ProviderTimeoutError("the identity provider did not issue a token in time") from exc


class GoogleServiceAccountTokens:
    """OAuth2 access tokens from a service-account JSON key (google-auth, the `gemini` extra)."""

    def __init__(self, path: Path, scopes: Sequence[str]) -> None:
        self._path, self._scopes = path, tuple(scopes)
        self._credentials: Any = None
        self._flight = SingleFlight(self._refresh)

    def __repr__(self) -> str:
        return f"GoogleServiceAccountTokens(path={str(self._path)!r})"

    async def token(self, deadline: Deadline) -> str:
        if self._credentials is None or not self._credentials.valid:
            await self._flight.run(deadline)
        return str(self._credentials.token)

    async def _refresh(self) -> None:
        await asyncio.to_thread(self._refresh_blocking)

    def _refresh_blocking(self) -> None:
        try:
            import google.auth.exceptions
            import google.auth.transport.requests
            from google.oauth2 import service_account
        except ImportError as exc:
            raise ProviderAuthError("gemini service accounts need the `gemini` extra (google-auth)") from exc
        try:
            if self._credentials is None:
                self._credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                    str(self._path), scopes=list(self._scopes)
                )
            request = google.auth.transport.requests.Request()
            self._credentials.refresh(functools.partial(request, timeout=REFRESH_TIMEOUT_SECONDS))
        except (OSError, ValueError) as exc:
            raise ProviderAuthError(
                f"service account file {self._path} is unreadable ({type(exc).__name__})"
            ) from exc
        except google.auth.exceptions.RefreshError as exc:
            raise ProviderAuthError("the token endpoint refused the service account") from exc
        except google.auth.exceptions.TransportError as exc:
            raise ProviderUnavailableError("the token endpoint is unreachable") from exc


class AzureEntraTokens:
    """Entra ID access tokens through azure-identity (the `azure` extra).

    Without an explicit `credential`, DefaultAzureCredential: workload identity in AKS, managed
    identity, or a service principal from the environment. Refreshed five minutes before expiry.
    """

    EARLY_SECONDS = 300.0

    def __init__(self, scope: str, *, credential: Any = None, clock: Clock | None = None) -> None:
        self._scope, self._credential = scope, credential
        self._clock = clock or SystemClock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._flight = SingleFlight(self._refresh)

    def __repr__(self) -> str:
        return f"AzureEntraTokens(scope={self._scope!r})"

    async def token(self, deadline: Deadline) -> str:
        if self._token is None or self._clock.wall() >= self._expires_at - self.EARLY_SECONDS:
            await self._flight.run(deadline)
        assert self._token is not None
        return self._token

    async def _refresh(self) -> None:
        try:
            from azure.core.exceptions import AzureError, ClientAuthenticationError
        except ImportError as exc:
            raise ProviderAuthError("azure entra_id auth needs the `azure` extra (azure-identity)") from exc
        if self._credential is None:
            from azure.identity.aio import DefaultAzureCredential

            self._credential = DefaultAzureCredential()
        try:
            access = await self._credential.get_token(self._scope)
        except ClientAuthenticationError as exc:
            raise ProviderAuthError("Entra ID refused to issue a token") from exc
        except AzureError as exc:
            raise ProviderUnavailableError(f"Entra ID token request failed ({type(exc).__name__})") from exc
        self._token, self._expires_at = str(access.token), float(access.expires_on)

    async def aclose(self) -> None:
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()
