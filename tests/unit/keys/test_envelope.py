"""Envelope format v1: sealing, opening, the wire codec, tamper and context checks, wiping, redaction."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sidecar.core.errors import (
    InvalidEnvelopeError,
    InvalidRequestError,
    KeyContextMismatchError,
    KeyDecryptError,
    SidecarError,
)
from sidecar.keys import envelope as envelope_module
from sidecar.keys.backend import KeyBackend, KeyContext, WrappedKey
from sidecar.keys.envelope import (
    MAX_ENCODED_CHARS,
    MAX_SECRET_BYTES,
    Envelope,
    KeyRecordCorruptError,
    last_four,
    seal,
    unseal,
)
from sidecar.keys.local import LocalKekBackend

CANARY = b"sk-canary-0123456789abcdef"
CTX = KeyContext(tenant="acme", user="alice", provider="openai", key_name="default")
KEK = bytes(range(32))
FIXED_KEY = bytes(range(100, 132))


class SpyBackend:
    """A real local backend behind a spy: records calls and keeps every plaintext data key it hands out."""

    name: ClassVar[str] = "local"

    def __init__(self, inner: KeyBackend) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.handed_out: list[bytearray] = []  # the very buffers given to the envelope code
        self.copies: list[bytes] = []  # what they held, to look for in error messages

    def _keep(self, key: bytearray) -> bytearray:
        self.handed_out.append(key)
        self.copies.append(bytes(key))
        return key

    async def generate_data_key(self, context: KeyContext) -> tuple[bytearray, WrappedKey]:
        self.calls.append("generate_data_key")
        key, wrapped = await self.inner.generate_data_key(context)
        return self._keep(key), wrapped

    async def decrypt_data_key(self, wrapped: WrappedKey, context: KeyContext) -> bytearray:
        self.calls.append("decrypt_data_key")
        return self._keep(await self.inner.decrypt_data_key(wrapped, context))

    async def rewrap(self, wrapped: WrappedKey, context: KeyContext) -> WrappedKey:
        self.calls.append("rewrap")
        return await self.inner.rewrap(wrapped, context)

    def start(self) -> None:
        self.inner.start()

    async def aclose(self) -> None:
        await self.inner.aclose()


class FixedKeyBackend:
    """Hands out one known data key and ignores the context: lets a test compute the format by hand."""

    name: ClassVar[str] = "fixed"

    def __init__(self, key: bytes = FIXED_KEY) -> None:
        self.key = key

    async def generate_data_key(self, context: KeyContext) -> tuple[bytearray, WrappedKey]:
        return bytearray(self.key), WrappedKey("fixed", "k1", b"\x01")

    async def decrypt_data_key(self, wrapped: WrappedKey, context: KeyContext) -> bytearray:
        return bytearray(self.key)

    async def rewrap(self, wrapped: WrappedKey, context: KeyContext) -> WrappedKey:
        return wrapped

    def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


@pytest.fixture
def spy() -> SpyBackend:
    return SpyBackend(LocalKekBackend({1: KEK}, 1))


@pytest.fixture
async def sealed(spy: SpyBackend) -> Envelope:
    env = await seal(spy, CTX, CANARY)
    spy.calls.clear()
    return env


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 1 << (index % 8)
    return bytes(out)


def wire(body: object) -> str:
    return "oenv1." + b64(body if isinstance(body, bytes) else json.dumps(body).encode())


def body_of(env: Envelope) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(unb64(env.encode().removeprefix("oenv1.")))
    return decoded


def _std_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _latin1(raw: bytes) -> str:
    return raw.decode("latin-1")


def assert_no_secret(err: BaseException, *secrets: bytes) -> None:
    texts = []
    while err is not None:
        texts += [str(err), repr(err)]
        if isinstance(err, SidecarError):
            texts += [*err.metadata.values(), err.message]
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    forms = [f(s) for s in secrets for f in (bytes.hex, b64, _std_b64, _latin1)]
    assert not [form for form in forms if any(form in text for text in texts)]


# --- roundtrips ---


@pytest.mark.parametrize("secret", [CANARY, b"", b"\x00\xff" * 10, b"x" * MAX_SECRET_BYTES])
async def test_seal_unseal_roundtrip(spy: SpyBackend, secret: bytes) -> None:
    env = await seal(spy, CTX, secret)
    assert env.version == 1 and env.context == CTX and len(env.nonce) == 12 and len(env.commitment) == 32
    assert len(env.ciphertext) == len(secret) + 16
    opened = await unseal(spy, env, CTX)
    assert isinstance(opened, bytearray) and opened == secret
    assert Envelope.decode(env.encode()) == env


async def test_encoded_form_is_compact_url_safe_and_decodes(spy: SpyBackend, sealed: Envelope) -> None:
    text = sealed.encode()
    assert re.fullmatch(r"oenv1\.[A-Za-z0-9_-]+", text) and len(text) < 600
    assert await unseal(spy, Envelope.decode(text), CTX) == CANARY


async def test_every_record_gets_a_fresh_data_key_and_nonce(spy: SpyBackend) -> None:
    a, b = await seal(spy, CTX, CANARY), await seal(spy, CTX, CANARY)
    assert spy.copies[0] != spy.copies[1]
    assert a.wrapped.blob != b.wrapped.blob and a.nonce != b.nonce and a.ciphertext != b.ciphertext


async def test_secret_over_the_limit_is_refused_before_the_backend(spy: SpyBackend) -> None:
    with pytest.raises(InvalidRequestError):
        await seal(spy, CTX, b"x" * (MAX_SECRET_BYTES + 1))
    assert spy.calls == []


async def test_rewrapped_keeps_the_ciphertext(spy: SpyBackend, sealed: Envelope) -> None:
    new = await spy.rewrap(sealed.wrapped, CTX)
    env = sealed.rewrapped(new)
    assert env.wrapped == new and env.wrapped != sealed.wrapped
    assert env == replace(sealed, wrapped=new)
    assert await unseal(spy, env, CTX) == CANARY


# --- the documented format, computed by hand (what another implementation would do) ---


def _subkey(info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(FIXED_KEY)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aad(ctx: KeyContext) -> bytes:
    fields = {"keyName": ctx.key_name, "provider": ctx.provider, "tenant": ctx.tenant, "user": ctx.user}
    return b"orchestrator/envelope/v1\x00" + json.dumps(fields, separators=(",", ":")).encode()


async def test_a_hand_built_envelope_per_the_docstring_opens() -> None:
    nonce, aad = bytes(12), _aad(CTX)
    body = {
        "v": 1,
        "ctx": {"tenant": "acme", "user": "alice", "provider": "openai", "keyName": "default"},
        "wk": {"backend": "fixed", "keyId": "k1", "blob": b64(b"\x01")},
        "n": b64(nonce),
        "c": b64(hmac.new(_subkey(b"orchestrator/envelope/v1/commit"), nonce + aad, hashlib.sha256).digest()),
        "ct": b64(AESGCM(_subkey(b"orchestrator/envelope/v1/enc")).encrypt(nonce, CANARY, aad)),
    }
    text = wire(body)
    assert await unseal(FixedKeyBackend(), Envelope.decode(text), CTX) == CANARY


async def test_a_sealed_envelope_opens_by_hand_per_the_docstring() -> None:
    body = body_of(await seal(FixedKeyBackend(), CTX, CANARY))
    assert sorted(body) == ["c", "ct", "ctx", "n", "v", "wk"] and body["v"] == 1
    nonce, aad = unb64(body["n"]), _aad(CTX)
    commit = hmac.new(_subkey(b"orchestrator/envelope/v1/commit"), nonce + aad, hashlib.sha256).digest()
    assert unb64(body["c"]) == commit
    assert AESGCM(_subkey(b"orchestrator/envelope/v1/enc")).decrypt(nonce, unb64(body["ct"]), aad) == CANARY


# --- context binding ---


@pytest.mark.parametrize(
    ("field", "other"),
    [("tenant", "globex"), ("user", "mallory"), ("provider", "anthropic"), ("key_name", "backup")],
)
async def test_another_context_is_refused_without_a_backend_call(
    spy: SpyBackend, sealed: Envelope, field: str, other: str
) -> None:
    with pytest.raises(KeyContextMismatchError) as info:
        await unseal(spy, sealed, replace(CTX, **{field: other}))
    assert spy.calls == []
    assert info.value.metadata == {"fields": {"key_name": "keyName"}.get(field, field)}
    assert other not in info.value.message and "acme" not in info.value.message


@pytest.mark.parametrize("field", ["tenant", "user", "provider", "key_name"])
async def test_a_forged_recorded_context_is_caught_by_the_backend(
    spy: SpyBackend, sealed: Envelope, field: str
) -> None:
    other = replace(CTX, **{field: "forged"})
    with pytest.raises(KeyRecordCorruptError) as info:
        await unseal(spy, replace(sealed, context=other), other)
    assert_no_secret(info.value, CANARY, *spy.copies)


async def test_a_forged_recorded_context_is_caught_by_the_envelope_aad() -> None:
    """A backend that binds no context still cannot be used to move an envelope to another owner."""
    sealed = await seal(FixedKeyBackend(), CTX, CANARY)
    other = replace(CTX, tenant="globex")
    with pytest.raises(KeyRecordCorruptError):
        await unseal(FixedKeyBackend(), replace(sealed, context=other), other)


async def test_an_envelope_for_another_backend_is_refused_without_a_call(
    spy: SpyBackend, sealed: Envelope
) -> None:
    with pytest.raises(KeyDecryptError):
        await unseal(spy, sealed.rewrapped(WrappedKey("vault", "k", sealed.wrapped.blob)), CTX)
    assert spy.calls == []


# --- tampering ---


def _tamper(env: Envelope, field: str, index: int) -> Envelope:
    if field == "wrapped":
        return replace(env, wrapped=replace(env.wrapped, blob=flip(env.wrapped.blob, index)))
    changes: dict[str, Any] = {field: flip(getattr(env, field), index)}
    return replace(env, **changes)


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "commitment", "wrapped"])
async def test_any_flipped_bit_is_a_damaged_record(spy: SpyBackend, sealed: Envelope, field: str) -> None:
    size = len(sealed.wrapped.blob) if field == "wrapped" else len(getattr(sealed, field))
    for index in range(size):
        # the wrapped blob's first byte names the local KEK version: a flipped one names a version
        # that is not loaded, which is also what a retired KEK looks like (KEY_UNAVAILABLE)
        expected = KeyDecryptError if (field, index) == ("wrapped", 0) else KeyRecordCorruptError
        with pytest.raises(expected) as info:
            await unseal(spy, _tamper(sealed, field, index), CTX)
        assert_no_secret(info.value, CANARY, *spy.copies)
    assert all(not any(key) for key in spy.handed_out)


@pytest.fixture
def aes_decrypts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count AES-GCM decryptions done by the envelope module."""
    calls: list[int] = []

    class SpyAESGCM:
        def __init__(self, key: bytes) -> None:
            self._inner = AESGCM(key)

        def encrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
            return self._inner.encrypt(nonce, data, aad)

        def decrypt(self, nonce: bytes, data: bytes, aad: bytes) -> bytes:
            calls.append(1)
            return self._inner.decrypt(nonce, data, aad)

    monkeypatch.setattr(envelope_module, "_aead", SpyAESGCM)  # where the envelope makes its cipher
    return calls


