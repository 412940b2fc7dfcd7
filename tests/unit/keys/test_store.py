from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sidecar.core.errors import KeyDecryptError, KeyLimitReachedError
from sidecar.keys.redis_store import RedisKeyStore
from sidecar.keys.store import KeyRecord, KeyStore, SqliteKeyStore, new_ref
from tests.conftest import FakeClock
from tests.support.redis import flush_redis

STORES = ["sqlite", "redis"]


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


async def open_store(kind: str, request: pytest.FixtureRequest, clock: FakeClock) -> KeyStore:
    """A fresh, empty store of this kind; a Redis one starts from a flushed database."""
    if kind == "sqlite":
        return SqliteKeyStore(":memory:", clock)
    url: str = request.getfixturevalue("redis_url")
    await flush_redis(url)
    return RedisKeyStore.from_url(url, clock)


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[KeyStore]:
    """Every test that takes `store` runs against SQLite and against a real redis-server."""
    s = await open_store(request.param, request, clock)
    yield s
    await s.aclose()


def test_stores_are_key_stores(clock: FakeClock) -> None:
    s: KeyStore = SqliteKeyStore(":memory:", clock)
    r: KeyStore = RedisKeyStore.from_url("redis://127.0.0.1:1/0", clock)  # connects on first use only
    assert s is not None and r is not None


def test_new_ref_shape() -> None:
    refs = {new_ref() for _ in range(100)}
    assert len(refs) == 100
    assert all(re.fullmatch(r"key_[A-Za-z0-9_-]{22}", r) for r in refs)


async def test_put_get(store: KeyStore) -> None:
    r = record()
    await store.put(r)
    assert await store.get(r.ref) == r
    assert await store.get(new_ref()) is None


async def test_find_by_name_and_newest(store: KeyStore) -> None:
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


async def test_list_by_tenant_and_user(store: KeyStore) -> None:
    mine = [record(user="u1", provider="openai"), record(user="u1", provider="anthropic")]
    theirs = record(user="u2")
    for r in [*mine, theirs, record(tenant="t2")]:
        await store.put(r)
    assert await store.list("t1", "u1") == sorted(mine, key=lambda r: r.provider)
    assert [r.user for r in await store.list("t1")] == ["u1", "u1", "u2"]
    assert await store.list("t3") == []


async def test_delete_is_tenant_scoped(store: KeyStore) -> None:
    r = record(tenant="t1")
    await store.put(r)
    assert await store.delete("t2", r.ref) is False
    assert await store.get(r.ref) == r
    assert await store.delete("t1", r.ref) is True
    assert await store.get(r.ref) is None
    assert await store.delete("t1", r.ref) is False


async def test_same_owner_provider_and_name_replaces(store: KeyStore) -> None:
    first = record(envelope="v1.first")
    second = record(envelope="v1.second", created_at=200.0)
    await store.put(first)
    await store.put(second)
    assert await store.get(first.ref) is None  # the old ref no longer resolves
    assert await store.find("t1", "u1", "openai", "default") == second
    assert await store.all_refs() == [second.ref]


async def test_putting_the_same_ref_again_updates_it(store: KeyStore) -> None:
    r = record()
    await store.put(r)
    updated = replace(r, last_four="abcd", updated_at=150.0)
    await store.put(updated)
    assert await store.get(r.ref) == updated


async def test_a_ref_of_another_owner_is_refused(store: KeyStore) -> None:
    theirs = record(tenant="t1")
    await store.put(theirs)
    with pytest.raises(ValueError, match="another record"):
        await store.put(record(tenant="t2", ref=theirs.ref))
    with pytest.raises(ValueError, match="another record"):
        await store.put(record(tenant="t1", user="u2", ref=theirs.ref))  # same tenant, other owner
    assert await store.get(theirs.ref) == theirs
    assert await store.all_refs() == [theirs.ref]


