"""Encrypted key records: the KeyStore seam and its embedded default, SQLite.

A record holds a user's provider key only as an envelope (`Envelope.encode()` output) plus its last
four characters for display. The plaintext is never stored.

`SqliteKeyStore` runs the stdlib `sqlite3` in one dedicated thread (a 1-worker executor), so calls
are serialised, never block the event loop, and the connection is only ever used by the thread that
opened it. The database runs in WAL mode; `":memory:"` gives a private, throwaway store.
"""

from __future__ import annotations

import builtins
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from sidecar.core.clock import Clock
from sidecar.core.errors import (
    InvalidEnvelopeError,
    KeyBackendUnavailableError,
    KeyDecryptError,
    KeyLimitReachedError,
    SidecarError,
)
from sidecar.keys.envelope import Envelope, KeyRecordCorruptError
from sidecar.stores.sqlite import MEMORY as MEMORY  # re-exported: ":memory:" for callers
from sidecar.stores.sqlite import SqliteThread, create_owner_only

T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS key_records (
    ref        TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    user       TEXT NOT NULL,
    provider   TEXT NOT NULL,
    key_name   TEXT NOT NULL,
    envelope   TEXT NOT NULL,
    last_four  TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (tenant, user, provider, key_name)
);
CREATE INDEX IF NOT EXISTS key_records_by_user ON key_records (tenant, user, provider, created_at);
"""
_COLUMNS = "ref, tenant, user, provider, key_name, envelope, last_four, created_at, updated_at"


@dataclass(frozen=True, slots=True, repr=False)
class KeyRecord:
    """One stored provider key of one user, under an opaque reference."""

    ref: str  # opaque key reference: new_ref()
    tenant: str
    user: str
    provider: str
    key_name: str
    envelope: str  # Envelope.encode() output: the only form of the key that is stored
    last_four: str
    created_at: float  # wall time
    updated_at: float  # wall time; changes when the envelope is rewrapped

    def __repr__(self) -> str:
        return (
            f"KeyRecord(ref={self.ref!r}, tenant={self.tenant!r}, user={self.user!r}, "
            f"provider={self.provider!r}, key_name={self.key_name!r}, last_four={self.last_four!r})"
        )


class KeyStore(Protocol):
    """Where key records live. Reads and writes are by ref, or by owner (tenant, user) and provider."""

    async def put(self, record: KeyRecord, *, max_per_user: int | None = None) -> None:
        """Insert. A record with the same (tenant, user, provider, key_name) is replaced: the old one
        is deleted, ref and all, so its ref no longer resolves. A ref held by another owner is refused.
        With `max_per_user`, a record that would be the user's key past that many is refused
        (KeyLimitReachedError), counted and written in one step."""
        ...

    async def get(self, ref: str) -> KeyRecord | None: ...

    async def find(
        self, tenant: str, user: str, provider: str, key_name: str | None = None
    ) -> KeyRecord | None:
        """The user's key for a provider: the named one, or the most recently created."""
        ...

    async def list(self, tenant: str, user: str | None = None) -> list[KeyRecord]:
        """A tenant's records (or one user's), ordered by user, provider and key name."""
        ...

    async def delete(self, tenant: str, ref: str) -> bool:
        """Delete a record of this tenant; False if there is none (another tenant's ref included)."""
        ...

    async def replace_envelope(self, ref: str, envelope: str) -> None:
        """Store a rewrapped envelope (rotation) and bump updated_at; KeyError if the ref is gone."""
        ...

    async def all_refs(self) -> builtins.list[str]: ...

    async def aclose(self) -> None: ...


def new_ref() -> str:
    """A fresh opaque key reference: "key_" and 22 url-safe random characters (128 bits)."""
    return "key_" + secrets.token_urlsafe(16)


