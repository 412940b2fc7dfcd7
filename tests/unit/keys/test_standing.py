"""Whether the key backend accepts the sidecar, on FakeClock: a recent unwrap under the key vouches
for it; else one probe unwrap (of the sidecar's own data key, made once) answers for concurrent
refusals; a refused probe, or a key it cannot probe, leaves the refusal the backend's."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sidecar.core.clock import FakeClock
from sidecar.core.errors import KeyDecryptError
from sidecar.keys.backend import KeyContext, KeyNotConfiguredError, WrappedKey
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.standing import BackendStanding

REFUSED = KeyDecryptError("AWS KMS refused the data key (AccessDeniedException)")


class Backend(LocalKekBackend):
    generated = unwrapped = 0
    refuse = False

    async def generate_data_key(self, context: KeyContext) -> tuple[bytearray, WrappedKey]:
        self.generated += 1
        return await super().generate_data_key(context)

    async def decrypt_data_key(self, wrapped: WrappedKey, context: KeyContext) -> bytearray:
        self.unwrapped += 1
        await asyncio.sleep(0)
        if self.refuse:
            raise REFUSED
        return await super().decrypt_data_key(wrapped, context)


def made(tmp_path: Path) -> tuple[Backend, WrappedKey]:
    kek = tmp_path / "kek"
    LocalKekBackend.generate_file(kek)
    backend = Backend.from_file(kek)
    return backend, WrappedKey(backend.name, backend._key_id, b"made up")


async def test_one_probe_answers_for_concurrent_refusals_then_trusts_for_a_while(tmp_path: Path) -> None:
    backend, wrapped = made(tmp_path)
    clock = FakeClock()
    standing = BackendStanding(backend, clock, trust_seconds=10)
    assert all(await asyncio.gather(*(standing.envelope_at_fault(wrapped, REFUSED) for _ in range(20))))
    assert (backend.generated, backend.unwrapped) == (1, 1)
    clock.advance(9)
    assert await standing.envelope_at_fault(wrapped, REFUSED)
    assert backend.unwrapped == 1
    clock.advance(1)
    backend.refuse = True  # the backend now refuses the sidecar: its refusals are the backend's
    assert not await standing.envelope_at_fault(wrapped, REFUSED)
    # the kept probe refused, one made anew (it may have been made under a version retired since)
    assert (backend.generated, backend.unwrapped) == (2, 3)
    assert not await standing.envelope_at_fault(wrapped, REFUSED)  # refused moments ago: no probe
    assert backend.unwrapped == 3
    clock.advance(10)
    backend.refuse = False  # the backend accepts the sidecar again
    assert await standing.envelope_at_fault(wrapped, REFUSED)
    assert (backend.generated, backend.unwrapped) == (2, 4)


async def test_a_key_not_configured_is_the_envelopes_and_another_key_cannot_be_probed(tmp_path: Path) -> None:
    backend, wrapped = made(tmp_path)
    standing = BackendStanding(backend, FakeClock())
    assert await standing.envelope_at_fault(wrapped, KeyNotConfiguredError("another key"))
    assert backend.unwrapped == 0
    previous = WrappedKey(backend.name, "a-previous-key", b"made up")
    assert not await standing.envelope_at_fault(previous, REFUSED)
    standing.opened("a-previous-key")  # an envelope under it opened just now
    assert await standing.envelope_at_fault(previous, REFUSED)


class Retiring(Backend):
    """Vault's transit key rotated and `min_decryption_version` raised: what was wrapped before
    `retire()` is refused, what is wrapped after opens."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wrapped: list[bytes] = []
        self.retired: set[bytes] = set()

    async def generate_data_key(self, context: KeyContext) -> tuple[bytearray, WrappedKey]:
        data_key, wrapped = await super().generate_data_key(context)
        self.wrapped.append(wrapped.blob)
        return data_key, wrapped

    async def decrypt_data_key(self, wrapped: WrappedKey, context: KeyContext) -> bytearray:
        if wrapped.blob in self.retired:
            self.unwrapped += 1
            raise REFUSED
        return await super().decrypt_data_key(wrapped, context)

    def retire(self) -> None:
        self.retired.update(self.wrapped)


async def test_a_probe_made_under_a_key_version_retired_since_is_made_again(tmp_path: Path) -> None:
    """The probe data key is made once; a key version retired since refuses it while the backend
    still accepts the sidecar: a new probe under the current version answers, and keeps answering."""
    kek = tmp_path / "kek"
    LocalKekBackend.generate_file(kek)
    backend = Retiring.from_file(kek)
    assert isinstance(backend, Retiring)
    stale = WrappedKey(backend.name, backend._key_id, b"made up under the retired version")
    clock = FakeClock()
    standing = BackendStanding(backend, clock, trust_seconds=10)
    assert await standing.envelope_at_fault(stale, REFUSED)  # the probe is made and opens
    backend.retire()
    clock.advance(10)
    assert await standing.envelope_at_fault(stale, REFUSED)  # the backend still accepts the sidecar
    assert backend.generated == 2
    clock.advance(10)
    assert await standing.envelope_at_fault(stale, REFUSED)
    assert backend.generated == 2  # the new probe is kept