async def test_replace_envelope(store: KeyStore, clock: FakeClock) -> None:
    r = record()
    await store.put(r)
    clock.advance(60.0)
    await store.replace_envelope(r.ref, "v1.rewrapped")
    got = await store.get(r.ref)
    assert got == replace(r, envelope="v1.rewrapped", updated_at=clock.wall())
    with pytest.raises(KeyError):
        await store.replace_envelope(new_ref(), "v1.x")


async def test_all_refs(store: KeyStore) -> None:
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


@pytest.mark.parametrize("kind", STORES)
async def test_closed_store_refuses_and_close_is_idempotent(
    kind: str, request: pytest.FixtureRequest, clock: FakeClock
) -> None:
    s = await open_store(kind, request, clock)
    await s.put(record())
    await s.aclose()
    await s.aclose()
    calls = (lambda: s.get("key_x"), s.all_refs, lambda: s.put(record()), lambda: s.delete("t1", "key_x"))
    for call in calls:
        with pytest.raises(RuntimeError, match="closed"):
            await call()


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


async def test_injection_looking_values_are_stored_literally(store: KeyStore) -> None:
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


async def test_separators_in_names_never_merge_owners(store: KeyStore) -> None:
    a = record(tenant="t:1", user="a:b", provider="c", key_name="d")
    b = record(tenant="t:1", user="a", provider="b:c", key_name="d")
    c = record(tenant="t}:{1", user="a", provider="b", key_name="c:d")
    d = record(tenant="", user="", provider="", key_name="")
    for r in (a, b, c, d):
        await store.put(r)
    assert await store.all_refs() == sorted(r.ref for r in (a, b, c, d))
    assert await store.find("t:1", "a:b", "c") == a
    assert await store.find("t:1", "a", "b:c", "d") == b
    assert await store.list("t}:{1") == [c]
    assert await store.list("") == [d]
    assert await store.find("", "", "") == d


async def test_find_newest_breaks_ties_by_insertion(store: KeyStore) -> None:
    first, second = record(key_name="b"), record(key_name="a")  # same created_at
    await store.put(first)
    await store.put(second)
    assert await store.find("t1", "u1", "openai") == second


async def test_a_put_past_the_users_limit_is_refused_in_the_store(store: KeyStore) -> None:
    """The limit holds where the records are: checked and written in one step, so concurrent
    registrations of new names (each checked the count before its KMS call) cannot pass it."""
    kept = [record(key_name=name) for name in ("a", "b")]
    for r in kept:
        await store.put(r, max_per_user=2)
    with pytest.raises(KeyLimitReachedError):
        await store.put(record(key_name="c"), max_per_user=2)
    with pytest.raises(KeyLimitReachedError):
        await store.put(record(provider="anthropic", key_name="a"), max_per_user=2)
    replacing = record(key_name="b", envelope="v1.replaced")  # a kept name: replaced, not counted
    await store.put(replacing, max_per_user=2)
    await store.put(record(user="u2", key_name="c"), max_per_user=2)  # another user's own count
    assert sorted(r.key_name for r in await store.list("t1", "u1")) == ["a", "b"]
    assert await store.find("t1", "u1", "openai", "b") == replacing
    assert len(await store.all_refs()) == 3  # nothing of a refused put was kept


async def test_concurrent_puts_of_new_names_keep_to_the_limit(store: KeyStore) -> None:
    puts = [store.put(record(key_name=f"k{i}"), max_per_user=3) for i in range(12)]
    results = await asyncio.gather(*puts, return_exceptions=True)
    assert sum(1 for x in results if x is None) == 3
    assert all(isinstance(x, KeyLimitReachedError) for x in results if x is not None)
    assert len(await store.list("t1", "u1")) == 3
    assert len(await store.all_refs()) == 3


# Redis only: the shared layout, cluster hash tags, and two sidecars on one Redis.


