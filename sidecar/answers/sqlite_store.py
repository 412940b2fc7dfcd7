"""The embedded answer store: SQLite (stdlib, on one dedicated thread) holds everything; each agent's
canonical vectors are also kept in memory, loaded at the agent's first search, so a search is one
matrix-vector product. One sidecar per file: use the Redis store to share between sidecars."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from sidecar.answers.model import CanonicalAnswer, Escalation, State
from sidecar.answers.store import Accepted, Limits, OfferCaps, PathCounts, best, comparable, readable, unit
from sidecar.stores.sqlite import SqliteThread, create_owner_only

if TYPE_CHECKING:
    from sidecar.answers.store import Vector

T = TypeVar("T")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS canonical (
  id TEXT PRIMARY KEY, tenant TEXT NOT NULL, agent TEXT NOT NULL, layer TEXT NOT NULL,
  question TEXT NOT NULL, answer TEXT NOT NULL, created_at REAL NOT NULL, source TEXT NOT NULL,
  reuse_count INTEGER NOT NULL DEFAULT 0, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS canonical_agent ON canonical (tenant, agent);
CREATE TABLE IF NOT EXISTS escalations (
  id TEXT PRIMARY KEY, tenant TEXT NOT NULL, agent TEXT NOT NULL, state TEXT NOT NULL,
  created_at REAL NOT NULL, doc TEXT NOT NULL, due_at REAL, closed_at REAL);
CREATE INDEX IF NOT EXISTS escalations_agent ON escalations (tenant, agent, created_at);
CREATE TABLE IF NOT EXISTS escalation_counts (
  tenant TEXT NOT NULL, agent TEXT NOT NULL, bucket TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (tenant, agent, bucket));
CREATE TABLE IF NOT EXISTS path_counts (
  tenant TEXT NOT NULL, agent TEXT NOT NULL, path TEXT NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (tenant, agent, path));
CREATE TABLE IF NOT EXISTS path_users (
  tenant TEXT NOT NULL, agent TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (tenant, agent, user));
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS escalations_due ON escalations (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS escalations_state ON escalations (state, agent);
CREATE INDEX IF NOT EXISTS escalations_closed ON escalations (closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS escalations_open ON escalations (tenant, agent, state, due_at);
"""
_BACKFILL_DUE = (  # a file written before due_at existed: the deadline of each open escalation
    "UPDATE escalations SET due_at = CASE state"
    " WHEN 'offered' THEN json_extract(doc, '$.offer_expires_at')"
    " WHEN 'queued' THEN json_extract(doc, '$.expires_at') END"
)
_BACKFILL_CLOSED = (  # a file written before closed_at existed: when each closed escalation closed
    "UPDATE escalations SET closed_at = json_extract(doc, '$.closed_at')"
    " WHERE state IN ('answered', 'declined', 'expired')"
)
_ORDER = "ORDER BY created_at, id"
_CANONICAL = "id, tenant, agent, layer, question, answer, created_at, source, reuse_count"


@dataclass(slots=True)
class _Vectors:
    """One agent's canonical vectors, in memory."""

    ids: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    rows: list[Vector] = field(default_factory=list)
    matrix: Vector | None = None


class SqliteAnswerStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._db = SqliteThread("sqlite-answer-store", lambda: _open(path))
        self._run = self._db.run
        self._vectors: dict[tuple[str, str], _Vectors] = {}
        self._adds: dict[
            tuple[str, str], int
        ] = {}  # answers added per agent: a load that raced one is not kept

    async def add_canonical(self, answer: CanonicalAnswer, vector: Vector) -> None:
        v = unit(vector)
        row = (*_canonical_row(answer), v.tobytes())

        def add(conn: sqlite3.Connection) -> bool:
            sql = f"INSERT OR IGNORE INTO canonical ({_CANONICAL}, vector) VALUES (?,?,?,?,?,?,?,?,?,?)"
            return conn.execute(sql, row).rowcount == 1

        key = (answer.tenant, answer.agent)
        added = await self._run(add)  # an id stored before (a seed at a restart) is kept as it is
        self._adds[key] = self._adds.get(key, 0) + 1
        held = self._vectors.get(key)
        if added and held is not None and answer.id not in held.ids:  # a load may have read it already
            held.ids.append(answer.id)
            held.layers.append(answer.layer)
            held.rows.append(v)
            held.matrix = None

    async def nearest(
        self, tenant: str, agent: str, layers: Sequence[str], vector: Vector
    ) -> tuple[CanonicalAnswer, float] | None:
        held = await self._load(tenant, agent)
        visible = [i for i, layer in enumerate(held.layers) if layer in layers]
        keep = [visible[j] for j in comparable([held.rows[i].shape[0] for i in visible], vector)]
        if not keep:
            return None
        if held.matrix is None or held.matrix.shape[1] != vector.shape[0]:
            held.matrix = _stacked(held.rows, vector.shape[0])
        i, similarity = best(held.matrix[keep], vector)
        answer_id = held.ids[keep[i]]
        found = await self._run(lambda c: _canonical_one(c, tenant, agent, answer_id))
        return None if found is None else (found, similarity)

    async def reused(self, tenant: str, agent: str, answer_id: str) -> None:
        sql = "UPDATE canonical SET reuse_count = reuse_count + 1 WHERE id = ? AND tenant = ? AND agent = ?"
        await self._write(sql, (answer_id, tenant, agent))

    async def has_canonical(self, tenant: str, agent: str, answer_id: str) -> bool:
        def select(conn: sqlite3.Connection) -> bool:
            sql = "SELECT 1 FROM canonical WHERE id = ? AND tenant = ? AND agent = ?"
            return conn.execute(sql, (answer_id, tenant, agent)).fetchone() is not None

        return await self._run(select)

    async def canonical(self, tenant: str, agent: str) -> list[CanonicalAnswer]:
        def select(conn: sqlite3.Connection) -> list[CanonicalAnswer]:
            sql = f"SELECT {_CANONICAL} FROM canonical WHERE tenant = ? AND agent = ? {_ORDER}"
            return [_canonical(r) for r in conn.execute(sql, (tenant, agent))]

        return await self._run(select)

    async def put(self, escalation: Escalation) -> None:
        await self._write(_INSERT, _row(escalation))

    async def offer(self, escalation: Escalation, caps: OfferCaps) -> bool:
        e = escalation

        def offer(conn: sqlite3.Connection) -> bool:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                sql = (
                    "SELECT json_extract(doc, '$.user') FROM escalations"
                    " WHERE tenant = ? AND agent = ? AND state = ? AND due_at > ?"
                )
                users = [
                    r[0] for r in conn.execute(sql, (e.tenant, e.agent, State.OFFERED.value, e.created_at))
                ]
                if len(users) >= caps.per_tenant or users.count(e.user) >= caps.per_user:
                    return False
                conn.execute(_INSERT, _row(e))
                return True

        return await self._run(offer)

    async def get(self, tenant: str, escalation_id: str) -> Escalation | None:
        def select(conn: sqlite3.Connection) -> Escalation | None:
            sql = "SELECT doc FROM escalations WHERE id = ? AND tenant = ?"
            row = conn.execute(sql, (escalation_id, tenant)).fetchone()
            return None if row is None else Escalation.decode(row[0])

        return await self._run(select)

    async def replace(self, expect: State, new: Escalation) -> bool:
        def swap(conn: sqlite3.Connection) -> bool:
            with conn:
                return _swap(conn, expect, new)

        return await self._run(swap)

    async def due(self, now: float, limit: int) -> list[Escalation]:
        def select(conn: sqlite3.Connection) -> list[Escalation]:
            sql = "SELECT doc FROM escalations WHERE due_at <= ? ORDER BY due_at, id LIMIT ?"
            return [e for r in conn.execute(sql, (now, limit)) if (e := readable(r[0])) is not None]

        return [e for e in await self._run(select) if e.due(now)]

    async def forget(self, before: float, limit: int) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            with conn:
                sql = (
                    "DELETE FROM escalations WHERE id IN (SELECT id FROM escalations"
                    " WHERE closed_at < ? ORDER BY closed_at, id LIMIT ?)"
                )
                return conn.execute(sql, (before, limit)).rowcount

        return await self._run(delete)

    async def backlog(self, agents: Collection[str]) -> dict[str, int]:
        def count(conn: sqlite3.Connection) -> dict[str, int]:
            sql = "SELECT agent, COUNT(*) FROM escalations WHERE state = ? GROUP BY agent"
            return {str(a): int(n) for a, n in conn.execute(sql, (State.QUEUED.value,))}

        found = await self._run(count)
        return {agent: found.get(agent, 0) for agent in agents}

    async def accept(self, expect: State, new: Escalation, limits: Limits) -> Accepted:
        def accept(conn: sqlite3.Connection) -> Accepted:
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                sql = "SELECT state FROM escalations WHERE id = ? AND tenant = ?"
                row = conn.execute(sql, (new.id, new.tenant)).fetchone()
                if row is None:
                    return Accepted.NOT_FOUND
                if row[0] != expect.value:
                    return Accepted.WRONG_STATE
                day, week = _used(conn, new.tenant, new.agent, limits)
                if limits.per_day is not None and day >= limits.per_day:
                    return Accepted.DAY_LIMIT
                if limits.per_week is not None and week >= limits.per_week:
                    return Accepted.WEEK_LIMIT
                for bucket in (limits.day, limits.week):
                    conn.execute(
                        "INSERT INTO escalation_counts (tenant, agent, bucket, n) VALUES (?,?,?,1) "
                        "ON CONFLICT (tenant, agent, bucket) DO UPDATE SET n = n + 1",
                        (new.tenant, new.agent, bucket),
                    )
                _swap(conn, expect, new)
                return Accepted.OK

        return await self._run(accept)

    async def used(self, tenant: str, agent: str, limits: Limits) -> tuple[int, int]:
        return await self._run(lambda conn: _used(conn, tenant, agent, limits))

    async def escalations(self, tenant: str, agent: str) -> list[Escalation]:
        def select(conn: sqlite3.Connection) -> list[Escalation]:
            sql = "SELECT doc FROM escalations WHERE tenant = ? AND agent = ? ORDER BY created_at, id"
            return [e for r in conn.execute(sql, (tenant, agent)) if (e := readable(r[0])) is not None]

        return await self._run(select)

    async def count_path(self, tenant: str, agent: str, path: str, user: str) -> None:
        def count(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute(
                    "INSERT INTO path_counts (tenant, agent, path, n) VALUES (?,?,?,1) "
                    "ON CONFLICT (tenant, agent, path) DO UPDATE SET n = n + 1",
                    (tenant, agent, path),
                )
                if user:
                    sql = "INSERT OR IGNORE INTO path_users (tenant, agent, user) VALUES (?,?,?)"
                    conn.execute(sql, (tenant, agent, user))

        await self._run(count)

    async def path_counts(self, tenant: str, agent: str) -> PathCounts:
        def select(conn: sqlite3.Connection) -> PathCounts:
            key = (tenant, agent)
            rows = conn.execute("SELECT path, n FROM path_counts WHERE tenant = ? AND agent = ?", key)
            paths = {str(p): int(n) for p, n in rows}
            users = conn.execute("SELECT COUNT(*) FROM path_users WHERE tenant = ? AND agent = ?", key)
            return PathCounts(paths, int(users.fetchone()[0]))

        return await self._run(select)

    async def aclose(self) -> None:
        await self._db.aclose()

    async def _load(self, tenant: str, agent: str) -> _Vectors:
        key = (tenant, agent)
        held = self._vectors.get(key)
        if held is not None:
            return held
        adds = self._adds.get(key, 0)

        def select(conn: sqlite3.Connection) -> _Vectors:
            sql = f"SELECT id, layer, vector FROM canonical WHERE tenant = ? AND agent = ? {_ORDER}"
            loaded = _Vectors()
            for answer_id, layer, blob in conn.execute(sql, (tenant, agent)):
                loaded.ids.append(str(answer_id))
                loaded.layers.append(str(layer))
                loaded.rows.append(np.frombuffer(blob, dtype=np.float32))
            return loaded

        loaded = await self._run(select)
        if self._adds.get(key, 0) != adds:
            return loaded  # an answer was added meanwhile: this load may lack it, so it is not kept
        return self._vectors.setdefault(key, loaded)

    async def _write(self, sql: str, args: tuple[object, ...]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute(sql, args)

        await self._run(write)


def _stacked(rows: list[Vector], size: int) -> Vector:
    """The rows stacked, those of another size (another model's) as zeros: they are never kept."""
    return np.stack([r if r.shape[0] == size else np.zeros(size, dtype=np.float32) for r in rows])


def _open(path: str) -> sqlite3.Connection:
    create_owner_only(path)
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    conn.executescript(_SCHEMA)
    columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(escalations)")}
    if "due_at" not in columns:
        with conn:
            conn.execute("ALTER TABLE escalations ADD COLUMN due_at REAL")
            conn.execute(_BACKFILL_DUE)
    if "closed_at" not in columns:
        with conn:
            conn.execute("ALTER TABLE escalations ADD COLUMN closed_at REAL")
            conn.execute(_BACKFILL_CLOSED)
    conn.executescript(_INDEXES)
    return conn


_INSERT = (
    "INSERT INTO escalations (id, tenant, agent, state, created_at, doc, due_at, closed_at)"
    " VALUES (?,?,?,?,?,?,?,?)"
)


def _row(e: Escalation) -> tuple[object, ...]:
    """An escalation's row: `closed_at` is when its retention starts (0 for an offer never accepted
    that expired: the next retention sweep deletes it)."""
    doc = e.encode().decode()
    return (e.id, e.tenant, e.agent, e.state.value, e.created_at, doc, e.deadline, e.retained_from)


def _swap(conn: sqlite3.Connection, expect: State, new: Escalation) -> bool:
    """One statement: the state check and the new state, document, deadline and closing time."""
    sql = (
        "UPDATE escalations SET state = ?, doc = ?, due_at = ?, closed_at = ?"
        " WHERE id = ? AND tenant = ? AND state = ?"
    )
    doc = new.encode().decode()
    args = (new.state.value, doc, new.deadline, new.retained_from, new.id, new.tenant, expect.value)
    return conn.execute(sql, args).rowcount == 1


def _used(conn: sqlite3.Connection, tenant: str, agent: str, limits: Limits) -> tuple[int, int]:
    sql = "SELECT n FROM escalation_counts WHERE tenant = ? AND agent = ? AND bucket = ?"
    counts = [conn.execute(sql, (tenant, agent, b)).fetchone() for b in (limits.day, limits.week)]
    return tuple(0 if r is None else int(r[0]) for r in counts)  # type: ignore[return-value]


def _canonical_row(a: CanonicalAnswer) -> tuple[object, ...]:
    return (a.id, a.tenant, a.agent, a.layer, a.question, a.answer, a.created_at, a.source, a.reuse_count)


def _canonical(row: Sequence[object]) -> CanonicalAnswer:
    i, tenant, agent, layer, question, answer, created, source, reuse = row
    return CanonicalAnswer(
        str(i), str(tenant), str(agent), str(layer), str(question), str(answer), float(created),  # type: ignore[arg-type]
        str(source), int(reuse),  # type: ignore[call-overload]
    )  # fmt: skip


def _canonical_one(
    conn: sqlite3.Connection, tenant: str, agent: str, answer_id: str
) -> CanonicalAnswer | None:
    sql = f"SELECT {_CANONICAL} FROM canonical WHERE id = ? AND tenant = ? AND agent = ?"
    row = conn.execute(sql, (answer_id, tenant, agent)).fetchone()
    return None if row is None else _canonical(row)
