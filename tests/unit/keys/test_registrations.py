"""What RegisterKey may cost, on FakeClock: each registration is a key-backend call (KMS
GenerateDataKey, Vault datakey), so a user's and a tenant's registrations are bounded per window,
refused before the backend is asked, the same name replaced again and again included."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sidecar.core.clock import FakeClock
from sidecar.keys.backend import KeyContext
from sidecar.keys.cache import KeyCache, KeyCachePolicy
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.registrations import KeyRegistrationLimitError, RegistrationPolicy, Registrations
from sidecar.keys.service import KeyService
from sidecar.keys.store import SqliteKeyStore


class CountingBackend(LocalKekBackend):
    asked = 0

    async def generate_data_key(self, context: KeyContext) -> tuple[bytearray, object]:  # type: ignore[override]
        self.asked += 1
        return await super().generate_data_key(context)


class Refusals(Counter[str]):
    def key_registration_refused(self, scope: str) -> None:
        self[scope] += 1


def ctx(user: str, tenant: str = "acme", name: str = "default") -> KeyContext:
    return KeyContext(tenant=tenant, user=user, provider="openai", key_name=name)


async def test_the_same_name_registered_in_a_loop_is_refused_before_the_backend(tmp_path: Path) -> None:
    kek = tmp_path / "kek"
    LocalKekBackend.generate_file(kek)
    clock, refusals = FakeClock(), Refusals()
    backend = CountingBackend.from_file(kek)
    policy = RegistrationPolicy(max_per_user=3, max_per_tenant=5, window_seconds=60)
    service = KeyService(
        backend,
        SqliteKeyStore(tmp_path / "keys.db", clock),
        KeyCache(KeyCachePolicy(), clock),
        clock,
        registrations=Registrations(policy, clock, refusals),
    )
    for _ in range(3):
        await service.register(ctx("alice"), b"sk-0123456789abcdef")
    with pytest.raises(KeyRegistrationLimitError) as info:
        await service.register(ctx("alice"), b"sk-0123456789abcdef")
    err = info.value
    assert (err.code.value, err.reason) == ("RESOURCE_EXHAUSTED", "KEY_REGISTRATION_LIMIT_REACHED")
    assert {k: err.metadata[k] for k in ("scope", "maxRegistrations", "windowSeconds")} == {
        "scope": "user",
        "maxRegistrations": "3",
        "windowSeconds": "60",
    }
    assert err.retry_after == pytest.approx(60)
    assert backend.asked == 3 and refusals == {"user": 1}

    await service.register(ctx("bob"), b"sk-0123456789abcdef")  # another user of the tenant
    await service.register(ctx("bob"), b"sk-0123456789abcdef")
    with pytest.raises(KeyRegistrationLimitError) as info:  # the tenant's fifth is its last
        await service.register(ctx("carol"), b"sk-0123456789abcdef")
    assert info.value.metadata["scope"] == "tenant" and refusals == {"user": 1, "tenant": 1}
    await service.register(ctx("alice", tenant="other"), b"sk-0123456789abcdef")  # another tenant
    assert backend.asked == 6

    clock.advance(30)
    with pytest.raises(KeyRegistrationLimitError) as info:
        await service.register(ctx("alice"), b"sk-0123456789abcdef")
    assert info.value.retry_after == pytest.approx(30)
    clock.advance(30)  # the first registrations left the window
    await service.register(ctx("alice"), b"sk-0123456789abcdef")
    assert backend.asked == 7
    assert len(await service.list("acme", "alice")) == 1  # one name, replaced each time
    await service.aclose()


def test_made_up_owners_cannot_grow_memory_without_end() -> None:
    clock = FakeClock()
    r = Registrations(RegistrationPolicy(max_per_user=1, max_per_tenant=1, max_owners=10), clock)
    for n in range(1000):
        r.admit(f"t{n}", "u")
    assert len(r._seen) == 10  # the bound itself


def test_a_refused_registration_is_not_counted() -> None:
    clock = FakeClock()
    r = Registrations(RegistrationPolicy(max_per_user=1, max_per_tenant=10, window_seconds=10), clock)
    r.admit("acme", "alice")
    for _ in range(5):
        clock.advance(1)
        with pytest.raises(KeyRegistrationLimitError):
            r.admit("acme", "alice")
    clock.advance(5)
    r.admit("acme", "alice")  # the window counts the admitted one only
    r.admit("acme", "bob")