@pytest.fixture
async def redis_store(redis_url: str, clock: FakeClock) -> AsyncIterator[RedisKeyStore]:
    await flush_redis(redis_url)
    s = RedisKeyStore.from_url(redis_url, clock)
    yield s
    await s.aclose()


async def raw_redis(url: str) -> Any:
    from redis.asyncio import Redis

    return Redis.from_url(url, decode_responses=True)


def hash_tag(key: str) -> str:
    """The part of a key Redis Cluster hashes: the first non-empty {...}, else the whole key."""
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1 : end] if start >= 0 and end > start + 1 else key


async def test_redis_key_layout(redis_store: RedisKeyStore, redis_url: str) -> None:
    r = record(tenant="acme", user="u:1 é", envelope="v1.ENVELOPE-ONLY")
    await redis_store.put(r)
    client = await raw_redis(redis_url)
    try:
        keys = set(await client.keys("*"))
        user = "u%3A1%20%C3%A9"  # percent-encoded, as urllib.parse.quote(user, safe="")
        assert keys == {
            f"orch:keys:{{acme}}:rec:{r.ref}",
            f"orch:keys:{{acme}}:owner:{user}:openai:default",
            f"orch:keys:{{acme}}:user:{user}",
            "orch:keys:{acme}:idx",
            "orch:keys:{acme}:seq",
            "orch:keys:refs",
        }
        assert {hash_tag(k) for k in keys if k != "orch:keys:refs"} == {"acme"}  # one cluster slot
        stored = await client.hgetall(f"orch:keys:{{acme}}:rec:{r.ref}")
        assert stored == {
            "ref": r.ref, "tenant": "acme", "user": "u:1 é", "provider": "openai", "key_name": "default",
            "envelope": "v1.ENVELOPE-ONLY", "last_four": "wxyz", "created_at": "100.0",
            "updated_at": "100.0", "seq": "1",
        }  # fmt: skip
        assert await client.hgetall("orch:keys:refs") == {r.ref: "acme"}
        await redis_store.delete("acme", r.ref)
        assert await client.keys("*") == ["orch:keys:{acme}:seq"]
    finally:
        await client.aclose()


async def test_redis_tenant_tags_hold_one_slot_per_tenant(redis_store: RedisKeyStore, redis_url: str) -> None:
    tenants = ["a}b", "{x}", "", "%", "t:1"]
    for t in tenants:
        await redis_store.put(record(tenant=t))
    client = await raw_redis(redis_url)
    try:
        keys = [k for k in await client.keys("*") if k != "orch:keys:refs"]
    finally:
        await client.aclose()
    by_tag: dict[str, set[str]] = {}
    for k in keys:
        by_tag.setdefault(hash_tag(k), set()).add(k.split("}:")[-1].split(":")[0])
    assert len(by_tag) == len(tenants)  # one slot each, and no tenant's tag spills into another's
    assert all(kinds == {"rec", "owner", "user", "idx", "seq"} for kinds in by_tag.values())


async def test_two_sidecars_share_one_redis(
    redis_store: RedisKeyStore, redis_url: str, clock: FakeClock
) -> None:
    other = RedisKeyStore.from_url(redis_url, clock)
    try:
        r = record()
        await redis_store.put(r)
        assert await other.get(r.ref) == r
        assert await other.find("t1", "u1", "openai") == r
        await other.replace_envelope(r.ref, "v1.rewrapped")
        assert (await redis_store.get(r.ref)) == replace(r, envelope="v1.rewrapped", updated_at=clock.wall())
        assert await other.delete("t1", r.ref) is True
        assert await redis_store.get(r.ref) is None
    finally:
        await other.aclose()


async def test_redis_concurrent_claims_of_one_ref(redis_store: RedisKeyStore) -> None:
    ref = new_ref()
    puts = [redis_store.put(record(tenant=f"t{i}", ref=ref)) for i in range(8)]
    results = await asyncio.gather(*puts, return_exceptions=True)
    assert sum(1 for x in results if x is None) == 1
    assert all(isinstance(x, ValueError) for x in results if x is not None)
    assert await redis_store.all_refs() == [ref]


