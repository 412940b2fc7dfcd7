"""`LocalKekBackend`: data keys wrapped under a key-encryption key (KEK) held in process. NOT for production.

The KEK sits on local disk and in this process's memory, with no audit log, access policy or hardware
boundary: use it for development, tests and demos. Production uses KMS or Vault transit.

KEK file: exactly 32 raw bytes, or the base64 (standard or URL-safe alphabet, padding optional) of 32
bytes with surrounding whitespace ignored. `generate_file` writes standard base64 and a newline, mode
0600, and never overwrites an existing file.

Wrapped blob, 61 bytes (`||` is concatenation)::

    blob = kek_version (1 byte, 1..255) || nonce (12 random bytes)
           || AES-256-GCM(KEK[kek_version]).encrypt(nonce, data_key, aad=KeyContext.aad())   (32 + 16 bytes)

`WrappedKey.backend` is "local" and `key_id` is the backend's `key_id` (default "local"); the KEK
version travels inside the blob.

Rotation: construct with the old and a new version, the new one `current`; `rewrap` every record
(unwrap under its version, wrap under `current`); then construct without the old version. Records not
rewrapped by then fail with KeyDecryptError.

Errors: AES-GCM cannot tell a wrong context from a tampered blob, so an authentication failure (or a
blob of the wrong length) is KeyContextMismatchError, as KMS and Vault report it. Another owner's
envelope is caught earlier by `envelope.unseal` from its recorded context, so there a refusal means a
damaged record (KeyRecordCorruptError). AES-GCM over 32 bytes is trivial, so everything runs on the
event loop.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sidecar.core.errors import KeyBackendUnavailableError, KeyContextMismatchError
from sidecar.keys.backend import DATA_KEY_BYTES, KeyContext, KeyNotConfiguredError, WrappedKey

KEK_BYTES = 32
_NONCE_BYTES = 12
_BLOB_BYTES = 1 + _NONCE_BYTES + DATA_KEY_BYTES + 16

_log = logging.getLogger("sidecar.keys")


class LocalKekBackend:
    """A `KeyBackend` whose KEKs (`version -> 32 bytes`) live in memory. `current` wraps new keys."""

    name: ClassVar[str] = "local"

    def __init__(self, keks: Mapping[int, bytes], current: int, *, key_id: str = "local") -> None:
        for version, kek in keks.items():
            if not 1 <= version <= 255:
                raise ValueError(f"local KEK version must be 1..255, got {version}")
            if len(kek) != KEK_BYTES:
                raise ValueError(f"local KEK version {version} is not {KEK_BYTES} bytes")
        if current not in keks:
            raise ValueError(f"current local KEK version {current} is not among the loaded versions")
        self._ciphers = {version: AESGCM(kek) for version, kek in keks.items()}
        self._current = current
        self._key_id = key_id
        self._closed = False
        _log.warning(
            "LocalKekBackend keeps its key-encryption key on local disk and in memory: "
            "for development and tests only, NOT for production; use KMS or Vault transit",
            extra={"backend": self.name, "kekVersions": sorted(keks), "currentKekVersion": current},
        )

    @classmethod
    def from_files(cls, files: Mapping[int, Path], current: int, *, key_id: str = "local") -> LocalKekBackend:
        """Load each version's KEK from its file (see the module docstring for the file format)."""
        return cls({version: _read_kek(path) for version, path in files.items()}, current, key_id=key_id)

    @classmethod
    def from_file(cls, path: Path, *, key_id: str = "local") -> LocalKekBackend:
        """A single KEK file as version 1."""
        return cls.from_files({1: path}, 1, key_id=key_id)

    @staticmethod
    def generate_file(path: Path) -> None:
        """Write a new random KEK (base64 and a newline) with mode 0600; fails if `path` exists."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o600)  # exactly 0600, whatever the umask
            out.write(base64.b64encode(os.urandom(KEK_BYTES)) + b"\n")

    def __repr__(self) -> str:
        versions = sorted(self._ciphers)
        return f"LocalKekBackend(key_id={self._key_id!r}, versions={versions}, current={self._current})"

    async def generate_data_key(self, context: KeyContext) -> tuple[bytearray, WrappedKey]:
        data_key = bytearray(os.urandom(DATA_KEY_BYTES))
        return data_key, self._wrap(data_key, context)

    async def decrypt_data_key(self, wrapped: WrappedKey, context: KeyContext) -> bytearray:
        return self._unwrap(wrapped, context)

    async def rewrap(self, wrapped: WrappedKey, context: KeyContext) -> WrappedKey:
        data_key = self._unwrap(wrapped, context)
        try:
            return self._wrap(data_key, context)
        finally:
            data_key[:] = bytes(len(data_key))

    def start(self) -> None:
        """Nothing runs in the background."""

    async def aclose(self) -> None:
        self._closed = True
        self._ciphers.clear()

    def _wrap(self, data_key: bytearray, context: KeyContext) -> WrappedKey:
        cipher = self._cipher(self._current)
        nonce = os.urandom(_NONCE_BYTES)
        blob = bytes([self._current]) + nonce + cipher.encrypt(nonce, data_key, context.aad())
        return WrappedKey(backend=self.name, key_id=self._key_id, blob=blob)

    def _unwrap(self, wrapped: WrappedKey, context: KeyContext) -> bytearray:
        if wrapped.backend != self.name or wrapped.key_id != self._key_id:
            raise KeyNotConfiguredError(
                f"data key was not wrapped by local KEK {self._key_id!r}", metadata={"keyId": self._key_id}
            )
        blob = wrapped.blob
        if len(blob) != _BLOB_BYTES:  # truncated or padded: it cannot open under any context
            raise KeyContextMismatchError("the wrapped data key does not open under this key context")
        version, nonce, sealed = blob[0], blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        cipher = self._cipher(version)
        try:
            return bytearray(cipher.decrypt(nonce, sealed, context.aad()))
        except InvalidTag as exc:  # as KMS and Vault report it: damaged, or another key context
            raise KeyContextMismatchError(
                "the wrapped data key does not open under this key context",
                metadata={"keyId": self._key_id, "kekVersion": str(version)},
            ) from exc

    def _cipher(self, version: int) -> AESGCM:
        if self._closed:
            raise KeyBackendUnavailableError("local key backend is closed")
        cipher = self._ciphers.get(version)
        if cipher is None:
            raise KeyNotConfiguredError(
                f"local KEK version {version} is not loaded (retired?)",
                metadata={"keyId": self._key_id, "kekVersion": str(version)},
            )
        return cipher


_MAX_KEK_FILE = 4096  # a KEK is 32 bytes, or about 44 in base64: anything longer is not one


def _read_kek(path: Path) -> bytes:
    with path.open("rb") as file:  # bounded: a path to /dev/zero or a huge file must not hang start-up
        data = file.read(_MAX_KEK_FILE + 1)
    if len(data) > _MAX_KEK_FILE:
        raise ValueError(f"{path}: not a KEK file (32 raw bytes, or the base64 of 32 bytes)")
    if os.stat(path).st_mode & 0o077:
        _log.warning("local KEK file is readable by group or others; chmod 600 it", extra={"path": str(path)})
    if len(data) == KEK_BYTES:
        return data
    text = data.strip().replace(b"-", b"+").replace(b"_", b"/").rstrip(b"=")
    try:
        kek = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        kek = b""
    if len(kek) != KEK_BYTES:
        raise ValueError(f"{path}: not a KEK file (32 raw bytes, or the base64 of 32 bytes)")
    return kek
