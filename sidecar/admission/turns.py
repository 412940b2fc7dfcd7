"""Whose turn a waiting call takes in an admission queue (sidecar-wide and each deployment's)."""

from __future__ import annotations

from sidecar.core.types import Call


def turn_of(call: Call) -> str:
    """Its tenant, or, when it names none, the credential that authenticated it: two applications on
    their own credentials, neither naming a tenant, take turns as two tenants do. A tenant id starts
    with a letter or digit, so a credential's key never equals one. With no credential configured,
    every call without a tenant is one caller's ("anonymous")."""
    return call.tenant_id or f"#{call.caller}"
