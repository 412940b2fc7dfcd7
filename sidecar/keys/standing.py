"""Whether the key backend accepts this sidecar: to tell an inline envelope the backend refuses (the
caller's doing) apart from the backend refusing the sidecar (the operator's: a critical alert).

A caller can send any inline envelope. One that names a backend or key this sidecar does not use is
refused without a backend call (KeyNotConfiguredError); one that names the configured key with a
made-up wrapped data key can make the backend answer as it answers a sidecar it refuses (moto's KMS:
AccessDenied, "the ciphertext refers to a key that does not exist"). Both used to be KEY_UNAVAILABLE,
which pages on-call (OrchestratorSidecarKeyBackendFailure). So when the backend refuses an inline
envelope, the sidecar asks whether it still accepts the sidecar under that key: yes when an envelope
under that key opened within `trust_seconds`, else by unwrapping a probe data key of its own (made
once under the current key, one unwrap call per probe, one probe at a time; a refused probe is
trusted for `trust_seconds` too, so a backend that refuses the sidecar is not asked twice per call).
A kept probe the backend refuses is made anew and tried once more (two more calls): it may have been
made under a key version retired since (Vault's `min_decryption_version`).
Accepted: the envelope is the caller's (KEY_RECORD_CORRUPT). Refused, unreachable, or a key it
cannot probe (a previous key nothing opened under lately): the backend's (KEY_UNAVAILABLE, as before).
"""

from __future__ import annotations

import asyncio

from sidecar.core.clock import Clock
from sidecar.core.errors import KeyDecryptError, SidecarError
from sidecar.keys.backend import KeyBackend, KeyContext, KeyNotConfiguredError, WrappedKey

PROBE_CONTEXT = KeyContext(tenant="-", user="-", provider="-", key_name="sidecar-backend-probe")


class BackendStanding:
    def __init__(self, backend: KeyBackend, clock: Clock, *, trust_seconds: float = 10.0) -> None:
        self._backend, self._clock, self._trust = backend, clock, trust_seconds
        self._opened: dict[str, float] = {}  # key id -> when an unwrap under it last worked
        self._refused: dict[str, float] = {}  # key id -> when the probe under it was last refused
        self._probe: WrappedKey | None = None
        self._probing = asyncio.Lock()

    def opened(self, key_id: str) -> None:
        """An unwrap under `key_id` worked (only keys the sidecar is configured with ever do)."""
        self._opened[key_id] = self._clock.monotonic()
        self._refused.pop(key_id, None)

    async def envelope_at_fault(self, wrapped: WrappedKey, refusal: SidecarError) -> bool:
        """Whether the backend's `refusal` of this inline envelope's wrapped key is the envelope's
        fault: it names a key this sidecar does not use, or the backend still accepts the sidecar."""
        if isinstance(refusal, KeyNotConfiguredError):
            return True
        async with self._probing:  # concurrent refusals wait for one probe
            if self._recent(self._opened, wrapped.key_id):
                return True
            if self._recent(self._refused, wrapped.key_id):
                return False  # the backend refused the sidecar moments ago: no probe again
            return await self._probed(wrapped.key_id)

    def _recent(self, times: dict[str, float], key_id: str) -> bool:
        at = times.get(key_id)
        return at is not None and self._clock.monotonic() - at < self._trust

    async def _probed(self, key_id: str) -> bool:
        """Unwrap the sidecar's own probe data key under the current key; False when the backend
        refuses or cannot be reached, or `key_id` is not the current key (nothing to probe it with)."""
        try:
            accepted = await self._probe_opens(key_id)
        except SidecarError:
            if len(self._refused) < 64:  # configured keys only reach here; bounded all the same
                self._refused[key_id] = self._clock.monotonic()
            return False
        if accepted:
            self.opened(key_id)
        return accepted

    async def _probe_opens(self, key_id: str) -> bool:
        """Whether the probe, under `key_id`, unwraps. A probe kept from before that the backend
        refuses is made again once and tried again: made under a key version retired since (Vault's
        `min_decryption_version`), it would answer "refused" while the backend accepts the sidecar."""
        kept = self._probe is not None
        probe = self._probe if self._probe is not None else await self._new_probe()
        if probe.key_id != key_id:
            return False
        try:
            await self._unwrap(probe)
        except KeyDecryptError:
            if not kept:
                raise
            probe = await self._new_probe()  # refused too when the backend refuses the sidecar
            if probe.key_id != key_id:
                return False
            await self._unwrap(probe)
        return True

    async def _new_probe(self) -> WrappedKey:
        data_key, self._probe = await self._backend.generate_data_key(PROBE_CONTEXT)
        data_key[:] = bytes(len(data_key))
        return self._probe

    async def _unwrap(self, probe: WrappedKey) -> None:
        data_key = await self._backend.decrypt_data_key(probe, PROBE_CONTEXT)
        data_key[:] = bytes(len(data_key))
