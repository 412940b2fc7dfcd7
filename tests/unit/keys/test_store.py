from __future__ import annotations

import os
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from sidecar.keys.store import KeyRecord, KeyStore, SqliteKeyStore, new_ref
from tests.conftest import FakeClock


def record(
    tenant: str = "t1",
    user: str = "u1",
    provider: str = "openai",
    key_name: str = "default",
    *,
    ref: str | None = None,
    envelope: str = "v1.local.ENVELOPE-CIPHERTEXT",
    created_at: float = 100.0,
) -> KeyRecord:
    return KeyRecord(
        ref=ref or new_ref(),
        tenant=tenant,
        user=user,
        provider=provider,
        key_name=key_name,
        envelope=envelope,
        last_four="wxyz",
        created_at=created_at,
        updated_at=created_at,
    )


@pytest.fixture
async def store(clock: FakeClock) -> AsyncIterator[SqliteKeyStore]:
    s = SqliteKeyStore(":memory:", clock)
    yield s
    await s.aclose()


def test_sqlite_store_is_a_key_store(clock: FakeClock) -> None:
    s: KeyStore = SqliteKeyStore(":memory:", clock)
    assert s is not None


def test_new_ref_shape() -> None:
    refs = {new_ref() for _ in range(100)}
    assert len(refs) == 100
    assert all(re.fullmatch(r"key_[A-Za-z0-9_-]{22}", r) for r in refs)


async def test_put_get(store: SqliteKeyStore) -> None:
    r = record()
    await store.put(r)
    assert await store.get(r.ref) == r
    assert await store.get(new_ref()) is None


async def test_find_by_name_and_newest(store: SqliteKeyStore) -> None:
    old = record(key_name="old", created_at=100.0)
    new = record(key_name="new", created_at=200.0)
    other = record(provider="anthropic", key_name="x", created_at=300.0)
    for r in (new, old, other):
        await store.put(r)
    assert await store.find("t1", "u1", "openai", "old") == old
    assert await store.find("t1", "u1", "openai") == new
    assert await store.find("t1", "u1", "anthropic") == other
    assert await store.find("t1", "u2", "openai") is None
    assert await store.find("t2", "u1", "openai") is None
    assert await store.find("t1", "u1", "openai", "missing") is None


async def test_list_by_tenant_and_user(store: SqliteKeyStore) -> None:
    mine = [record(user="u1", provider="openai"), record(user="u1", provider="anthropic")]
    theirs = record(user="u2")
    for r in [*mine, theirs, record(tenant="t2")]:
        await store.put(r)
    assert await store.list("t1", "u1") == sorted(mine, key=lambda r: r.provider)
    assert [r.user for r in await store.list("t1")] == ["u1", "u1", "u2"]
    assert await store.list("t3") == []


async def test_delete_is_tenant_scoped(store: SqliteKeyStore) -> None:
    r = record(tenant="t1")
    await store.put(r)
    assert await store.delete("t2", r.ref) is False
    assert await store.get(r.ref) == r
    assert await store.delete("t1", r.ref) is True
    assert await store.get(r.ref) is None
    assert await store.delete("t1", r.ref) is False


async def test_same_owner_provider_and_name_replaces(store: SqliteKeyStore) -> None:
    first = record(envelope="v1.first")
    second = record(envelope="v1.second", created_at=200.0)
    await store.put(first)
    await store.put(second)
    assert await store.get(first.ref) is None  # the old ref no longer resolves
    assert await store.find("t1", "u1", "openai", "default") == second
    assert await store.all_refs() == [second.ref]


async def test_putting_the_same_ref_again_updates_it(store: SqliteKeyStore) -> None:
    r = record()
    await store.put(r)
    updated = replace(r, last_four="abcd", updated_at=150.0)
    await store.put(updated)
    assert await store.get(r.ref) == updated


async def test_a_ref_of_another_owner_is_refused(store: SqliteKeyStore) -> None:
    theirs = record(tenant="t1")
    await store.put(theirs)
    with pytest.raises(ValueError, match="another record"):
        await store.put(record(tenant="t2", ref=theirs.ref))
    assert await store.get(theirs.ref) == theirs


async def test_replace_envelope(store: SqliteKeyStore, clock: FakeClock) -> None:
    r = record()
    await store.put(r)
    clock.advance(60.0)
    await store.replace_envelope(r.ref, "v1.rewrapped")
    got = await store.get(r.ref)
    assert got == replace(r, envelope="v1.rewrapped", updated_at=clock.wall())
    with pytest.raises(KeyError):
        await store.replace_envelope(new_ref(), "v1.x")


async def test_all_refs(store: SqliteKeyStore) -> None:
    assert await store.all_refs() == []
    records = [record(user=f"u{i}") for i in range(5)]
    for r in records:
        await store.put(r)
    assert await store.all_refs() == sorted(r.ref for r in records)


async def test_file_persists_across_reopen(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "keys.db"
    r = record()
    first = SqliteKeyStore(path, clock)
    await first.put(r)
    await first.aclose()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = SqliteKeyStore(str(path), clock)
    try:
        assert await again.get(r.ref) == r
        assert await again.all_refs() == [r.ref]
    finally:
        await again.aclose()


async def test_memory_stores_are_private(clock: FakeClock) -> None:
    a, b = SqliteKeyStore(":memory:", clock), SqliteKeyStore(":memory:", clock)
    try:
        r = record()
        await a.put(r)
        assert await b.get(r.ref) is None
    finally:
        await a.aclose()
        await b.aclose()


async def test_closed_store_refuses_and_close_is_idempotent(clock: FakeClock) -> None:
    s = SqliteKeyStore(":memory:", clock)
    await s.aclose()
    await s.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await s.get("key_x")


async def test_newer_schema_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    import sqlite3

    path = tmp_path / "keys.db"
    s = SqliteKeyStore(path, clock)
    await s.all_refs()
    await s.aclose()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    conn.close()
    newer = SqliteKeyStore(path, clock)
    try:
        with pytest.raises(RuntimeError, match="schema version 99"):
            await newer.all_refs()
    finally:
        await newer.aclose()


def test_repr_hides_the_envelope() -> None:
    r = record(envelope="v1.TOP-SECRET-ENVELOPE")
    for text in (repr(r), str(r), f"{r}", repr([r])):
        assert "TOP-SECRET" not in text
        assert r.ref in text and "wxyz" in text and "openai" in text


async def test_injection_looking_values_are_stored_literally(store: SqliteKeyStore) -> None:
    evil = "x'; DROP TABLE key_records; --"
    r = record(tenant=evil, user='u" OR 1=1 --', provider="openai", key_name="%_*", envelope=evil)
    innocent = record()
    await store.put(r)
    await store.put(innocent)
    assert await store.get(r.ref) == r
    assert await store.find(evil, 'u" OR 1=1 --', "openai", "%_*") == r
    assert await store.list(evil) == [r]
    assert await store.find("t1", "' OR '1'='1", "openai") is None
    assert await store.delete("' OR '1'='1", innocent.ref) is False
    assert sorted(await store.all_refs()) == sorted([r.ref, innocent.ref])
