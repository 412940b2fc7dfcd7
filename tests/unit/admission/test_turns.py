"""Whose turn a queued call takes: its tenant, else its credential, never confused with a tenant."""

from __future__ import annotations

import dataclasses

from sidecar.admission.turns import turn_of
from tests.conftest import FakeClock
from tests.support.calls import make_call


def test_a_tenant_is_its_own_turn_whichever_credential_brings_it(clock: FakeClock) -> None:
    call = make_call(clock)
    assert turn_of(dataclasses.replace(call, tenant_id="acme", caller="app-a")) == "acme"
    assert turn_of(dataclasses.replace(call, tenant_id="acme", caller="app-b")) == "acme"


def test_calls_naming_no_tenant_take_their_credentials_turn(clock: FakeClock) -> None:
    call = dataclasses.replace(make_call(clock), tenant_id="")
    a, b = (turn_of(dataclasses.replace(call, caller=name)) for name in ("app-a", "app-b"))
    assert a != b
    assert a != turn_of(dataclasses.replace(call, tenant_id="app-a", caller="app-b"))
    assert turn_of(dataclasses.replace(call, caller="anonymous")) == turn_of(
        dataclasses.replace(call, caller="anonymous")
    )
