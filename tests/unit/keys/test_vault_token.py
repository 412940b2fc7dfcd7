"""Renewing the Vault token ahead of its expiry, on FakeClock: when, how often, and when it gives up."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

from sidecar.core.clock import FakeClock
from sidecar.core.errors import KeyBackendUnavailableError
from sidecar.keys.vault_token import TokenLease, TokenRenewal

TOKEN = "s.hvs-token-never-logged-0123456789"


class FakeVault:
    """What lookup-self and renew-self answer: a token with a TTL, renewals extending it up to a max."""

    def __init__(self, clock: FakeClock, *, ttl: float, renewable: bool = True, max_ttl: float = 1e9) -> None:
        self.clock, self.ttl, self.renewable = clock, ttl, renewable
        self.issued = clock.monotonic()
        self.expires = self.issued + ttl
        self.max_expiry = self.issued + max_ttl
        self.calls: list[tuple[str, float]] = []
        self.down = False
        self.warns_when_capped = False

    def _answer(self, what: str) -> None:
        self.calls.append((what, self.clock.monotonic()))
        if self.down:
            raise KeyBackendUnavailableError(f"Vault cannot be reached ({TOKEN[:0]})")
        if self.ttl and self.clock.monotonic() >= self.expires:  # a TTL of 0: it never expires
            raise PermissionError("token expired")

    async def lookup(self) -> TokenLease:
        self._answer("lookup")
        return TokenLease(self.ttl and self.expires - self.clock.monotonic(), self.renewable)

    async def renew(self) -> TokenLease:
        self._answer("renew")
        wanted = self.clock.monotonic() + self.ttl
        self.expires = min(wanted, self.max_expiry)
        capped = self.warns_when_capped and wanted > self.max_expiry
        return TokenLease(self.expires - self.clock.monotonic(), self.renewable, capped)


class Outcomes(Counter[str]):
    def key_token_renewal(self, outcome: str) -> None:
        self[outcome] += 1


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def run_for(clock: FakeClock, seconds: float, step: float = 1.0) -> None:
    for _ in range(int(seconds / step)):
        clock.advance(step)
        await settle()


async def test_a_renewable_token_is_renewed_at_two_thirds_of_its_ttl_and_never_expires() -> None:
    clock = FakeClock()
    vault, outcomes = FakeVault(clock, ttl=60), Outcomes()
    renewal = TokenRenewal(vault.lookup, vault.renew, clock, outcomes)
    renewal.start()
    await settle()
    await run_for(clock, 600)
    assert vault.calls[0] == ("lookup", 1000.0)
    renewals = [t for what, t in vault.calls if what == "renew"]
    assert renewals[:3] == [1040.0, 1080.0, 1120.0] and len(renewals) == 15
    assert clock.monotonic() < vault.expires and outcomes == {"renewed": 15}
    await renewal.aclose()
    assert clock.pending() == 0  # no timer left behind


async def test_failures_are_counted_logged_without_the_token_and_retried_before_expiry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    vault, outcomes = FakeVault(clock, ttl=60), Outcomes()
    renewal = TokenRenewal(vault.lookup, vault.renew, clock, outcomes)
    renewal.start()
    await settle()
    vault.down = True
    with caplog.at_level(logging.DEBUG):
        await run_for(clock, 50)  # the renewal at 40 s fails, and is tried at 41, 43, 47 s...
        vault.down = False
        await run_for(clock, 5)
    tried = [t for what, t in vault.calls if what == "renew"]
    # backoff 1, 2, 4 s, then half of the 13 s left (6.5 s: the next whole-second tick, 1054)
    assert tried == [1040.0, 1041.0, 1043.0, 1047.0, 1054.0]
    assert outcomes == {"failed": 4, "renewed": 1} and clock.monotonic() < vault.expires
    assert "could not renew the Vault token (KeyBackendUnavailableError)" in caplog.text
    assert TOKEN not in caplog.text
    await renewal.aclose()


async def test_an_expired_token_stops_the_renewal_with_an_error(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    vault, outcomes = FakeVault(clock, ttl=30), Outcomes()
    renewal = TokenRenewal(vault.lookup, vault.renew, clock, outcomes)
    renewal.start()
    await settle()
    vault.down = True
    with caplog.at_level(logging.ERROR):
        await run_for(clock, 120, step=0.25)
    assert "the Vault token has expired" in caplog.text
    calls = len(vault.calls)
    await run_for(clock, 120)
    assert len(vault.calls) == calls and clock.pending() == 0  # stopped: no more calls, no timer
    await renewal.aclose()


async def test_a_renewal_vault_says_it_capped_at_the_max_ttl_is_the_last(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    vault = FakeVault(clock, ttl=60, max_ttl=110)
    vault.warns_when_capped = True
    renewal = TokenRenewal(vault.lookup, vault.renew, clock)
    renewal.start()
    await settle()
    with caplog.at_level(logging.WARNING):
        await run_for(clock, 300)
    # at 80 s Vault grants 30 s, not 60 (a longer extension than a tenth of the TTL): capped all the same
    assert [t for what, t in vault.calls if what == "renew"] == [1040.0, 1080.0]
    assert "reached its max TTL" in caplog.text and "expires in 30 s" in caplog.text
    await renewal.aclose()


async def test_at_its_max_ttl_the_renewal_stops_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    vault = FakeVault(clock, ttl=60, max_ttl=100)
    renewal = TokenRenewal(vault.lookup, vault.renew, clock)
    renewal.start()
    await settle()
    with caplog.at_level(logging.WARNING):
        await run_for(clock, 300)
    assert [t for what, t in vault.calls if what == "renew"] == [1040.0, 1080.0]
    assert "reached its max TTL" in caplog.text and "expires in 20 s" in caplog.text
    assert clock.pending() == 0
    await renewal.aclose()


@pytest.mark.parametrize(
    ("ttl", "renewable", "said"), [(0, False, "does not expire"), (60, False, "not renewable")]
)
async def test_a_token_without_ttl_or_not_renewable_is_only_looked_up(
    caplog: pytest.LogCaptureFixture, ttl: float, renewable: bool, said: str
) -> None:
    clock = FakeClock()
    vault = FakeVault(clock, ttl=ttl, renewable=renewable)
    vault.expires = clock.monotonic() + ttl
    renewal = TokenRenewal(vault.lookup, vault.renew, clock)
    with caplog.at_level(logging.INFO):
        renewal.start()
        await settle()
    assert [what for what, _ in vault.calls] == ["lookup"] and said in caplog.text
    assert clock.pending() == 0
    await renewal.aclose()


async def test_a_lookup_that_fails_at_start_is_tried_again_with_backoff() -> None:
    clock = FakeClock()
    vault, outcomes = FakeVault(clock, ttl=3600), Outcomes()
    vault.down = True
    renewal = TokenRenewal(vault.lookup, vault.renew, clock, outcomes)
    renewal.start()
    await settle()
    await run_for(clock, 100)
    lookups = [t - 1000.0 for what, t in vault.calls if what == "lookup"]
    assert lookups == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 61.0, 91.0] and outcomes == {"failed": 8}
    vault.down = False
    await run_for(clock, 30)
    assert vault.calls[-1][0] == "lookup" and len(vault.calls) == 9
    await renewal.aclose()


async def test_aclose_stops_a_renewal_waiting_for_its_time() -> None:
    clock = FakeClock()
    vault = FakeVault(clock, ttl=60)
    renewal = TokenRenewal(vault.lookup, vault.renew, clock)
    renewal.start()
    await settle()
    assert clock.pending() == 1
    await renewal.aclose()
    assert clock.pending() == 0
    await run_for(clock, 120)
    assert [what for what, _ in vault.calls] == ["lookup"]


async def test_a_token_of_one_second_is_renewed_too() -> None:
    clock = FakeClock()
    vault = FakeVault(clock, ttl=1)
    renewal = TokenRenewal(vault.lookup, vault.renew, clock)
    renewal.start()
    await settle()
    await run_for(clock, 10, step=0.125)
    assert clock.monotonic() < vault.expires and len(vault.calls) > 10
    await renewal.aclose()
