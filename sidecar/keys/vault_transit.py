"""Vault (or OpenBao) transit as the key-encryption backend: datakey, decrypt and rewrap under one key.

The transit key must be a *derived* key, so that the key context becomes the derivation context and
Vault itself refuses to unwrap a data key for another tenant, user, provider or key name:

    bao write -f transit/keys/NAME derived=true type=aes256-gcm96
    (or: vault write -f transit/keys/NAME derived=true type=aes256-gcm96)

The token needs `update` on transit/datakey/plaintext/NAME, transit/decrypt/NAME and
transit/rewrap/NAME. Rotate with `bao write -f transit/keys/NAME/rotate`, rewrap the stored keys,
then raise `min_decryption_version`. Moving to another transit key (the old one under
`previous_key_names`) also needs transit/decrypt/OLD and transit/encrypt/NEW while the records move.

hvac is imported only when this backend is built, and its blocking calls run on a small thread pool
of this backend's own, never on the event loop. Authentication is a token (renewed ahead of its
expiry once `start()` has run: keys/vault_token.py), a token file another process keeps (Vault
Agent's sink: read again when it changes or the token is refused), or Kubernetes (the pod's
service-account JWT, re-read and re-used to log in again when the token is refused).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from sidecar.core.clock import Clock, SystemClock
from sidecar.core.errors import (
    KeyBackendUnavailableError,
    KeyContextMismatchError,
    KeyDecryptError,
    SidecarError,
)
from sidecar.keys.backend import DATA_KEY_BYTES, KeyContext, KeyNotConfiguredError, WrappedKey
from sidecar.keys.pool import BlockingPool
from sidecar.keys.vault_token import RenewalObserver, TokenFile, TokenLease, TokenRenewal

RETRY_AFTER_SECONDS = 1.0
TIMEOUT_SECONDS = 10
# The whole of one call: a Kubernetes login, the operation, and once more both when the token was
# refused; TIMEOUT_SECONDS is per connect and per read, which an answer trickled a byte at a time
# never trips (keys/pool.py).
CALL_LIMIT_SECONDS = 4 * TIMEOUT_SECONDS + 5.0
DEFAULT_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"

# What transit says when a ciphertext does not open: AES-GCM authentication failed (another
# derivation context, or a damaged blob), or the blob is not even a ciphertext (truncated, edited).
# `envelope.unseal` tells the two apart by the envelope's recorded context.
_CIPHERTEXT = re.compile(rb"[\x21-\x7e]+")  # "vault:v1:" and base64: printable ASCII, never empty
_MISMATCH_MARKERS = ("cipher: message authentication failed", "unable to decrypt", "invalid ciphertext")


class VaultTransitBackend:
    """Wraps data keys under one derived transit key. `WrappedKey.blob` is the "vault:vN:..." ciphertext.

    Give exactly one of `token`, `token_file` and `kubernetes_role`, or a ready `client` (an
    `hvac.Client`, for tests; `namespace` and `url` then come from that client, and the backend does
    not close it).
    """

    name: ClassVar[str] = "vault"

    def __init__(
        self,
        key_name: str,
        *,
        url: str,
        token: str | None = None,
        token_file: Path | None = None,
        kubernetes_role: str | None = None,
        kubernetes_jwt_path: str = DEFAULT_JWT_PATH,
        namespace: str | None = None,
        mount_point: str = "transit",
        previous_key_names: Sequence[str] = (),
        max_workers: int = 4,
        client: Any | None = None,
        clock: Clock | None = None,
        call_limit_seconds: float = CALL_LIMIT_SECONDS,
        renewal_observer: RenewalObserver | None = None,
    ) -> None:
        given = sum(x is not None for x in (token, token_file, kubernetes_role))
        if given > 1:
            raise ValueError("give one of a Vault token, a token file or a Kubernetes role")
        if client is None and given == 0:
            raise ValueError("Vault needs a token, a token file or a Kubernetes role")
        import hvac  # lazily: the optional `vault` extra costs nothing unless configured
        import hvac.exceptions
        import requests.exceptions

        self._key_name, self._mount = key_name, mount_point
        self._usable = frozenset((key_name, *previous_key_names))
        self._role, self._jwt_path = kubernetes_role, Path(kubernetes_jwt_path)
        self._vault_errors, self._http_errors = hvac.exceptions, requests.exceptions
        self._owns_client = client is None
        self._token_file = None if token_file is None else TokenFile(token_file)
        if self._token_file is not None:
            token = self._token_file.read()  # OSError, ValueError: a start-up error naming the file
        self._client = client or hvac.Client(
            url=url, token=token, namespace=namespace, timeout=TIMEOUT_SECONDS
        )
        if client is not None and self._token_file is not None:
            self._client.token = token  # a client of the caller's: the file's token, as for our own
        self._login_lock = threading.Lock()
        self._logged_in = False
        clock = clock or SystemClock()
        self._pool = BlockingPool(
            "vault-transit", workers=max_workers, limit=call_limit_seconds, clock=clock, what="Vault"
        )
        # A token given as such may expire: renew it. A Kubernetes login's token is logged in again,
        # and a token file's writer (Vault Agent) keeps its token alive.
        self._renewal = (
            None
            if kubernetes_role is not None or token_file is not None
            else TokenRenewal(self._token_lookup, self._token_renew, clock, renewal_observer)
        )

    def __repr__(self) -> str:
        return f"VaultTransitBackend(key_name={self._key_name!r}, mount_point={self._mount!r})"

    async def generate_data_key(self, context: KeyContext) -> tuple[bytearray, WrappedKey]:
        ctx = _derivation_context(context)
        reply = await self._call(
            lambda transit: transit.generate_data_key(
                self._key_name, key_type="plaintext", context=ctx, mount_point=self._mount
            )
        )
        ciphertext, plaintext = _data(reply, "ciphertext").encode(), _plaintext(reply)
        if len(plaintext) != DATA_KEY_BYTES:
            raise KeyDecryptError(f"Vault returned a {len(plaintext)}-byte data key")
        return plaintext, WrappedKey(self.name, self._key_name, ciphertext)

    async def decrypt_data_key(self, wrapped: WrappedKey, context: KeyContext) -> bytearray:
        ciphertext, ctx = self._ciphertext(wrapped), _derivation_context(context)
        reply = await self._call(
            lambda transit: transit.decrypt_data(
                wrapped.key_id, ciphertext, context=ctx, mount_point=self._mount
            )
        )
        return _plaintext(reply)

    async def rewrap(self, wrapped: WrappedKey, context: KeyContext) -> WrappedKey:
        """To the current version of the current transit key. Transit's rewrap stays within one key
        (the plaintext never leaves Vault); from a previous key (`previous_key_names`) the data key is
        unwrapped under it and wrapped under the current key, and its buffer wiped at once."""
        ciphertext, ctx = self._ciphertext(wrapped), _derivation_context(context)
        if wrapped.key_id != self._key_name:
            return await self._moved(wrapped, context)
        reply = await self._call(
            lambda transit: transit.rewrap_data(
                wrapped.key_id, ciphertext, context=ctx, mount_point=self._mount
            )
        )
        return WrappedKey(self.name, wrapped.key_id, _data(reply, "ciphertext").encode())

    async def _moved(self, wrapped: WrappedKey, context: KeyContext) -> WrappedKey:
        data_key = await self.decrypt_data_key(wrapped, context)
        try:
            plaintext, ctx = base64.b64encode(data_key).decode("ascii"), _derivation_context(context)
        finally:
            data_key[:] = bytes(len(data_key))
        reply = await self._call(
            lambda transit: transit.encrypt_data(
                self._key_name, plaintext, context=ctx, mount_point=self._mount
            )
        )
        return WrappedKey(self.name, self._key_name, _data(reply, "ciphertext").encode())

    def start(self) -> None:
        """Start renewing the token (token auth): lookup-self, then renew-self ahead of its expiry."""
        if self._renewal is not None:
            self._renewal.start()

    async def _token_lookup(self) -> TokenLease:
        reply = await self._guarded(lambda: self._client.auth.token.lookup_self())
        return _lease(reply, "data", "ttl")

    async def _token_renew(self) -> TokenLease:
        reply = await self._guarded(lambda: self._client.auth.token.renew_self())
        return _lease(reply, "auth", "lease_duration")

    async def aclose(self) -> None:
        """Stop renewing the token; wait for calls in flight (at most the call limit), then release the
        threads (and the client, if this backend built it)."""
        if self._renewal is not None:
            await self._renewal.aclose()
        await self._pool.aclose()
        if self._owns_client:
            self._client.adapter.close()

    def _ciphertext(self, wrapped: WrappedKey) -> str:
        if wrapped.backend != self.name:
            raise KeyNotConfiguredError(
                f"the data key was wrapped by the {wrapped.backend!r} backend, not {self.name!r}",
                metadata={"backend": wrapped.backend},
            )
        if wrapped.key_id not in self._usable:
            raise KeyNotConfiguredError(
                "the data key is wrapped under a transit key this sidecar is not configured to use "
                "(settings.keys.vault.key_name or previous_key_names)"
            )
        if not _CIPHERTEXT.fullmatch(wrapped.blob):
            # Damaged (a flipped top bit, emptied): it opens under no context, as Vault says of a
            # ciphertext that fails authentication; `unseal` reports it as a damaged record.
            raise KeyContextMismatchError("the wrapped data key is not a Vault transit ciphertext")
        return wrapped.blob.decode("ascii")

    async def _call(self, operation: Callable[[Any], Any]) -> Any:
        return await self._guarded(functools.partial(self._blocking, operation))

    async def _guarded(self, blocking: Callable[[], Any]) -> Any:
        """`blocking()` on the pool, hvac's and requests' errors classified."""
        try:
            return await self._pool.run(blocking)
        except SidecarError:
            raise
        except (self._http_errors.ConnectionError, self._http_errors.Timeout) as exc:
            raise KeyBackendUnavailableError(
                "Vault cannot be reached", retry_after=RETRY_AFTER_SECONDS
            ) from exc
        except self._vault_errors.VaultError as exc:
            raise self._classify(exc) from exc
        except self._http_errors.RequestException as exc:  # invalid URL, too many redirects: misconfiguration
            raise KeyDecryptError(f"Vault client error ({type(exc).__name__})") from exc

    def _blocking(self, operation: Callable[[Any], Any]) -> Any:
        """Runs on the pool. Logs in first with Kubernetes auth (or reads a changed token file), and
        once more if the token was refused: a Kubernetes login's token may have expired or been
        revoked, and Vault Agent may have written a new token to the file."""
        self._login(force=False)
        try:
            return operation(self._client.secrets.transit)
        except self._vault_errors.Forbidden:
            if not self._login(force=True):
                raise  # the same token again would be refused again
        return operation(self._client.secrets.transit)

    def _login(self, *, force: bool) -> bool:
        """Whether the token may have changed: a Kubernetes login, or a token file read again."""
        if self._token_file is not None:
            return self._reread(force=force)
        if self._role is None:
            return False
        with self._login_lock:
            if self._logged_in and not force:
                return False
            try:
                jwt = self._jwt_path.read_text().strip()  # projected tokens rotate: read it every time
            except OSError as exc:
                raise KeyDecryptError("cannot read the Kubernetes service account token") from exc
            self._client.auth.kubernetes.login(self._role, jwt)
            self._logged_in = True
            return True

    def _reread(self, *, force: bool) -> bool:
        assert self._token_file is not None
        with self._login_lock:
            if not force and not self._token_file.changed():
                return False
            try:
                token = self._token_file.read()
            except (OSError, ValueError) as exc:  # neither names the token
                raise KeyDecryptError(
                    "cannot read the Vault token file (settings.keys.vault.token_file)"
                ) from exc
            changed = bool(token != self._client.token)
            self._client.token = token
            return changed

    def _classify(self, exc: Exception) -> SidecarError:
        """The typed error for an hvac error. Messages name the error class, never key material."""
        errors = self._vault_errors
        kind = type(exc).__name__
        if isinstance(exc, errors.InvalidRequest) and any(m in str(exc) for m in _MISMATCH_MARKERS):
            return KeyContextMismatchError("the key context does not match")
        transient = (
            errors.VaultDown,  # sealed, or in maintenance
            errors.InternalServerError,
            errors.RateLimitExceeded,
            errors.BadGateway,
            errors.PreconditionFailed,  # a performance standby not yet caught up
            errors.VaultNotInitialized,
        )
        if isinstance(exc, transient):
            return KeyBackendUnavailableError(
                f"Vault is unavailable ({kind})",
                metadata={"backendError": kind},
                retry_after=RETRY_AFTER_SECONDS,
            )
        # Forbidden, Unauthorized, InvalidPath, InvalidRequest (unknown key, too-old version, no ciphertext)
        return KeyDecryptError(f"Vault refused the data key ({kind})", metadata={"backendError": kind})


def _data(reply: Any, name: str) -> str:
    """A string member of a transit answer's `data`. hvac hands on a 200 that is not JSON (a proxy's
    page) as the raw response, and JSON as it came: anything else is a malformed answer."""
    data = reply.get("data") if isinstance(reply, dict) else None
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str):
        raise _malformed(name)
    return value


def _plaintext(reply: Any) -> bytearray:
    try:
        return bytearray(base64.b64decode(_data(reply, "plaintext"), validate=True))
    except binascii.Error:  # its message never holds the text
        raise _malformed("plaintext") from None


def _malformed(name: str) -> KeyBackendUnavailableError:
    return KeyBackendUnavailableError(
        f"Vault sent a malformed answer (no {name})",
        metadata={"backendError": "MalformedAnswer"},
        retry_after=RETRY_AFTER_SECONDS,
    )


def _lease(reply: Any, section: str, member: str) -> TokenLease:
    """The TTL and renewability of a token lookup (`data`) or renewal (`auth`) answer."""
    body = reply.get(section) if isinstance(reply, dict) else None
    ttl = body.get(member) if isinstance(body, dict) else None
    renewable = body.get("renewable") if isinstance(body, dict) else None
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not isinstance(renewable, bool):
        raise _malformed(f"{section}.{member}")
    warnings = reply.get("warnings") if isinstance(reply, dict) else None
    # 'TTL of "1h" exceeded the effective max_ttl of "20m"; TTL value is capped accordingly'
    capped = isinstance(warnings, list) and any(isinstance(w, str) and "max_ttl" in w for w in warnings)
    return TokenLease(float(ttl), renewable, capped)


def _derivation_context(context: KeyContext) -> str:
    return base64.b64encode(context.aad()).decode("ascii")
