"""Whose a call is, where calls are kept apart or take turns (admission queues, idempotency keys,
the response and semantic caches).

Its tenant when it names one; else the credential that authenticated it, so applications that each
have their own credential and name no tenant are as separate as two tenants (they shared one
tenant, "": one's burst held back another's calls, one's request_id returned another's answer,
and one's cached answers were served to the other).
A tenant id starts with a letter or digit, so a credential's scope never equals a tenant's. With no
credential configured every caller is "anonymous": calls naming no tenant share one scope.
"""

from __future__ import annotations


def caller_scope(tenant_id: str, credential: str) -> str:
    return tenant_id or f"#{credential}"
