"""What envelopes that do not open may cost: bounds on the key-backend calls damaged or forged
envelopes can make the sidecar spend.

Each envelope not in the decrypted-key cache costs one KMS or Vault call, and the backend's request
quota (KMS throttles per account and region) and bill are shared by every tenant. A caller that
sends inline envelopes it altered, each one different, would otherwise make one backend call per
request without bound, and starve other tenants' decrypts. Two bounds, in memory, per sidecar:

- An envelope that failed to open (KEY_RECORD_CORRUPT: the backend refused its wrapped data key, or
  its commitment or ciphertext failed) is remembered by its digest for `remember_seconds`: the same
  envelope sent again is refused as damaged at once, without a backend call. Valid envelopes never
  fail that way, so nothing honest is remembered; a key registered again is a new envelope. One the
  backend refused while it seemed to accept the sidecar (keys/standing.py) is counted, not
  remembered: that verdict is inferred, and a valid envelope gets it as a backend outage begins.
- Inline envelopes (the only ones a caller can alter: a registered record is written by the
  sidecar) that failed to open (KEY_RECORD_CORRUPT, or KEY_UNAVAILABLE: the backend refused the
  wrapped key otherwise, as moto's KMS does a forged key reference; not an unreachable backend)
  are counted per tenant: past `max_per_tenant` in `window_seconds`,
  the tenant's new inline envelopes are refused (RESOURCE_EXHAUSTED / KEY_FAILURE_LIMIT_REACHED,
  with RetryInfo) before any backend call, until the oldest failure leaves the window. Unwraps in
  flight count as failures until they end (past the bound, the next waits for one to end), so a
  burst of concurrent forgeries is bounded too. Its keys already in the cache, its registered keys,
  and every other tenant are not affected.

Both are bounded in size (the least recently failed go first), so forged digests or tenant names
cannot grow memory without end.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from sidecar.core.clock import Clock
from sidecar.core.errors import Code, SidecarError
from sidecar.core.lru import Lru
from sidecar.keys.envelope import KeyRecordCorruptError


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    max_per_tenant: int = 20
    window_seconds: float = 60.0
    remember_seconds: float = 600.0
    max_remembered: int = 10_000
    max_tenants: int = 10_000

    def __post_init__(self) -> None:
        if min(self.max_per_tenant, self.max_remembered, self.max_tenants) < 1 or self.window_seconds <= 0:
            raise ValueError("FailurePolicy needs positive limits and window")


class KeyFailureLimitError(SidecarError):
    """The tenant sent too many key envelopes that did not open, recently: new ones are refused
    before any key-backend call for a while (its registered and cached keys still work)."""

    code = Code.RESOURCE_EXHAUSTED
    reason = "KEY_FAILURE_LIMIT_REACHED"


class RefusalObserver(Protocol):
    """Told each envelope refused before a backend call: "known_bad" or "tenant_limit" (metrics)."""

    def key_envelope_refused(self, reason: str) -> None: ...


class _Tenant:
    __slots__ = ("changed", "failures", "in_flight")

    def __init__(self, max_failures: int) -> None:
        self.failures: deque[float] = deque(maxlen=max_failures)  # the latest failures' times
        self.in_flight = 0
        self.changed = asyncio.Event()


class EnvelopeFailures:
    def __init__(self, policy: FailurePolicy, clock: Clock, observer: RefusalObserver | None = None) -> None:
        self._policy, self._clock, self._observer = policy, clock, observer
        self._bad: Lru[str, float] = Lru(policy.max_remembered)  # digest -> when it is forgotten
        self._tenants: Lru[str, _Tenant] = Lru(policy.max_tenants)

    def check_known(self, digest: str) -> None:
        """KeyRecordCorruptError, without a backend call, for an envelope that recently failed to open."""
        forget_at = self._bad.peek(digest)
        if forget_at is None:
            return
        if forget_at <= self._clock.monotonic():
            self._bad.pop(digest)
            return
        self._refused("known_bad")
        raise KeyRecordCorruptError(
            "it failed to open moments ago, and was not sent to the key backend again"
        )

    @asynccontextmanager
    async def inline_unwrap(self, tenant: str) -> AsyncIterator[None]:
        """Around the backend call for one of the tenant's inline envelopes: KeyFailureLimitError when
        its envelopes failed `max_per_tenant` times in the window (the retry delay: when the oldest of
        those leaves it). The unwraps in flight count as failures until they end, so concurrent
        forgeries cannot all pass before the first fails: past the bound they wait for one to end."""
        state = self._tenant(tenant)
        while True:
            recent = self._recent(state)
            if recent >= self._policy.max_per_tenant:
                raise self._limit_reached(state)
            if recent + state.in_flight < self._policy.max_per_tenant:
                break
            await state.changed.wait()  # set when one of the tenant's unwraps ends
        state.in_flight += 1
        try:
            yield
        finally:
            state.in_flight -= 1
            state.changed.set()
            state.changed = asyncio.Event()

    def failed(self, digest: str, tenant: str | None, *, damaged: bool) -> None:
        """An envelope failed to open: count it against `tenant` (inline ones), and remember it when it
        is `damaged` (KEY_RECORD_CORRUPT). A refusal that may pass (the backend's permissions, a token
        that expired: KEY_UNAVAILABLE) is counted, not remembered: the same envelope may open later."""
        now, p = self._clock.monotonic(), self._policy
        if damaged:
            self._bad.put(digest, now + p.remember_seconds)
        if tenant is not None:
            self._tenant(tenant).failures.append(now)

    def _tenant(self, tenant: str) -> _Tenant:
        state = self._tenants.get(tenant)
        if state is None:
            state = _Tenant(self._policy.max_per_tenant)
            self._tenants.put(tenant, state)
        return state

    def _recent(self, state: _Tenant) -> int:
        since = self._clock.monotonic() - self._policy.window_seconds
        return sum(1 for t in state.failures if t > since)

    def _limit_reached(self, state: _Tenant) -> KeyFailureLimitError:
        p = self._policy
        self._refused("tenant_limit")
        return KeyFailureLimitError(
            f"{p.max_per_tenant} key envelopes of this tenant failed to open within {p.window_seconds:g} s: "
            "new ones are not sent to the key backend until the oldest of those is older (registered "
            "keys still work)",
            metadata={"maxFailures": str(p.max_per_tenant), "windowSeconds": f"{p.window_seconds:g}"},
            retry_after=max(state.failures[0] + p.window_seconds - self._clock.monotonic(), 0.001),
        )

    def _refused(self, reason: str) -> None:
        if self._observer is not None:
            self._observer.key_envelope_refused(reason)
