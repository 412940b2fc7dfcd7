"""The keys one user may keep: a new name past settings.keys.max_keys_per_user is refused before the
key backend is asked; replacing a kept name, or another user's keys, are not limited by it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sidecar.core.clock import FakeClock
from sidecar.core.errors import KeyLimitReachedError
from sidecar.keys.backend import KeyContext
from sidecar.keys.cache import KeyCache, KeyCachePolicy
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.registrations import RegistrationPolicy, Registrations
from sidecar.keys.service import KeyService
from sidecar.keys.store import SqliteKeyStore


class CountingBackend(LocalKekBackend):
    """The local backend, counting the data keys it is asked for (a KMS or Vault call each)."""

    asked = 0

    async def generate_data_key(self, context: KeyContext) -> tuple[bytes, bytes]:
        CountingBackend.asked += 1
        return await super().generate_data_key(context)


@pytest.fixture
def service(tmp_path: Path) -> KeyService:
    kek = tmp_path / "kek"
    LocalKekBackend.generate_file(kek)
    clock = FakeClock()
    backend = CountingBackend.from_file(kek)
    store = SqliteKeyStore(tmp_path / "keys.db", clock)
    roomy = Registrations(RegistrationPolicy(max_per_user=100), clock)  # this file: the key count
    return KeyService(
        backend, store, KeyCache(KeyCachePolicy(), clock), clock, max_keys_per_user=3, registrations=roomy
    )


def ctx(user: str, name: str) -> KeyContext:
    return KeyContext(tenant="acme", user=user, provider="openai", key_name=name)


async def test_a_new_name_past_the_limit_is_refused_before_the_backend(service: KeyService) -> None:
    for name in ("a", "b", "c"):
        await service.register(ctx("alice", name), b"sk-0123456789abcdef")
    asked = CountingBackend.asked
    with pytest.raises(KeyLimitReachedError) as info:
        await service.register(ctx("alice", "d"), b"sk-0123456789abcdef")
    assert info.value.code.value == "RESOURCE_EXHAUSTED" and info.value.metadata["maxKeys"] == "3"
    assert CountingBackend.asked == asked  # no KMS call for a refused key
    await service.register(ctx("alice", "b"), b"sk-replaced-0123456789")  # a kept name: replaced
    await service.register(ctx("bob", "a"), b"sk-0123456789abcdef")  # another user's own limit
    assert len(await service.list("acme", "alice")) == 3
    await service.aclose()


async def test_concurrent_registrations_of_new_names_keep_to_the_limit(service: KeyService) -> None:
    """Each registration checks the count, then waits for its data key, then stores: checked
    only before the wait, twenty at once all saw room and a user kept twenty keys past a limit of 3."""
    names = [f"k{i}" for i in range(20)]
    results = await asyncio.gather(
        *(service.register(ctx("alice", n), b"sk-0123456789abcdef") for n in names), return_exceptions=True
    )
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 3
    assert all(isinstance(r, KeyLimitReachedError) for r in results if isinstance(r, BaseException))
    assert len(await service.list("acme", "alice")) == 3
    await service.aclose()
