"""Authentication: with a shared token configured, every call must present it."""

from __future__ import annotations

import hmac
from collections.abc import AsyncGenerator
from typing import Protocol

from pydantic import SecretStr

from sidecar.core.errors import InvalidCredentialsError, UnauthenticatedError
from sidecar.core.layer import Handler
from sidecar.core.types import Call, Chunk, Credentials


class TokenVerifier:
    """Checks a bearer token against the configured one in constant time; None accepts all."""

    def __init__(self, token: SecretStr | None) -> None:
        self._token = token.get_secret_value().encode() if token else None

    def verify(self, credentials: Credentials) -> None:
        if self._token is None:
            return
        if not credentials.bearer_token:
            raise UnauthenticatedError("this sidecar requires `authorization: Bearer <token>`")
        if not hmac.compare_digest(credentials.bearer_token.encode(), self._token):
            raise InvalidCredentialsError("the bearer token is not the one this sidecar expects")


class Verifier(Protocol):
    """Raises UnauthenticatedError unless the credentials are known (sidecar.authz.Authorizer)."""

    def verify(self, credentials: Credentials) -> None: ...


class AuthnLayer:
    def __init__(self, inner: Handler, *, verifier: Verifier) -> None:
        self._inner, self._verifier = inner, verifier

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        self._verifier.verify(call.credentials)
        return self._inner(call)
