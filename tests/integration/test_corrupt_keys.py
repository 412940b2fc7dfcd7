"""A damaged key record is reported as damaged (FAILED_PRECONDITION / KEY_RECORD_CORRUPT), not as
someone else's key; a genuine other tenant's record still gives KEY_CONTEXT_MISMATCH. Under AWS KMS
(moto server), Vault transit (OpenBao dev server) and the local KEK, with the record edited in the
SQLite store the way a disk or an operator would damage it."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sidecar.keys.envelope import Envelope
from tests.integration.test_user_keys import (
    ALICE_OPENAI,
    CODE,
    ENV,
    GLOBEX_OPENAI,
    HELLO,
    Serve,
    config,
    fails,
    kms_keys,
    ok,
    register,
    req,
)
from tests.integration.test_user_keys import aws_credentials as aws_credentials  # a fixture
from tests.support.api import text_of
from tests.support.keys import local_keys
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration


def flip_wrapped(text: str) -> str:
    env = Envelope.decode(text)
    blob = bytearray(env.wrapped.blob)
    blob[len(blob) // 2] ^= 0x04  # a printable character stays printable (Vault's "vault:v1:...")
    return dataclasses.replace(env, wrapped=dataclasses.replace(env.wrapped, blob=bytes(blob))).encode()


def truncate_wrapped(text: str) -> str:
    env = Envelope.decode(text)
    blob = env.wrapped.blob[:-6]
    return dataclasses.replace(env, wrapped=dataclasses.replace(env.wrapped, blob=blob)).encode()


def flip_high_bit(text: str) -> str:
    """The top bit of one byte of the wrapped key: Vault's printable "vault:v1:..." becomes non-ASCII."""
    env = Envelope.decode(text)
    blob = bytearray(env.wrapped.blob)
    blob[len(blob) // 2] ^= 0x80
    return dataclasses.replace(env, wrapped=dataclasses.replace(env.wrapped, blob=bytes(blob))).encode()


def wrapped_as(blob: bytes) -> Callable[[str], str]:
    def edit(text: str) -> str:
        env = Envelope.decode(text)
        return dataclasses.replace(env, wrapped=dataclasses.replace(env.wrapped, blob=blob)).encode()

    return edit


def bad_base64(text: str) -> str:
    middle = len(text) // 2
    return text[:middle] + "!*" + text[middle + 2 :]


def drop_tail(text: str) -> str:
    return text[: len(text) - 10]


DAMAGE: dict[str, Callable[[str], str]] = {
    "wrapped key bit-flipped": flip_wrapped,
    "wrapped key truncated": truncate_wrapped,
    "wrapped key high bit flipped": flip_high_bit,
    "wrapped key emptied": wrapped_as(b""),
    "wrapped key enormous": wrapped_as(bytes(range(256)) * 100),  # 25,600 bytes; KMS takes 6,144 at most
    "record not base64": bad_base64,
    "record truncated": drop_tail,
}


def backend_keys(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, environ: dict[str, str]
) -> Any:
    if backend == "aws-kms":
        request.getfixturevalue("aws_credentials")
        return kms_keys(tmp_path, request.getfixturevalue("kms_endpoint"))
    if backend == "vault":
        bao = request.getfixturevalue("openbao")
        environ["VAULT_TOKEN"] = bao.token
        vault = {"url": bao.url, "key_name": bao.key_name, "token": {"env": "VAULT_TOKEN"}}
        return {"backend": "vault", "vault": vault, "store_path": str(tmp_path / "keys.db")}
    return local_keys(tmp_path)


def rewrite(db: Path, ref: str, edit: Callable[[str], str]) -> None:
    with sqlite3.connect(db) as conn:
        (text,) = conn.execute("SELECT envelope FROM key_records WHERE ref = ?", (ref,)).fetchone()
        conn.execute("UPDATE key_records SET envelope = ? WHERE ref = ?", (edit(text), ref))


def envelope_of(db: Path, ref: str) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("SELECT envelope FROM key_records WHERE ref = ?", (ref,)).fetchone()[0])


@pytest.mark.parametrize("backend", ["aws-kms", "vault", "local"])
async def test_damaged_records_are_corrupt_and_other_tenants_records_are_a_mismatch(
    serve: Serve, upstream: Upstream, tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    environ = dict(ENV)
    keys = backend_keys(backend, tmp_path, request, environ)
    keys["cache"] = {"max_uses": 1}  # every call opens its record again (no cached plaintext)
    s = await serve(config(upstream, keys), environ)
    db = Path(keys["store_path"])
    for damage, edit in DAMAGE.items():
        ref = await register(s, ALICE_OPENAI)
        upstream.push(ok())
        assert text_of(await s.stub.Generate(req("required", ref=ref))) == HELLO
        rewrite(db, ref, edit)
        err = await fails(s.stub.Generate(req("required", ref=ref)))
        assert (err.code, err.reason) == (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT"), (backend, damage)
        assert ALICE_OPENAI not in err.message

    # a genuine record of another tenant, put under alice's ref: someone else's key, not a damaged one
    ours = await register(s, ALICE_OPENAI)
    theirs = await register(s, GLOBEX_OPENAI, tenant="globex")
    rewrite(db, ours, lambda _: envelope_of(db, theirs))
    err = await fails(s.stub.Generate(req("required", ref=ours)))
    assert (err.code, err.reason) == (CODE.PERMISSION_DENIED, "KEY_CONTEXT_MISMATCH"), backend
    # and the same blob brought inline by alice
    err = await fails(s.stub.Generate(req("required", envelope=envelope_of(db, theirs))))
    assert (err.code, err.reason) == (CODE.PERMISSION_DENIED, "KEY_CONTEXT_MISMATCH"), backend