async def test_the_commitment_is_checked_before_aes_gcm(
    spy: SpyBackend, sealed: Envelope, aes_decrypts: list[int]
) -> None:
    assert await unseal(spy, sealed, CTX) == CANARY and len(aes_decrypts) == 1
    aes_decrypts.clear()
    for bad in (_tamper(sealed, "commitment", 5), _tamper(sealed, "nonce", 3)):
        with pytest.raises(KeyRecordCorruptError, match="commitment"):
            await unseal(spy, bad, CTX)
    assert aes_decrypts == []
    with pytest.raises(KeyRecordCorruptError, match="authentication"):
        await unseal(spy, _tamper(sealed, "ciphertext", 0), CTX)
    assert aes_decrypts == [1]


async def test_a_ciphertext_does_not_open_under_another_data_key(
    spy: SpyBackend, sealed: Envelope, aes_decrypts: list[int]
) -> None:
    other = await seal(spy, CTX, b"another secret")
    with pytest.raises(KeyRecordCorruptError, match="commitment"):
        await unseal(spy, sealed.rewrapped(other.wrapped), CTX)
    assert aes_decrypts == []


async def test_a_data_key_of_the_wrong_size_is_refused_and_wiped() -> None:
    short = FixedKeyBackend(bytes(16))
    handed: list[bytearray] = []

    async def generate(context: KeyContext) -> tuple[bytearray, WrappedKey]:
        handed.append(bytearray(b"\x07" * 16))
        return handed[-1], WrappedKey("fixed", "k1", b"\x01")

    short.generate_data_key = generate  # type: ignore[method-assign]
    with pytest.raises(KeyDecryptError):
        await seal(short, CTX, CANARY)
    assert handed == [bytearray(16)]