async def test_redis_leftover_map_entries_are_harmless(redis_store: RedisKeyStore, redis_url: str) -> None:
    kept, ghost = record(), new_ref()
    await redis_store.put(kept)
    client = await raw_redis(redis_url)
    try:
        await client.hset("orch:keys:refs", ghost, "t1")  # as if a put died between its two steps
    finally:
        await client.aclose()
    assert await redis_store.get(ghost) is None
    assert await redis_store.all_refs() == [kept.ref]
    with pytest.raises(KeyError):
        await redis_store.replace_envelope(ghost, "v1.x")
    again = record(user="u2", ref=ghost)
    await redis_store.put(again)  # the same tenant may still use it
    assert await redis_store.get(ghost) == again


def test_redis_prefix_must_not_hold_hash_tags(clock: FakeClock) -> None:
    for prefix in ("", "a{b", "a}b"):
        with pytest.raises(ValueError, match="prefix"):
            RedisKeyStore.from_url("redis://127.0.0.1:1/0", clock, prefix=prefix)


async def test_settings_choose_the_redis_store(tmp_path: Path, redis_url: str, clock: FakeClock) -> None:
    from pydantic import ValidationError

    from sidecar.config.keys import KeysSettings
    from sidecar.keys.backend import KeyContext
    from sidecar.keys.build import build_keys
    from sidecar.keys.local import LocalKekBackend
    from tests.conftest import echo_policy, make_config

    assert KeysSettings().store == "sqlite"
    with pytest.raises(ValidationError, match="redis_url"):
        KeysSettings(store="redis")
    with pytest.raises(ValidationError, match="redis_url"):
        KeysSettings(store="redis", redis_url="http://127.0.0.1:6379")
    await flush_redis(redis_url)
    kek = tmp_path / "kek"
    LocalKekBackend.generate_file(kek)
    keys = {"backend": "local", "local": {"kek_file": str(kek)}, "store": "redis", "redis_url": redis_url}
    keys["store_path"] = str(tmp_path / "keys.db")
    cfg = make_config({"settings": {"keys": keys}, "policy": echo_policy()}, tmp=tmp_path)
    service = build_keys(cfg, clock)
    assert service is not None
    reader = RedisKeyStore.from_url(redis_url, clock)
    try:
        r = await service.register(KeyContext("t1", "u1", "openai", "default"), b"sk-plaintext-secret-1234")
        assert await reader.get(r.ref) == r  # the service wrote to Redis, not to the SQLite file
        assert not (tmp_path / "keys.db").exists()
        client = await raw_redis(redis_url)
        try:
            read = {"hash": client.hgetall, "string": client.get, "set": client.smembers}
            stored = [str(await read[await client.type(k)](k)) for k in await client.keys("*")]
        finally:
            await client.aclose()
        assert len(stored) == 6 and not any("sk-plaintext" in v for v in stored)  # the envelope only
    finally:
        await reader.aclose()
        await service.aclose()


async def test_a_store_file_that_cannot_be_opened_is_a_classified_key_error(
    tmp_path: Path, clock: FakeClock
) -> None:
    """sqlite3 and OS errors went out raw: with `store_path` in a directory that does not exist the
    sidecar served, and every key call (RegisterKey, ListKeys, a Generate with a user key) was an
    INTERNAL crash with an ERROR traceback."""
    store = SqliteKeyStore(tmp_path / "absent" / "keys.db", clock)
    try:
        with pytest.raises(KeyDecryptError) as caught:
            await store.list("acme", "alice")
    finally:
        await store.aclose()
    assert caught.value.reason == "KEY_UNAVAILABLE"
    assert caught.value.message == "the key store (SQLite) failed: No such file or directory"
    assert caught.value.metadata == {"storeError": "FileNotFoundError"}
