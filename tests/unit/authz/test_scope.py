"""Whose a call is: its tenant, else its credential, never confused with a tenant."""

from __future__ import annotations

from sidecar.authz.scope import caller_scope


def test_a_tenant_is_its_own_scope_whichever_credential_brings_it() -> None:
    assert caller_scope("acme", "app-a") == caller_scope("acme", "app-b") == "acme"


def test_calls_naming_no_tenant_are_scoped_by_their_credential() -> None:
    assert caller_scope("", "app-a") != caller_scope("", "app-b")
    assert caller_scope("", "app-a") != caller_scope("app-a", "app-b")  # a tenant named like it
    assert caller_scope("", "anonymous") == caller_scope("", "anonymous")
