"""The key-encryption backend seam: AWS KMS, Vault transit, or a local key-encryption key.

A backend wraps and unwraps 256-bit data keys. It never sees a provider key: those are encrypted
with the data key by `keys/envelope.py`. The key context (tenant, user, provider, key name) goes to
the backend too (KMS encryption context, Vault derivation context), so a wrapped key taken from one
owner does not unwrap for another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar, Protocol

from sidecar.core.errors import KeyDecryptError

DATA_KEY_BYTES = 32
# The providers a user key may be for, and what it is for each (docs/keys.md): an OpenAI or Anthropic
# API key; a Gemini API key (sent as x-goog-api-key); an Azure OpenAI resource key (api-key); an
# Amazon Bedrock API key (a bearer token, in place of SigV4 signing). Each adapter sends it in its
# provider's own header (sidecar/providers/).
USER_KEY_PROVIDERS = ("openai", "anthropic", "gemini", "azure", "bedrock")


class KeyNotConfiguredError(KeyDecryptError):
    """The wrapped data key names a backend or a key (KMS key, transit key, local KEK) this sidecar
    is not configured to unwrap under; refused without asking the backend. KEY_UNAVAILABLE for a
    stored record (written by a sidecar: the configuration dropped its key too early); an inline
    envelope's, which a caller may have made up, is the caller's (keys/service.py)."""


class KeyBackendSetupError(Exception):
    """The configured key backend cannot be built (its KEK file cannot be read or is not one, its
    client library is not installed): a start-up error, its message naming the setting."""


@dataclass(frozen=True, slots=True)
class KeyContext:
    """Who a key belongs to. Bound into every layer of the envelope."""

    tenant: str
    user: str
    provider: str
    key_name: str

    def as_map(self) -> dict[str, str]:
        """The encryption / derivation context sent to the backend."""
        return {"tenant": self.tenant, "user": self.user, "provider": self.provider, "keyName": self.key_name}

    def aad(self) -> bytes:
        """Canonical bytes for AES-GCM associated data: sorted keys, no whitespace."""
        return json.dumps(self.as_map(), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key as the backend returned it, encrypted under the backend's key."""

    backend: str  # "aws-kms", "vault" or "local"
    key_id: str  # KMS key ARN, Vault key name, or local KEK id (the version travels inside `blob`)
    blob: bytes

    def __repr__(self) -> str:
        return f"WrappedKey(backend={self.backend!r}, key_id={self.key_id!r}, blob=<{len(self.blob)} bytes>)"


class KeyBackend(Protocol):
    """Wraps, unwraps and rewraps data keys. Implementations run blocking clients off the event loop."""

    name: ClassVar[str]

    async def generate_data_key(self, context: KeyContext) -> tuple[bytearray, WrappedKey]:
        """A fresh random data key (plaintext, 32 bytes, mutable so it can be wiped) and its wrapped form."""
        ...

    async def decrypt_data_key(self, wrapped: WrappedKey, context: KeyContext) -> bytearray:
        """Unwrap; KeyContextMismatchError if the context is not the one it was wrapped with."""
        ...

    async def rewrap(self, wrapped: WrappedKey, context: KeyContext) -> WrappedKey:
        """Re-encrypt under the backend's current key and version; the data key's plaintext stays in the
        backend where it can (KMS ReEncrypt; transit rewrap within one key). Never a provider key."""
        ...

    def start(self) -> None:
        """Begin what the backend keeps up in the background while the sidecar serves (Vault: renewing
        its token); called once the event loop runs. Nothing for KMS and the local KEK."""
        ...

    async def aclose(self) -> None: ...
