"""User keys end to end: register (seal and store), list, delete, rotate, and resolve for a call.

A key is resolved for one (tenant, user, provider): from a key reference, from an inline envelope
the application kept, or by looking up the user's registered key. Every path goes through the
envelope's bound context, so a record of another tenant, user or provider never opens, and through
the decrypted-key cache, so concurrent calls for one record share one backend call, and within the
bounds on envelopes that do not open (keys/failures.py), so damaged or forged ones cannot make
a backend call each without end.
"""

from __future__ import annotations

import hashlib
import logging
import os
from typing import Protocol

from sidecar.core.clock import Clock
from sidecar.core.errors import (
    FieldViolation,
    InvalidEnvelopeError,
    KeyContextMismatchError,
    KeyDecryptError,
    SidecarError,
)
from sidecar.core.types import InlineEnvelope, KeyRef, KeySource
from sidecar.keys.backend import KeyBackend, KeyContext, KeyNotConfiguredError
from sidecar.keys.cache import KeyCache, SecretKey, cache_key_for
from sidecar.keys.envelope import Envelope, KeyRecordCorruptError, last_four, seal, unseal
from sidecar.keys.failures import EnvelopeFailures, FailurePolicy
from sidecar.keys.registrations import RegistrationPolicy, Registrations
from sidecar.keys.rotation import Rotation
from sidecar.keys.standing import BackendStanding
from sidecar.keys.store import KeyRecord, KeyStore, key_limit_reached, new_ref, stored_envelope
from sidecar.telemetry.tracing import Tracing

_log = logging.getLogger("sidecar.keys")


class DecryptObserver(Protocol):
    """Told how long each decrypt that reached the key backend took (telemetry.metrics.Metrics)."""

    def key_decrypted(self, seconds: float) -> None: ...


