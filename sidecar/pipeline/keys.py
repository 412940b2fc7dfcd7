"""User keys: per attempt, put the caller's own provider key on the call, as its route allows.

A key the caller brings (a key_ref or an envelope) belongs to one provider: the resolve step
(pipeline/resolve.py) pins the call to that provider's deployments, so a failure of one of them is
reported as itself, never hidden behind a fallback to a deployment the key cannot open. This layer
runs inside the route layer, because the key depends on the deployment's provider. `never` routes use
platform keys and refuse a key the caller brings; `preferred` routes use the caller's key when it
has one (brought along, or registered for that provider) and the platform key otherwise;
`required` routes fail without one, and never fall back to the platform key or anyone else's.
When the upstream refuses or rate-limits a user's own key, that is the caller's matter: it goes
back to the caller as such, and never counts against the deployment's breaker or health. A rate
limit's Retry-After pauses that key alone on that deployment (sidecar/routing/key_pause.py): until
it is over, a call with the key fails here at once, the upstream not asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Mapping

from sidecar.core.errors import (
    FieldViolation,
    InvalidRequestError,
    KeysDisabledError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    SidecarError,
    UserKeyRateLimitedError,
    UserKeyRejectedError,
    UserKeyRequiredError,
)
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.types import Call, Chunk, Target
from sidecar.keys.cache import SecretKey
from sidecar.keys.service import KeyService
from sidecar.routing.key_pause import KeyPauses

UserKeyMode = str  # "never" | "preferred" | "required" (config/routing.py)


class KeyLayer:
    def __init__(
        self,
        inner: Handler,
        *,
        keys: KeyService | None,
        modes: Mapping[str, UserKeyMode],
        pauses: KeyPauses | None = None,
    ) -> None:
        self._inner, self._keys, self._modes, self._pauses = inner, keys, modes, pauses

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        target = call.target
        assert target is not None, "the key layer runs inside the route layer"
        mode = self._modes.get(target.route, "never")
        if mode == "never" and call.key_source is None:
            return self._inner(call)  # the common case adds no generator hop per chunk
        return self._keyed(call, target, mode)

    async def _keyed(self, call: Call, target: Target, mode: UserKeyMode) -> AsyncGenerator[Chunk, None]:
        if mode == "never":
            raise InvalidRequestError(
                [FieldViolation("provider_key", f"route {target.route!r} does not take user keys")]
            )
        call, key = await self._with_key(call, required=mode == "required")
        if key is None:
            async with inner_stream(self._inner, call) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        try:
            if (wait := self._paused(target, key)) is not None:  # the upstream said wait: not asked
                raise _rate_limited(target, wait)
            async with inner_stream(self._inner, call) as chunks:
                async for chunk in chunks:
                    yield chunk
        except ProviderAuthError as err:  # the user's key, not the deployment: no breaker, no fallback
            raise UserKeyRejectedError(
                f"the {target.provider} upstream refused the user's own key",
                metadata={"provider": target.provider},
            ) from err
        except ProviderRateLimitedError as err:
            self._pause(target, key, err.retry_after)
            raise _rate_limited(target, err.retry_after) from err
        except ProviderError as err:
            _scrub(err, key)  # an upstream that echoes the key, in any shape
            raise
        finally:
            key.wipe()  # this call's own copy (lease): the cached key is the cache's

    async def _with_key(self, call: Call, *, required: bool) -> tuple[Call, SecretKey | None]:
        assert call.target is not None
        if self._keys is None:
            if call.key_source is not None or required:
                raise KeysDisabledError("this sidecar has no key backend configured (settings.keys.backend)")
            return call, None
        if not (call.tenant_id and call.user_id):
            if call.key_source is not None or required:
                raise InvalidRequestError(
                    [FieldViolation("user_id", "user keys are bound to a tenant_id and user_id: set both")]
                )
            return call, None
        key = await self._keys.resolve(call.tenant_id, call.user_id, call.target.provider, call.key_source)
        if key is None:
            if required:
                raise UserKeyRequiredError(
                    f"route {call.target.route!r} requires the user's own {call.target.provider} key",
                    metadata={"provider": call.target.provider},
                )
            return call, None
        return dataclasses.replace(call, api_key=key), key

    def _paused(self, target: Target, key: SecretKey) -> float | None:
        """Seconds the key still waits on the deployment (the upstream's Retry-After), or None."""
        if self._pauses is None or not len(self._pauses):  # none paused: the key is not even read
            return None
        return self._pauses.remaining(target.deployment, key.reveal())

    def _pause(self, target: Target, key: SecretKey, retry_after: float | None) -> None:
        """Keep the upstream's Retry-After for this key on this deployment. Never raises (the error
        path): a key that cannot be read is not paused."""
        if self._pauses is None or retry_after is None:
            return
        try:
            secret = key.reveal()
        except (RuntimeError, SidecarError):
            return
        self._pauses.pause(target.deployment, secret, retry_after)


def _rate_limited(target: Target, retry_after: float | None) -> UserKeyRateLimitedError:
    return UserKeyRateLimitedError(
        f"the user's own {target.provider} key is rate limited by the provider",
        metadata={"provider": target.provider},
        retry_after=retry_after,
    )


def _scrub(err: ProviderError, key: SecretKey) -> None:
    """Remove the exact key from an upstream error's text, beyond what pattern redaction catches.

    Never raises: this runs on the error path, where a failure of its own would turn the upstream's
    (perhaps retryable) error into an INTERNAL one. A key that cannot be read is not in the text."""
    try:
        secret = key.reveal()
    except (RuntimeError, SidecarError):
        return
    if secret and secret in err.message:
        err.message = err.message.replace(secret, "[redacted]")
        err.args = (err.message,)
