"""What RegisterKey may cost: a bound on the key-backend calls registrations make.

Each RegisterKey seals the key under a new data key: one KMS GenerateDataKey or Vault transit
datakey call, whether the name is new or replaces a kept one (the sidecar cannot tell the same key
registered again without opening the kept record, another backend call). The backend's request
quota (KMS throttles per account and region) and bill are shared by every tenant, so a caller
registering in a loop would otherwise make one backend call per request without bound, and starve
other tenants' decrypts. Registrations are counted in a sliding window, per sidecar, in memory:
at most `max_per_user` for one (tenant, user) and `max_per_tenant` for one tenant in
`window_seconds`; past either the registration is refused (RESOURCE_EXHAUSTED /
KEY_REGISTRATION_LIMIT_REACHED, with RetryInfo: when the oldest counted leaves the window) before
any backend call. Every registration that reaches the backend counts, whether it then succeeds or
not. The counts are bounded in size (the least recently seen owners go first), so made-up tenant or
user names cannot grow memory without end.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from sidecar.core.clock import Clock
from sidecar.core.errors import Code, SidecarError
from sidecar.core.lru import Lru


@dataclass(frozen=True, slots=True)
class RegistrationPolicy:
    max_per_user: int = 10
    max_per_tenant: int = 200
    window_seconds: float = 60.0
    max_owners: int = 10_000

    def __post_init__(self) -> None:
        if min(self.max_per_user, self.max_per_tenant, self.max_owners) < 1 or self.window_seconds <= 0:
            raise ValueError("RegistrationPolicy needs positive limits and window")


class KeyRegistrationLimitError(SidecarError):
    """Too many RegisterKey calls of this user or tenant, recently: refused before the key backend
    is asked, until the oldest of them leaves the window."""

    code = Code.RESOURCE_EXHAUSTED
    reason = "KEY_REGISTRATION_LIMIT_REACHED"


class RegistrationObserver(Protocol):
    """Told each registration refused before a backend call, by scope: "user" or "tenant" (metrics)."""

    def key_registration_refused(self, scope: str) -> None: ...


class Registrations:
    def __init__(
        self, policy: RegistrationPolicy, clock: Clock, observer: RegistrationObserver | None = None
    ) -> None:
        self._policy, self._clock, self._observer = policy, clock, observer
        self._seen: Lru[tuple[str, ...], deque[float]] = Lru(policy.max_owners)

    def admit(self, tenant: str, user: str) -> None:
        """Count one registration of (tenant, user), or KeyRegistrationLimitError when the user or the
        tenant already made its most in the window (nothing counted then)."""
        p = self._policy
        now = self._clock.monotonic()
        user_times = self._times(("user", tenant, user), p.max_per_user, now)
        tenant_times = self._times(("tenant", tenant), p.max_per_tenant, now)
        bounds = (("user", user_times, p.max_per_user), ("tenant", tenant_times, p.max_per_tenant))
        for scope, times, most in bounds:
            if len(times) >= most:
                raise self._refused(scope, most, times[0] + p.window_seconds - now)
        user_times.append(now)
        tenant_times.append(now)

    def _times(self, owner: tuple[str, ...], most: int, now: float) -> deque[float]:
        """The owner's registrations still in the window (the oldest first)."""
        times = self._seen.get(owner)
        if times is None:
            times = deque(maxlen=most)
            self._seen.put(owner, times)
        while times and times[0] <= now - self._policy.window_seconds:
            times.popleft()
        return times

    def _refused(self, scope: str, most: int, retry_after: float) -> KeyRegistrationLimitError:
        window = f"{self._policy.window_seconds:g}"
        if self._observer is not None:
            self._observer.key_registration_refused(scope)
        return KeyRegistrationLimitError(
            f"this {scope} registered {most} keys within {window} s, the most allowed on this sidecar "
            "(settings.keys.registrations): each registration is a key-backend call; retry later",
            metadata={"scope": scope, "maxRegistrations": str(most), "windowSeconds": window},
            retry_after=max(retry_after, 0.001),
        )
