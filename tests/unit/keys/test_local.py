"""LocalKekBackend: KEK files, wrapping under a context, versions and rotation, closing, redaction."""

from __future__ import annotations

import base64
import logging
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from sidecar.core.errors import KeyBackendUnavailableError, KeyContextMismatchError, KeyDecryptError
from sidecar.keys.backend import KeyBackend, KeyContext, WrappedKey
from sidecar.keys.envelope import seal, unseal
from sidecar.keys.local import LocalKekBackend

CANARY = b"sk-canary-0123456789abcdef"
CTX = KeyContext(tenant="acme", user="alice", provider="openai", key_name="default")
KEK1 = bytes(range(32))
KEK2 = bytes(range(32, 64))


def backend(keks: dict[int, bytes] | None = None, current: int = 1) -> KeyBackend:
    return LocalKekBackend(keks or {1: KEK1}, current)


# --- KEK files ---


def test_generate_file_writes_a_0600_base64_key_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    LocalKekBackend.generate_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_bytes()
    assert text.endswith(b"\n") and len(base64.b64decode(text, validate=False)) == 32
    with pytest.raises(FileExistsError):
        LocalKekBackend.generate_file(path)
    assert path.read_bytes() == text
    LocalKekBackend.from_file(path)


@pytest.mark.parametrize(
    "content",
    [
        KEK1,
        base64.b64encode(KEK1) + b"\n",
        base64.urlsafe_b64encode(KEK1).rstrip(b"="),
        b"  " + base64.b64encode(KEK1) + b"\r\n",
    ],
)
async def test_from_file_reads_raw_or_base64(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "kek"
    path.write_bytes(content)
    path.chmod(0o600)
    key, wrapped = await backend().generate_data_key(CTX)
    assert await LocalKekBackend.from_file(path).decrypt_data_key(wrapped, CTX) == key


@pytest.mark.parametrize(
    "content", [b"", KEK1[:31], KEK1 + b"\n", base64.b64encode(KEK1[:16]), b"not base64!!"]
)
def test_a_bad_kek_file_is_refused_without_echoing_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "kek"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a KEK file") as info:
        LocalKekBackend.from_file(path)
    if content:
        assert content.hex() not in str(info.value) and repr(content) not in str(info.value)


def test_a_kek_path_that_never_ends_is_refused_not_read_whole(tmp_path: Path) -> None:
    """`kek_file: /dev/zero` (or a huge file by mistake) was read whole: start-up hung."""
    with pytest.raises(ValueError, match="not a KEK file"):
        LocalKekBackend.from_file(Path("/dev/zero"))


def test_a_group_readable_kek_file_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "kek"
    path.write_bytes(base64.b64encode(KEK1))
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="sidecar.keys"):
        LocalKekBackend.from_file(path)
    assert any("chmod 600" in r.getMessage() for r in caplog.records)


def test_construction_logs_a_loud_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sidecar.keys"):
        LocalKekBackend({1: KEK1}, 1)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "NOT for production" in record.getMessage()
    assert KEK1.hex() not in record.getMessage()


@pytest.mark.parametrize(
    ("keks", "current"),
    [({1: KEK1[:16]}, 1), ({0: KEK1}, 0), ({256: KEK1}, 256), ({1: KEK1}, 2), ({}, 1)],
)
def test_bad_construction_is_value_error(keks: dict[int, bytes], current: int) -> None:
    with pytest.raises(ValueError):
        LocalKekBackend(keks, current)


# --- wrapping ---


async def test_wrap_and_unwrap() -> None:
    b = backend()
    key, wrapped = await b.generate_data_key(CTX)
    assert len(key) == 32 and isinstance(key, bytearray)
    assert (wrapped.backend, wrapped.key_id, len(wrapped.blob), wrapped.blob[0]) == ("local", "local", 61, 1)
    assert await b.decrypt_data_key(wrapped, CTX) == key
    assert bytes(key) not in wrapped.blob


@pytest.mark.parametrize("field", ["tenant", "user", "provider", "key_name"])
async def test_another_context_cannot_unwrap(field: str) -> None:
    b = backend()
    _, wrapped = await b.generate_data_key(CTX)
    other = replace(CTX, **{field: "other"})
    with pytest.raises(KeyContextMismatchError):  # as KMS and Vault report it
        await b.decrypt_data_key(wrapped, other)
    with pytest.raises(KeyContextMismatchError):
        await b.rewrap(wrapped, other)


async def test_a_tampered_or_foreign_blob_cannot_unwrap() -> None:
    b = backend()
    _, wrapped = await b.generate_data_key(CTX)
    for index in range(len(wrapped.blob)):
        blob = bytearray(wrapped.blob)
        blob[index] ^= 0x80
        # the first byte is the KEK version: a flipped one names a version that is not loaded
        with pytest.raises(KeyDecryptError if index == 0 else KeyContextMismatchError):
            await b.decrypt_data_key(replace(wrapped, blob=bytes(blob)), CTX)
    with pytest.raises(KeyContextMismatchError):
        await b.decrypt_data_key(replace(wrapped, blob=wrapped.blob[:-1]), CTX)
    for bad in (replace(wrapped, key_id="other-kek"), WrappedKey("aws-kms", "local", wrapped.blob)):
        with pytest.raises(KeyDecryptError):
            await b.decrypt_data_key(bad, CTX)
    with pytest.raises(KeyContextMismatchError):
        await LocalKekBackend({1: KEK2}, 1).decrypt_data_key(wrapped, CTX)


# --- rotation ---


async def test_rotation_rewrap_then_retire_the_old_version() -> None:
    v1 = backend()
    rotated, untouched = await seal(v1, CTX, CANARY), await seal(v1, CTX, b"sk-untouched-0123456789")
    assert rotated.wrapped.blob[0] == untouched.wrapped.blob[0] == 1

    both = backend({1: KEK1, 2: KEK2}, current=2)
    rotated = rotated.rewrapped(await both.rewrap(rotated.wrapped, CTX))
    assert rotated.wrapped.blob[0] == 2
    assert await unseal(both, rotated, CTX) == CANARY
    assert await unseal(both, untouched, CTX) == b"sk-untouched-0123456789"
    assert (await both.generate_data_key(CTX))[1].blob[0] == 2

    v2_only = backend({2: KEK2}, current=2)
    assert await unseal(v2_only, rotated, CTX) == CANARY
    with pytest.raises(KeyDecryptError, match="version 1 is not loaded") as info:
        await unseal(v2_only, untouched, CTX)
    assert info.value.metadata["kekVersion"] == "1"
    with pytest.raises(KeyDecryptError):
        await unseal(v1, rotated, CTX)


# --- lifecycle and redaction ---


async def test_a_closed_backend_is_unavailable() -> None:
    b = backend()
    _, wrapped = await b.generate_data_key(CTX)
    await b.aclose()
    with pytest.raises(KeyBackendUnavailableError):
        await b.decrypt_data_key(wrapped, CTX)
    with pytest.raises(KeyBackendUnavailableError):
        await b.generate_data_key(CTX)


def test_repr_names_versions_not_keys() -> None:
    text = repr(LocalKekBackend({1: KEK1, 2: KEK2}, 2, key_id="dev"))
    assert text == "LocalKekBackend(key_id='dev', versions=[1, 2], current=2)"