class SqliteKeyStore:
    """KeyStore on an SQLite file (or ":memory:"); the schema is created on first use."""

    def __init__(self, path: str | Path, clock: Clock) -> None:
        self._path = str(path)
        self._clock = clock
        self._db = SqliteThread("sqlite-key-store", lambda: _open(self._path))

    async def put(self, record: KeyRecord, *, max_per_user: int | None = None) -> None:
        await self._run(lambda conn: _put(conn, record, max_per_user))

    async def get(self, ref: str) -> KeyRecord | None:
        return await self._run(lambda conn: _one(conn, "WHERE ref = ?", (ref,)))

    async def find(
        self, tenant: str, user: str, provider: str, key_name: str | None = None
    ) -> KeyRecord | None:
        owner = "WHERE tenant = ? AND user = ? AND provider = ?"
        if key_name is not None:
            args = (tenant, user, provider, key_name)
            return await self._run(lambda conn: _one(conn, owner + " AND key_name = ?", args))
        newest = owner + " ORDER BY created_at DESC, rowid DESC LIMIT 1"
        return await self._run(lambda conn: _one(conn, newest, (tenant, user, provider)))

    async def list(self, tenant: str, user: str | None = None) -> list[KeyRecord]:
        order = " ORDER BY user, provider, key_name"
        if user is None:
            return await self._run(lambda conn: _many(conn, "WHERE tenant = ?" + order, (tenant,)))
        where = "WHERE tenant = ? AND user = ?" + order
        return await self._run(lambda conn: _many(conn, where, (tenant, user)))

    async def delete(self, tenant: str, ref: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            with conn:
                deleted = conn.execute("DELETE FROM key_records WHERE ref = ? AND tenant = ?", (ref, tenant))
            return deleted.rowcount > 0

        return await self._run(delete)

    async def replace_envelope(self, ref: str, envelope: str) -> None:
        now = self._clock.wall()

        def replace(conn: sqlite3.Connection) -> None:
            with conn:
                sql = "UPDATE key_records SET envelope = ?, updated_at = ? WHERE ref = ?"
                if conn.execute(sql, (envelope, now, ref)).rowcount == 0:
                    raise KeyError(ref)

        await self._run(replace)

    async def all_refs(self) -> builtins.list[str]:
        def refs(conn: sqlite3.Connection) -> list[str]:
            return [str(row[0]) for row in conn.execute("SELECT ref FROM key_records ORDER BY ref")]

        return await self._run(refs)

    async def aclose(self) -> None:
        """Close the connection and stop the thread. Idempotent; the store cannot be used afterwards."""
        await self._db.aclose()

    async def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._db.run(op)
        except (sqlite3.Error, OSError) as exc:
            raise sqlite_failure(exc) from exc


def sqlite_failure(exc: sqlite3.Error | OSError) -> SidecarError:
    """A failure of the key store's file, classified (its message names no value): busy or locked
    (another process holds the file past the 5 s wait) is retryable, KEY_BACKEND_UNAVAILABLE; anything
    else (a path that cannot be opened, a full disk, a damaged file) is our misconfiguration."""
    if isinstance(exc, OSError):
        kind = type(exc).__name__
        why = exc.strerror or kind
    else:
        kind, why = getattr(exc, "sqlite_errorname", type(exc).__name__), str(exc)
    if kind in ("SQLITE_BUSY", "SQLITE_LOCKED"):
        return KeyBackendUnavailableError(
            f"the key store (SQLite) is busy: {why}", metadata={"storeError": kind}, retry_after=1.0
        )
    return KeyDecryptError(f"the key store (SQLite) failed: {why}", metadata={"storeError": kind})


def open_once(path: str | Path) -> None:
    """Open the store's file as its first use would (creating it and its schema), and close it:
    sqlite3.Error, OSError or RuntimeError (a newer schema) when it cannot be used."""
    _open(str(path)).close()


def _open(path: str) -> sqlite3.Connection:
    create_owner_only(path)
    conn = sqlite3.connect(path, timeout=5.0)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        with conn:
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
            if row[0] is None:
                conn.execute("INSERT OR IGNORE INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif int(row[0]) > SCHEMA_VERSION:
                raise RuntimeError(
                    f"key store {path!r} has schema version {row[0]}; this sidecar knows {SCHEMA_VERSION}"
                )
    except BaseException:
        conn.close()
        raise
    return conn


def key_limit_reached(kept: int, max_per_user: int) -> KeyLimitReachedError:
    return KeyLimitReachedError(
        f"user keeps {kept} keys, the most allowed (settings.keys.max_keys_per_user); "
        "delete one, or register under a name already used to replace it",
        metadata={"maxKeys": str(max_per_user)},
    )


def _put(conn: sqlite3.Connection, r: KeyRecord, max_per_user: int | None) -> None:
    with conn:
        conn.execute("BEGIN IMMEDIATE")  # the count and the write in one step, other processes too
        if max_per_user is not None:
            _check_room(conn, r, max_per_user)
        held = conn.execute(
            "SELECT tenant, user, provider, key_name FROM key_records WHERE ref = ?", (r.ref,)
        )
        owner = held.fetchone()
        if owner is not None and tuple(owner) != (r.tenant, r.user, r.provider, r.key_name):
            raise ValueError(f"key ref {r.ref!r} already belongs to another record")
        # OR REPLACE deletes the row holding this ref or this (tenant, user, provider, key_name).
        conn.execute(
            f"INSERT OR REPLACE INTO key_records ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            astuple(r),
        )


def _check_room(conn: sqlite3.Connection, r: KeyRecord, max_per_user: int) -> None:
    """A new name of a user who keeps `max_per_user` keys already is refused; a kept name is not."""
    owner = "FROM key_records WHERE tenant = ? AND user = ?"
    slot = conn.execute(f"SELECT 1 {owner} AND provider = ? AND key_name = ?", astuple(r)[1:5]).fetchone()
    (kept,) = conn.execute(f"SELECT COUNT(*) {owner}", (r.tenant, r.user)).fetchone()
    if slot is None and kept >= max_per_user:
        raise key_limit_reached(kept, max_per_user)


def stored_envelope(record: KeyRecord) -> str:
    """A stored record's envelope, if it still parses: one that does not (bad base64, truncated) is a
    damaged record, KeyRecordCorruptError, not the caller's invalid argument."""
    try:
        Envelope.decode(record.envelope)
    except InvalidEnvelopeError as exc:
        raise KeyRecordCorruptError("the stored envelope does not parse", ref=record.ref) from exc
    return record.envelope


def _one(conn: sqlite3.Connection, where: str, args: tuple[str, ...]) -> KeyRecord | None:
    rows = _many(conn, where, args)
    return rows[0] if rows else None


def _many(conn: sqlite3.Connection, where: str, args: tuple[str, ...]) -> list[KeyRecord]:
    # `where` is always one of this module's literals; values travel only as parameters.
    rows = conn.execute(f"SELECT {_COLUMNS} FROM key_records {where}", args).fetchall()
    return [KeyRecord(*row) for row in rows]  # columns in field order; REAL comes back as float