class KeyService:
    def __init__(
        self,
        backend: KeyBackend,
        store: KeyStore,
        cache: KeyCache,
        clock: Clock,
        *,
        observer: DecryptObserver | None = None,
        tracing: Tracing | None = None,
        rotation: Rotation | None = None,
        max_keys_per_user: int = 50,
        failures: EnvelopeFailures | None = None,
        registrations: Registrations | None = None,
    ) -> None:
        self._backend, self._store, self._cache, self._clock = backend, store, cache, clock
        self._observer, self._tracing = observer, tracing or Tracing.disabled()
        self._rotation, self._max_keys = rotation, max_keys_per_user
        self._failures = failures or EnvelopeFailures(FailurePolicy(), clock)
        self._registrations = registrations or Registrations(RegistrationPolicy(), clock)
        self._standing = BackendStanding(backend, clock)

    @property
    def cache(self) -> KeyCache:
        return self._cache

    async def register(self, context: KeyContext, secret: bytes) -> KeyRecord:
        """Envelope the key at once; only the record is stored. Replaces the owner's key of that name;
        a new name past max_keys_per_user is refused before the backend is asked (each key costs a
        KMS or Vault call and a record: a user registering names without end would pay for neither),
        and again by the store as it writes, so registrations running at once cannot pass it. Each
        registration is a backend call: past the user's or tenant's bound in the window it is refused
        before the backend is asked (keys/registrations.py)."""
        await self._room_for(context)
        self._registrations.admit(context.tenant, context.user)
        envelope = await seal(self._backend, context, secret)
        now = self._clock.wall()
        record = KeyRecord(
            ref=new_ref(),
            tenant=context.tenant,
            user=context.user,
            provider=context.provider,
            key_name=context.key_name,
            envelope=envelope.encode(),
            last_four=last_four(secret),
            created_at=now,
            updated_at=now,
        )
        await self._store.put(record, max_per_user=self._max_keys)  # checked again where it is kept
        return record

    async def _room_for(self, context: KeyContext) -> None:
        kept = await self._store.list(context.tenant, context.user)
        same = any(r.provider == context.provider and r.key_name == context.key_name for r in kept)
        if not same and len(kept) >= self._max_keys:
            raise key_limit_reached(len(kept), self._max_keys)

    async def encrypt(self, context: KeyContext, secret: bytes) -> str:
        """An envelope blob for applications that keep their keys themselves."""
        return (await seal(self._backend, context, secret)).encode()

    async def list(self, tenant: str, user: str | None) -> list[KeyRecord]:
        return await self._store.list(tenant, user)

    async def delete(self, tenant: str, ref: str, *, user: str | None = None) -> bool:
        """Delete a tenant's key; with `user`, only when that user owns it (KeyService.DeleteKey)."""
        if user is not None:
            record = await self._store.get(ref)
            if record is None or record.tenant != tenant or record.user != user:
                return False
        return await self._store.delete(tenant, ref)

    async def rotate(self, owner: str = "") -> tuple[int, int]:
        """Rewrap every record's data key to the backend's current version under the rotation lock
        (RotationInProgressError while another run holds it); no provider key is decrypted."""
        if self._rotation is None:
            raise RuntimeError("this key service was built without a rotation (build_keys makes one)")
        report = await self._rotation.run(owner or f"rpc-{os.urandom(6).hex()}")
        return report.rotated, report.failed

    async def resolve(
        self, tenant: str, user: str, provider: str, source: KeySource | None
    ) -> SecretKey | None:
        """The plaintext key for this owner and provider, or None when a lookup finds none."""
        with self._tracing.span("sidecar.key.resolve", {"sidecar.key.provider": provider}):
            return await self._resolve(tenant, user, provider, source)

    async def _resolve(
        self, tenant: str, user: str, provider: str, source: KeySource | None
    ) -> SecretKey | None:
        text = await self._envelope_text(tenant, user, provider, source)
        if text is None:
            return None
        inline = isinstance(source, InlineEnvelope)
        envelope = _decode(text, inline=inline)
        context = KeyContext(tenant, user, provider, envelope.context.key_name)
        wrapped = envelope.wrapped
        # Keyed by the whole envelope too: a tampered copy of a cached envelope is a miss, and fails.
        # Its canonical form, not the text: readers accept any JSON member order and whitespace, and
        # each spelling of one envelope would be a new entry, and a backend call that never fails.
        digest = hashlib.sha256(envelope.encode().encode()).hexdigest()
        self._failures.check_known(digest)  # one that just failed to open: no backend call again
        key = (*cache_key_for(context.aad(), wrapped.backend, wrapped.key_id, wrapped.blob), digest)
        return await self._cache.get(key, lambda: self._decrypt(envelope, context, digest, inline=inline))

    async def _decrypt(
        self, envelope: Envelope, context: KeyContext, digest: str, *, inline: bool
    ) -> bytearray:
        """A cache miss. An inline envelope (the caller's bytes) goes to the backend within its
        tenant's bound on envelopes that fail to open (keys/failures.py); a registered record does not."""
        if not inline:
            return await self._unseal(envelope, context, digest, None)
        async with self._failures.inline_unwrap(context.tenant):
            return await self._unseal(envelope, context, digest, context.tenant)

    async def _unseal(
        self, envelope: Envelope, context: KeyContext, digest: str, tenant: str | None
    ) -> bytearray:
        """The key backend unwraps the data key (timed; a child span when tracing). An inline envelope
        the backend refuses while it accepts the sidecar is the caller's: KEY_RECORD_CORRUPT, not
        KEY_UNAVAILABLE, which pages on-call (keys/standing.py)."""
        started = self._clock.monotonic()
        with self._tracing.span("sidecar.key.decrypt", {"sidecar.key.backend": envelope.wrapped.backend}):
            try:
                secret = await unseal(self._backend, envelope, context)
            except KeyRecordCorruptError:
                self._failures.failed(digest, tenant, damaged=True)
                raise
            except KeyDecryptError as exc:  # refused otherwise (not unreachable, not throttled)
                if tenant is not None and await self._standing.envelope_at_fault(envelope.wrapped, exc):
                    # A caller's made-up envelope; remembered only when that is certain (a key this
                    # sidecar does not use): the backend's standing is inferred, and a valid envelope
                    # refused as an outage began must open again once it is over.
                    self._failures.failed(digest, tenant, damaged=isinstance(exc, KeyNotConfiguredError))
                    raise KeyRecordCorruptError(f"it does not open here: {exc.message}") from exc
                self._failures.failed(digest, tenant, damaged=False)
                raise
        self._standing.opened(envelope.wrapped.key_id)
        if self._observer is not None:
            self._observer.key_decrypted(self._clock.monotonic() - started)
        return secret

    async def providers_of(self, tenant: str, user: str) -> frozenset[str]:
        """The providers the user has registered keys for, read from the records (nothing decrypted)."""
        return frozenset(r.provider for r in await self._store.list(tenant, user))

    async def pinned_provider(self, tenant: str, user: str, source: KeySource) -> str | None:
        """The provider a key the caller brings belongs to, read without decrypting anything: the
        record's (a key_ref of this tenant and user) or the envelope's recorded context (for this
        tenant and user). None when it is not theirs or unreadable: resolving it reports why."""
        if isinstance(source, KeyRef):
            record = await self._store.get(source.ref)
            if record is None or (record.tenant, record.user) != (tenant, user):
                return None
            return record.provider
        try:
            context = Envelope.decode(source.text).context
        except SidecarError:
            return None
        return context.provider if (context.tenant, context.user) == (tenant, user) else None

    async def _envelope_text(
        self, tenant: str, user: str, provider: str, source: KeySource | None
    ) -> str | None:
        if isinstance(source, InlineEnvelope):
            return source.text
        if isinstance(source, KeyRef):
            record = await self._store.get(source.ref)
            if record is None or (record.tenant, record.user, record.provider) != (tenant, user, provider):
                # The same answer whether the record is missing or someone else's: no probing.
                raise KeyContextMismatchError("no key with that reference for this tenant, user and provider")
            return stored_envelope(record)
        record = await self._store.find(tenant, user, provider)
        return None if record is None else stored_envelope(record)

    def start(self) -> None:
        """What the key backend keeps up while the sidecar serves (Vault: renewing its token)."""
        self._backend.start()

    async def aclose(self) -> None:
        if self._rotation is not None:
            await self._rotation.aclose()
        self._cache.close()
        await self._store.aclose()
        await self._backend.aclose()


INLINE_FIELD = "provider_key.envelope"  # the request field an inline envelope comes in (api/convert.py)


def _decode(text: str, *, inline: bool) -> Envelope:
    """The envelope; one the caller sent inline that does not parse names its request field."""
    try:
        return Envelope.decode(text)
    except InvalidEnvelopeError as err:
        if inline:
            err.violations = (FieldViolation(INLINE_FIELD, err.message),)
            err.metadata.setdefault("field", INLINE_FIELD)
        raise
