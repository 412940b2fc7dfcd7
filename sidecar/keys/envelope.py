"""Envelope encryption of a user-supplied provider key: format version 1.

Each secret (e.g. an API key) is encrypted under its own fresh 256-bit data key, which a `KeyBackend`
wraps. Rotation rewraps only the data key (`Envelope.rewrapped`); the ciphertext is never touched.

Cryptography, version 1 (`||` is concatenation; HKDF is RFC 5869 with no salt, i.e. 32 zero bytes)::

    aad        = b"orchestrator/envelope/v1" || 0x00 || KeyContext.aad()
    enc_key    = HKDF-SHA256(ikm=data_key, info=b"orchestrator/envelope/v1/enc",    length=32)
    commit_key = HKDF-SHA256(ikm=data_key, info=b"orchestrator/envelope/v1/commit", length=32)
    nonce      = 12 random bytes
    commitment = HMAC-SHA256(commit_key, nonce || aad)                    32 bytes
    ciphertext = AES-256-GCM(enc_key).encrypt(nonce, secret, aad)          len(secret) + 16-byte tag

`KeyContext.aad()` is the UTF-8 JSON object {"keyName", "provider", "tenant", "user"} with sorted keys,
separators "," and ":", no whitespace and non-ASCII escaped as \\u plus four hex digits. The
wrapped key is not in the AAD, so that a rewrap leaves the ciphertext valid; the backend binds the
context to it instead.

Opening (`unseal`): (1) recorded context != expected -> KeyContextMismatchError (another owner's
envelope), before any backend call; (2) the backend unwraps the data key under the expected context,
which is the recorded one: when it refuses the context, the wrapped key was damaged (bit flips,
truncation, an edited context) -> KeyRecordCorruptError; (3) the commitment is compared in constant
time, a mismatch being KeyRecordCorruptError before AES-GCM runs; (4) AES-GCM decrypts, a bad tag
being KeyRecordCorruptError. GCM alone is not key-committing; the HMAC commitment makes it so.

Wire format, version 1::

    text = "oenv1." || base64url(body)        base64url: RFC 4648 section 5, no "=" padding
    body = a UTF-8 JSON object with exactly these members:
      "v":   1                                             integer
      "ctx": {"tenant": s, "user": s, "provider": s, "keyName": s}
      "wk":  {"backend": s, "keyId": s, "blob": b}         the WrappedKey
      "n":   b                                             nonce, 12 bytes
      "c":   b                                             commitment, 32 bytes
      "ct":  b                                             ciphertext and tag, at least 16 bytes

`s` is a JSON string; `b` is canonical base64url without padding (unused trailing bits zero). Writers
emit sorted keys, no whitespace, ASCII only. Readers accept any member order but reject, with
InvalidEnvelopeError, text over 65536 characters, another prefix ("oenvN." with N != 1 is an unknown
version), bad base64url, UTF-8 or JSON, duplicate, missing or unknown members, and wrong types or sizes.

Wiping: the plaintext data key the backend returns is overwritten with zeros before `seal` or `unseal`
returns or raises. Derived subkeys and the copies made inside `cryptography` are immutable `bytes` that
Python cannot wipe; they are dropped at once. No message or repr names plaintext, keys or ciphertext.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sidecar.core.errors import (
    Code,
    FieldViolation,
    InvalidEnvelopeError,
    InvalidRequestError,
    KeyContextMismatchError,
    KeyDecryptError,
    SidecarError,
)
from sidecar.keys.backend import DATA_KEY_BYTES, KeyBackend, KeyContext, KeyNotConfiguredError, WrappedKey

VERSION = 1
PREFIX = "oenv1."
MAX_ENCODED_CHARS = 64 * 1024
MAX_SECRET_BYTES = 16 * 1024
NONCE_BYTES = 12
COMMITMENT_BYTES = 32
TAG_BYTES = 16

_AAD_PREFIX = b"orchestrator/envelope/v1\x00"
_ENC_INFO = b"orchestrator/envelope/v1/enc"
_COMMIT_INFO = b"orchestrator/envelope/v1/commit"
_OTHER_VERSION = re.compile(r"oenv[0-9]+\.")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_MEMBERS = frozenset({"v", "ctx", "wk", "n", "c", "ct"})
_CTX_MEMBERS = frozenset({"tenant", "user", "provider", "keyName"})
_WK_MEMBERS = frozenset({"backend", "keyId", "blob"})
_MIN_LEN_FOR_LAST_FOUR = 12


@dataclass(frozen=True, slots=True, repr=False)
class Envelope:
    """One sealed secret. Construct with `seal` or `decode`; sizes are checked on construction."""

    version: int
    context: KeyContext
    wrapped: WrappedKey
    nonce: bytes
    commitment: bytes
    ciphertext: bytes

    def __post_init__(self) -> None:
        if type(self.version) is not int or self.version != VERSION:
            raise InvalidEnvelopeError("unsupported key envelope version")
        if len(self.nonce) != NONCE_BYTES:
            raise _malformed(f"nonce must be {NONCE_BYTES} bytes")
        if len(self.commitment) != COMMITMENT_BYTES:
            raise _malformed(f"commitment must be {COMMITMENT_BYTES} bytes")
        if len(self.ciphertext) < TAG_BYTES:
            raise _malformed(f"ciphertext must be at least {TAG_BYTES} bytes")

    def __repr__(self) -> str:
        return (
            f"Envelope(version={self.version}, context={self.context!r}, "
            f"wrapped=<{len(self.wrapped.blob)} bytes>, ciphertext=<{len(self.ciphertext)} bytes>)"
        )

    def encode(self) -> str:
        """The "oenv1." wire form (see the module docstring)."""
        wrapped = self.wrapped
        body = {
            "v": self.version,
            "ctx": self.context.as_map(),
            "wk": {"backend": wrapped.backend, "keyId": wrapped.key_id, "blob": _b64e(wrapped.blob)},
            "n": _b64e(self.nonce),
            "c": _b64e(self.commitment),
            "ct": _b64e(self.ciphertext),
        }
        text = PREFIX + _b64e(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
        if len(text) > MAX_ENCODED_CHARS:
            raise InvalidEnvelopeError(f"key envelope would exceed {MAX_ENCODED_CHARS} characters")
        return text

    @classmethod
    def decode(cls, text: str) -> Envelope:
        """Parse the wire form; anything else is InvalidEnvelopeError."""
        if not isinstance(text, str):
            raise _malformed("not a string")
        if len(text) > MAX_ENCODED_CHARS:
            raise _malformed(f"longer than {MAX_ENCODED_CHARS} characters")
        if not text.startswith(PREFIX):
            if _OTHER_VERSION.match(text):
                raise InvalidEnvelopeError("unsupported key envelope version")
            raise _malformed(f"no {PREFIX!r} prefix")
        raw = _b64d(text[len(PREFIX) :], "body")
        try:
            body = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_members)
        except (ValueError, RecursionError) as exc:
            raise _malformed("body is not valid JSON, or repeats a member") from exc
        top = _members(body, _MEMBERS, "envelope")
        if type(top["v"]) is not int or top["v"] != VERSION:
            raise InvalidEnvelopeError("unsupported key envelope version")
        ctx = _members(top["ctx"], _CTX_MEMBERS, "ctx")
        wk = _members(top["wk"], _WK_MEMBERS, "wk")
        return cls(
            version=VERSION,
            context=KeyContext(*(_str(ctx, name) for name in ("tenant", "user", "provider", "keyName"))),
            wrapped=WrappedKey(_str(wk, "backend"), _str(wk, "keyId"), _b64d(wk["blob"], "blob")),
            nonce=_b64d(top["n"], "nonce"),
            commitment=_b64d(top["c"], "commitment"),
            ciphertext=_b64d(top["ct"], "ciphertext"),
        )

    def rewrapped(self, wrapped: WrappedKey) -> Envelope:
        """The same ciphertext with its data key wrapped anew (after `KeyBackend.rewrap`)."""
        return replace(self, wrapped=wrapped)


class KeyRecordCorruptError(SidecarError):
    """A key record or envelope that is damaged: it does not parse (a stored record), or it parses
    and does not open under its own recorded owner. Not another owner's key (that is
    KEY_CONTEXT_MISMATCH); the owner should register the key again."""

    code = Code.FAILED_PRECONDITION
    reason = "KEY_RECORD_CORRUPT"

    def __init__(self, why: str, *, ref: str | None = None) -> None:
        what = f"key record {ref}" if ref else "key envelope"
        super().__init__(
            f"{what} is damaged ({why}); register the key again",
            metadata={"keyRef": ref} if ref else None,
        )


async def seal(backend: KeyBackend, context: KeyContext, secret: bytes | bytearray) -> Envelope:
    """Encrypt `secret` for `context` under a fresh data key from `backend`."""
    if len(secret) > MAX_SECRET_BYTES:
        raise InvalidRequestError([FieldViolation("secret", f"longer than {MAX_SECRET_BYTES} bytes")])
    data_key, wrapped = await backend.generate_data_key(context)
    try:
        enc_key, commit_key = _subkeys(data_key)
        aad = _aad(context)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = _aead(enc_key).encrypt(nonce, secret, aad)
        commitment = _commitment(commit_key, nonce, aad)
    finally:
        _wipe(data_key)
    return Envelope(VERSION, context, wrapped, nonce, commitment, ciphertext)


async def unseal(backend: KeyBackend, envelope: Envelope, context: KeyContext) -> bytearray:
    """Decrypt `envelope` for `context`; the caller should wipe the returned bytearray after use."""
    _check_context(envelope.context, context)
    if envelope.wrapped.backend != backend.name:
        raise KeyNotConfiguredError(
            f"key envelope was wrapped by another key backend than {backend.name!r}",
            metadata={"backend": backend.name},
        )
    try:
        data_key = await backend.decrypt_data_key(envelope.wrapped, context)
    except KeyContextMismatchError as exc:  # its own recorded context: the wrapped key is damaged
        raise KeyRecordCorruptError("the wrapped data key does not open") from exc
    try:
        enc_key, commit_key = _subkeys(data_key)
        aad = _aad(context)
        expected = _commitment(commit_key, envelope.nonce, aad)
        if not hmac.compare_digest(expected, envelope.commitment):
            raise KeyRecordCorruptError("the commitment does not match its data key")
        from cryptography.exceptions import InvalidTag

        try:
            plaintext = _aead(enc_key).decrypt(envelope.nonce, envelope.ciphertext, aad)
        except InvalidTag as exc:
            raise KeyRecordCorruptError("the ciphertext failed authentication") from exc
    finally:
        _wipe(data_key)
    return bytearray(plaintext)


def last_four(secret: bytes | bytearray) -> str:
    """The last four characters after "…", for display; just "…" if the secret is under 12 bytes."""
    if len(secret) < _MIN_LEN_FOR_LAST_FOUR:
        return "…"
    return "…" + bytes(secret[-4:]).decode("ascii", errors="replace")


def _check_context(recorded: KeyContext, expected: KeyContext) -> None:
    theirs, ours = recorded.as_map(), expected.as_map()
    differing = [name for name, value in ours.items() if theirs[name] != value]
    if differing:
        raise KeyContextMismatchError(
            f"key envelope belongs to a different {', '.join(differing)}",
            metadata={"fields": ",".join(differing)},
        )


def _aead(key: bytes) -> AESGCM:
    """AES-256-GCM under `key`. cryptography is imported on first use, so a sidecar without a key
    backend never loads it (about 7 MB of RSS; bench/analysis.md)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _subkeys(data_key: bytearray) -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if len(data_key) != DATA_KEY_BYTES:
        raise KeyDecryptError(f"key backend returned a data key that is not {DATA_KEY_BYTES} bytes")
    enc = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_ENC_INFO).derive(data_key)
    commit = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_COMMIT_INFO).derive(data_key)
    return enc, commit


def _aad(context: KeyContext) -> bytes:
    return _AAD_PREFIX + context.aad()


def _commitment(commit_key: bytes, nonce: bytes, aad: bytes) -> bytes:
    return hmac.new(commit_key, nonce + aad, hashlib.sha256).digest()


def _wipe(buffer: bytearray) -> None:
    buffer[:] = bytes(len(buffer))


def _malformed(why: str) -> InvalidEnvelopeError:
    return InvalidEnvelopeError(f"malformed key envelope: {why}")


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise _malformed(f"{what} is not base64url")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))  # cannot fail after the checks above
    if _b64e(raw) != value:
        raise _malformed(f"{what} is not canonical base64url")
    return raw


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _members(value: object, names: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(f"{what} is not a JSON object")
    if value.keys() != names:
        raise _malformed(f"{what} must have exactly the members {', '.join(sorted(names))}")
    return value


def _str(obj: dict[str, Any], name: str) -> str:
    value = obj[name]
    if not isinstance(value, str):
        raise _malformed(f"{name} is not a string")
    return value
