"""Credentials -> principals -> may this principal call this method for this tenant.

A credential is a bearer token with the methods it may call (by service or Service/Method) and,
optionally, the tenants it may act for. The legacy single `settings.auth.token` is a credential with
data-plane access. With no credential configured every caller is anonymous with data-plane access;
the admin service is then reachable only on its own Unix socket (the config refuses it otherwise).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from sidecar.authz.catalog import DATA_PLANE_SERVICES, expand
from sidecar.core.errors import (
    Code,
    InvalidCredentialsError,
    SidecarError,
    UnauthenticatedError,
)
from sidecar.core.types import Credentials

ALL_TENANTS = "*"  # never a tenant id: it fails the id rule


class MethodNotAllowedError(SidecarError):
    """The credential is valid but may not call this method."""

    code = Code.PERMISSION_DENIED
    reason = "METHOD_NOT_ALLOWED"


class TenantNotAllowedError(SidecarError):
    """The credential may call the method, but not for this tenant."""

    code = Code.PERMISSION_DENIED
    reason = "TENANT_NOT_ALLOWED"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its credential's name and grants."""

    name: str
    methods: frozenset[str]
    tenants: frozenset[str] | None  # None: any tenant


@dataclass(frozen=True)
class Credential:
    """A configured credential with its token resolved."""

    name: str
    token: SecretStr
    grants: Sequence[str]
    tenants: Sequence[str] | None = None


def data_plane() -> frozenset[str]:
    return frozenset().union(*(expand(s) for s in DATA_PLANE_SERVICES))


class Authorizer:
    """Authenticates a bearer token (constant time, against every credential) and authorizes calls."""

    def __init__(self, credentials: Sequence[Credential], *, admin_open: bool = False) -> None:
        self._credentials = [
            (
                c.token.get_secret_value().encode(),
                Principal(
                    c.name,
                    frozenset().union(*(expand(g) for g in c.grants)),
                    None if c.tenants is None else frozenset(c.tenants),
                ),
            )
            for c in credentials
        ]
        everything = expand("*") if admin_open else data_plane()
        self._anonymous = None if self._credentials else Principal("anonymous", everything, None)

    def authenticate(self, credentials: Credentials) -> Principal:
        if self._anonymous is not None:
            return self._anonymous
        if not credentials.bearer_token:
            raise UnauthenticatedError("this sidecar requires `authorization: Bearer <token>`")
        presented = credentials.bearer_token.encode()
        found: Principal | None = None
        for token, principal in self._credentials:  # every comparison runs: no timing on position
            if hmac.compare_digest(presented, token) and found is None:
                found = principal
        if found is None:
            raise InvalidCredentialsError("the bearer token is not one this sidecar accepts")
        return found

    def verify(self, credentials: Credentials) -> None:
        """The pipeline's check: the token is a known credential (methods are checked at the edge)."""
        self.authenticate(credentials)

    @staticmethod
    def authorize(principal: Principal, method: str, tenant: str | None) -> None:
        """Raise unless the principal may call `method`. `tenant` is the request's tenant id (empty
        when the request names none), None for a method that acts for no tenant (ListModels), or
        ALL_TENANTS for one that acts for every tenant (RotateKeys)."""
        if method not in principal.methods:
            raise MethodNotAllowedError(
                f"credential {principal.name!r} may not call {method}",
                metadata={"credential": principal.name, "method": method},
            )
        if principal.tenants is not None and tenant is not None and tenant not in principal.tenants:
            raise TenantNotAllowedError(
                f"credential {principal.name!r} may not act for this tenant",
                metadata={"credential": principal.name, "method": method},
            )


def credentials_from_settings(
    token: SecretStr | None, configured: Sequence[tuple[str, SecretStr, Sequence[str], Sequence[str] | None]]
) -> list[Credential]:
    """The legacy shared token (data-plane access) plus the configured credentials."""
    out = [Credential("token", token, DATA_PLANE_SERVICES)] if token is not None else []
    out += [Credential(name, secret, grants, tenants) for name, secret, grants, tenants in configured]
    return out