# --- the codec refuses anything malformed ---


def _edit(edit: Callable[[dict[str, Any]], object]) -> Callable[[Envelope], str]:
    def build(env: Envelope) -> str:
        body = body_of(env)
        result = edit(body)
        return wire(body if result is None else result)

    return build


MALFORMED: dict[str, Callable[[Envelope], str]] = {
    "empty": lambda env: "",
    "garbage": lambda env: "garbage",
    "prefix only": lambda env: "oenv1.",
    "not base64url": lambda env: "oenv1.eyJ2Ijox+/==",
    "wrong version prefix": lambda env: "oenv2." + env.encode().split(".")[1],
    "upper-case prefix": lambda env: env.encode().upper(),
    "leading space": lambda env: " " + env.encode(),
    "trailing newline": lambda env: env.encode() + "\n",
    "padding": lambda env: env.encode() + "=" * (-len(env.encode()) % 4 or 4),
    "huge": lambda env: "oenv1." + "A" * MAX_ENCODED_CHARS,
    "not utf-8": lambda env: wire(b"\xff\xfe{}"),
    "not json": lambda env: wire(b"{v:1}"),
    "json array": lambda env: wire([1, 2]),
    "deep nesting": lambda env: wire(b"[" * 40_000),
    "huge integer": lambda env: wire(b'{"v":' + b"9" * 5000 + b"}"),
    "duplicate member": lambda env: wire(b'{"v":1,' + json.dumps(body_of(env)).encode()[1:]),
    "missing member": _edit(lambda b: b.pop("c")),
    "unknown member": _edit(lambda b: b.update(x=1)),
    "version 2": _edit(lambda b: b.update(v=2)),
    "version true": _edit(lambda b: b.update(v=True)),
    "version string": _edit(lambda b: b.update(v="1")),
    "version float": _edit(lambda b: b.update(v=1.0)),
    "ctx not object": _edit(lambda b: b.update(ctx="acme")),
    "ctx missing keyName": _edit(lambda b: b["ctx"].pop("keyName")),
    "ctx tenant not string": _edit(lambda b: b["ctx"].update(tenant=7)),
    "wk backend null": _edit(lambda b: b["wk"].update(backend=None)),
    "blob with padding": _edit(lambda b: b["wk"].update(blob=b["wk"]["blob"] + "=")),
    "blob standard alphabet": _edit(lambda b: b["wk"].update(blob="ab+/")),
    "blob not canonical": _edit(lambda b: b["wk"].update(blob="AB")),
    "blob impossible length": _edit(lambda b: b["wk"].update(blob="ABCDE")),
    "nonce 11 bytes": _edit(lambda b: b.update(n=b["n"][:-2])),
    "commitment 31 bytes": _edit(lambda b: b.update(c=base64.urlsafe_b64encode(bytes(31)).decode())),
    "ciphertext 15 bytes": _edit(lambda b: b.update(ct=base64.urlsafe_b64encode(bytes(15)).decode())),
    "nonce not string": _edit(lambda b: b.update(n=12)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_text_is_invalid_envelope_error(sealed: Envelope, case: str) -> None:
    with pytest.raises(InvalidEnvelopeError) as info:
        Envelope.decode(MALFORMED[case](sealed))
    assert "Traceback" not in info.value.message and len(info.value.message) < 120


@pytest.mark.parametrize("value", [None, b"oenv1.", 7])
def test_a_non_string_is_invalid_envelope_error(value: object) -> None:
    with pytest.raises(InvalidEnvelopeError):
        Envelope.decode(value)  # type: ignore[arg-type]


def test_every_truncation_is_invalid_envelope_error(sealed: Envelope) -> None:
    text = sealed.encode()
    for end in range(len(text)):
        with pytest.raises(InvalidEnvelopeError):
            Envelope.decode(text[:end])


async def test_no_single_character_edit_opens(spy: SpyBackend, sealed: Envelope) -> None:
    text = sealed.encode()
    for index in range(len(text)):
        edited = text[:index] + ("B" if text[index] != "B" else "C") + text[index + 1 :]
        with pytest.raises(
            (InvalidEnvelopeError, KeyDecryptError, KeyContextMismatchError, KeyRecordCorruptError)
        ):
            await unseal(spy, Envelope.decode(edited), CTX)


def test_construction_checks_version_and_sizes(sealed: Envelope) -> None:
    for bad in ({"version": 2}, {"nonce": bytes(16)}, {"commitment": bytes(16)}, {"ciphertext": bytes(15)}):
        with pytest.raises(InvalidEnvelopeError):
            replace(sealed, **bad)


def test_an_envelope_too_big_to_decode_is_never_encoded(sealed: Envelope) -> None:
    with pytest.raises(InvalidEnvelopeError):
        replace(sealed, context=replace(CTX, user="u" * MAX_ENCODED_CHARS)).encode()


# --- wiping and redaction ---


async def test_data_keys_are_zeroed_after_seal_and_unseal(spy: SpyBackend) -> None:
    env = await seal(spy, CTX, CANARY)
    await unseal(spy, env, CTX)
    for bad in (_tamper(env, "commitment", 0), _tamper(env, "ciphertext", 0)):
        with pytest.raises(KeyRecordCorruptError):
            await unseal(spy, bad, CTX)
    assert len(spy.handed_out) == 4
    assert all(len(key) == 32 and not any(key) for key in spy.handed_out)
    assert all(any(copy) for copy in spy.copies)  # they did hold a key


async def test_repr_and_str_show_no_secret_material(spy: SpyBackend, sealed: Envelope) -> None:
    text = repr(sealed)
    assert text == str(sealed) and "version=1" in text and "'acme'" in text
    assert f"ciphertext=<{len(sealed.ciphertext)} bytes>" in text
    for material in (CANARY, sealed.ciphertext, sealed.wrapped.blob, sealed.nonce, sealed.commitment):
        for form in (repr(material), material.hex(), base64.urlsafe_b64encode(material).decode().rstrip("=")):
            assert form not in text


def test_last_four_shows_at_most_four_characters() -> None:
    assert last_four(CANARY) == "…cdef"
    assert last_four(bytearray(CANARY)) == "…cdef"
    assert last_four(b"sk-short") == "…"
    assert last_four(b"") == "…"


def test_a_sidecar_without_a_key_backend_does_not_load_cryptography() -> None:
    """About 7 MB of RSS (bench/analysis.md): the envelope and the local backend import it on use."""
    import subprocess
    import sys

    code = (
        "import sys, sidecar.app, sidecar.cli, sidecar.deps, sidecar.server;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'cryptography'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
