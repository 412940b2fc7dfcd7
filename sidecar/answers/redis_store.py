"""The shared answer store: many sidecars on one Redis (redis-py asyncio through `RedisOps`).

Every key of a tenant carries the tenant's hash as its hash tag (one cluster slot per tenant), so the
acceptance script (state check, both limit buckets, the new state) runs atomically on one node.
Expiry is found through two keys shared by every tenant (so outside the tenants' slots, and never in a
script with them): `due`, a sorted set of `tenant NUL id` scored by a time no later than the
escalation's deadline, `closed`, the same members scored by when each closed (the retention's
deletion reads it), and `queued:<agent>`, the agent's escalations in QUEUED (the backlog). They
are written after the escalation's own atomic step (`due` before, at an offer) and are hints: the
sweep reads the escalation itself, expires it through the same compare-and-set script as any other
transition, and repairs what a crashed sidecar left stale (a closed escalation still listed, an
accepted one missing from `queued:<agent>`).

Open offers are counted in two sorted sets of the tenant's slot per agent, `oo:<agent>` and
`oo:<agent>:<user>`, scored by each offer's expiry: the offer script drops the lapsed ones, checks
both caps and stores the offer in one step (a set's TTL only lengthens: it outlives its longest
offer, also when a reload shortened the expiry); an offer accepted or closed leaves them with the hints
above (a sidecar that dies between the two steps leaves it counted until its offer's expiry). An
offer whose script did not return (it timed out, the connection broke, the caller was cancelled) was
never given to the user, but may still run when a stalled Redis wakes up: it is abandoned in the
background, retried until Redis answers, which removes it if it ran or leaves a tombstone under its
id that the script refuses when it runs late, so it holds no place in the caps. A retry of the script
whose reply was lost finds its offer made and answers as the first run did.

Canonical vectors are one hash per agent (the layer's index byte, then float32); a search reads the
agent's hash and scores it with numpy, like the semantic cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecar.answers.model import CanonicalAnswer, Escalation, State
from sidecar.answers.store import Accepted, Limits, OfferCaps, PathCounts, best, comparable, readable, unit
from sidecar.config.answers import LAYERS
from sidecar.core.clock import Clock, SystemClock
from sidecar.stores.errors import StoreError
from sidecar.stores.pending import PendingWrites
from sidecar.stores.redis import RedisOps

if TYPE_CHECKING:
    from sidecar.answers.store import Vector

_log = logging.getLogger("sidecar.answers")
_SEP = "\x00"
_ACCEPT = """
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return 'not_found' end
if s ~= ARGV[1] then return 'wrong_state' end
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
local w = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[4]) >= 0 and d >= tonumber(ARGV[4]) then return 'day_limit' end
if tonumber(ARGV[5]) >= 0 and w >= tonumber(ARGV[5]) then return 'week_limit' end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], 3 * 86400)
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], 15 * 86400)
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'doc', ARGV[3])
return 'ok'
"""
_OFFER = """
local made = redis.call('HGET', KEYS[1], 'state')
if made == 'abandoned' then return 0 end
if made then return 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[4]) >= tonumber(ARGV[2]) then return 0 end
if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'doc', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[7])
for i = 3, 4 do
  if redis.call('TTL', KEYS[i]) < tonumber(ARGV[8]) then redis.call('EXPIRE', KEYS[i], ARGV[8]) end
end
return 1
"""
# The offer's keys; ARGV: its id, seconds. Removes the offer if it ran; the tombstone refuses it if not.
_ABANDON = """
for i = 2, 4 do redis.call('ZREM', KEYS[i], ARGV[1]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'abandoned')
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""
_REPLACE = """
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'doc', ARGV[3])
return 1
"""


class RedisAnswerStore:
    def __init__(self, ops: RedisOps, *, prefix: str, clock: Clock | None = None) -> None:
        self._ops, self._prefix = ops, prefix
        self._redis: Any = ops.client  # redis-py's command types do not follow decode_responses
        self._accept = self._redis.register_script(_ACCEPT)
        self._replace = self._redis.register_script(_REPLACE)
        self._offer = self._redis.register_script(_OFFER)
        self._abandon = self._redis.register_script(_ABANDON)
        self._clock = clock or SystemClock()
        self._abandoned: PendingWrites[str, tuple[list[str], str, int]] = PendingWrites(
            self._clock,
            attempt=self._abandon_offer,
            failures=(Exception,),  # whatever the client raised: Redis did not take it, try again
            on_error=lambda exc: _log.warning("an offer that timed out is not abandoned yet: %r", exc),
        )

    def _key(self, tenant: str, *parts: str) -> str:
        tag = hashlib.blake2b(tenant.encode(), digest_size=10).hexdigest()
        return ":".join((self._prefix, "ans", "{" + tag + "}", *parts))

    async def add_canonical(self, answer: CanonicalAnswer, vector: Vector) -> None:
        t, a = answer.tenant, answer.agent
        packed = bytes([LAYERS.index(answer.layer)]) + unit(vector).tobytes()
        doc = json.dumps(asdict(answer), separators=(",", ":"))

        async def add() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._key(t, "c", a), answer.id, doc)
                pipe.hset(self._key(t, "cv", a), answer.id, packed)
                await pipe.execute()

        await self._ops.run("set", add)

    async def nearest(
        self, tenant: str, agent: str, layers: Sequence[str], vector: Vector
    ) -> tuple[CanonicalAnswer, float] | None:
        raw: dict[bytes, bytes] = await self._do(
            "get", lambda: self._redis.hgetall(self._key(tenant, "cv", agent))
        )
        wanted = {LAYERS.index(layer) for layer in layers}
        ids = [k for k, v in raw.items() if v[0] in wanted]
        rows = [np.frombuffer(raw[k][1:], dtype=np.float32) for k in ids]
        keep = comparable([r.shape[0] for r in rows], vector)  # another model's vectors are left out
        if not keep:
            return None
        i, similarity = best(np.stack([rows[j] for j in keep]), vector)
        found = await self._canonical_of(tenant, agent, ids[keep[i]])
        return None if found is None else (found, similarity)

    async def reused(self, tenant: str, agent: str, answer_id: str) -> None:
        await self._do("set", lambda: self._redis.hincrby(self._key(tenant, "cr", agent), answer_id, 1))

    async def has_canonical(self, tenant: str, agent: str, answer_id: str) -> bool:
        key = self._key(tenant, "cv", agent)
        return bool(await self._do("get", lambda: self._redis.hexists(key, answer_id)))

    async def canonical(self, tenant: str, agent: str) -> list[CanonicalAnswer]:
        docs: dict[bytes, bytes] = await self._do(
            "get", lambda: self._redis.hgetall(self._key(tenant, "c", agent))
        )
        reuse: dict[bytes, bytes] = await self._do(
            "get", lambda: self._redis.hgetall(self._key(tenant, "cr", agent))
        )
        found = [_canonical(doc, reuse.get(i)) for i, doc in docs.items()]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    async def put(self, escalation: Escalation) -> None:
        e = escalation

        due = self._shared("due")
        await self._do("set", lambda: self._redis.zadd(due, {_member(e): e.offer_expires_at}))

        async def put() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._key(e.tenant, "e", e.id), mapping={"state": e.state.value, "doc": e.encode()})
                pipe.zadd(self._key(e.tenant, "ea", e.agent), {e.id: e.created_at})
                await pipe.execute()

        await self._ops.run("set", put)

    async def offer(self, escalation: Escalation, caps: OfferCaps) -> bool:
        """One script: the open offers of the agent and of the user (sorted sets scored by each
        offer's expiry, the lapsed ones dropped first), then the offer, its place in the agent's list
        and in both sets. The expiry hint is written before, as `put`'s, and dropped on a refusal."""
        e = escalation
        due = self._shared("due")
        await self._do("set", lambda: self._redis.zadd(due, {_member(e): e.offer_expires_at}))
        keys = [
            self._key(e.tenant, "e", e.id),
            self._key(e.tenant, "ea", e.agent),
            self._key(e.tenant, "oo", e.agent),
            self._key(e.tenant, "oo", e.agent, e.user),
        ]
        ttl = int(e.offer_expires_at - e.created_at) + 60  # only ever lengthened: they outlive every offer
        args: list[Any] = [e.created_at, caps.per_user, caps.per_tenant, e.state.value, e.encode()]
        args += [e.offer_expires_at, e.id, ttl]
        try:
            made = int(await self._do("set", lambda: self._offer(keys=keys, args=args)))
        except BaseException:  # the script may still run on a stalled Redis: its offer must not count
            self._abandoned.add(e.id, (keys, _member(e), ttl), until=self._clock.monotonic() + ttl)
            raise
        if made:
            return True
        await self._do("set", lambda: self._redis.zrem(due, _member(e)))
        return False

    async def get(self, tenant: str, escalation_id: str) -> Escalation | None:
        doc = await self._do("get", lambda: self._redis.hget(self._key(tenant, "e", escalation_id), "doc"))
        return None if doc is None else Escalation.decode(doc)

    async def replace(self, expect: State, new: Escalation) -> bool:
        keys = [self._key(new.tenant, "e", new.id)]
        args = [expect.value, new.state.value, new.encode()]
        done = bool(int(await self._do("set", lambda: self._replace(keys=keys, args=args))))
        if done:
            await self._index(new)
        return done

    async def accept(self, expect: State, new: Escalation, limits: Limits) -> Accepted:
        t, a = new.tenant, new.agent
        keys = [
            self._key(t, "e", new.id),
            self._key(t, "n", a, limits.day),
            self._key(t, "n", a, limits.week),
        ]
        args: list[Any] = [
            expect.value,
            new.state.value,
            new.encode(),
            -1 if limits.per_day is None else limits.per_day,
            -1 if limits.per_week is None else limits.per_week,
        ]
        result = await self._do("set", lambda: self._accept(keys=keys, args=args))
        accepted = Accepted(result.decode() if isinstance(result, bytes) else str(result))
        if accepted is Accepted.OK:
            await self._index(new)
        return accepted

    async def used(self, tenant: str, agent: str, limits: Limits) -> tuple[int, int]:
        keys = [self._key(tenant, "n", agent, limits.day), self._key(tenant, "n", agent, limits.week)]
        day, week = await self._do("get", lambda: self._redis.mget(keys))
        return int(day or 0), int(week or 0)

    async def escalations(self, tenant: str, agent: str) -> list[Escalation]:
        ids: list[bytes] = await self._do(
            "get", lambda: self._redis.zrange(self._key(tenant, "ea", agent), 0, -1)
        )
        if not ids:
            return []

        async def docs() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for i in ids:
                    pipe.hget(self._key(tenant, "e", i.decode()), "doc")
                return await pipe.execute()  # type: ignore[no-any-return]

        found = [readable(d) for d in await self._ops.run("get", docs) if d is not None]
        return [e for e in found if e is not None]

    async def due(self, now: float, limit: int) -> list[Escalation]:
        members: list[bytes] = await self._do(
            "get", lambda: self._redis.zrangebyscore(self._shared("due"), "-inf", now, start=0, num=limit)
        )
        if not members:
            return []
        found = [_parse(m) for m in members]

        async def docs() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for tenant, escalation_id in found:
                    pipe.hget(self._key(tenant, "e", escalation_id), "doc")
                return await pipe.execute()  # type: ignore[no-any-return]

        out: list[Escalation] = []
        lost: list[bytes] = []  # index entries written before a put that never happened
        for member, doc in zip(members, await self._ops.run("get", docs), strict=True):
            if doc is None:
                lost.append(member)
                continue
            e = readable(doc)
            if e is None:
                continue  # another sidecar's (newer) record: its hint stays for that sidecar
            if e.due(now):
                out.append(e)
            else:  # accepted since (a later deadline) or closed: the index is put right
                await self._index(e)
        if lost:
            await self._do("set", lambda: self._redis.zrem(self._shared("due"), *lost))
        return out

    async def forget(self, before: float, limit: int) -> int:
        closed = self._shared("closed")
        members: list[bytes] = await self._do(
            "get", lambda: self._redis.zrangebyscore(closed, "-inf", f"({before}", start=0, num=limit)
        )
        deleted = 0
        for member in members:
            deleted += await self._forget_one(member)
        return deleted

    async def _forget_one(self, member: bytes) -> int:
        """One closed escalation's record and its place in the agent's list, then its hint (last, so
        a sidecar that stops half-way leaves the hint for the next sweep)."""
        tenant, escalation_id = _parse(member)
        doc = await self._do("get", lambda: self._redis.hget(self._key(tenant, "e", escalation_id), "doc"))
        found = None if doc is None else readable(doc)
        if doc is not None and found is None:
            return 0  # another sidecar's (newer) record: left to it, with its hint
        gone = 0
        if found is not None and found.closed is not None:
            await self._do("set", lambda: self._redis.delete(self._key(tenant, "e", escalation_id)))
            agents = self._key(tenant, "ea", found.agent)
            await self._do("set", lambda: self._redis.zrem(agents, escalation_id))
            gone = 1
        # an open one (an answer undone) is hinted again when it closes
        await self._do("set", lambda: self._redis.zrem(self._shared("closed"), member))
        return gone

    async def backlog(self, agents: Collection[str]) -> dict[str, int]:
        names = list(agents)

        async def count() -> list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for agent in names:
                    pipe.zcard(self._shared("queued", agent))
                return await pipe.execute()  # type: ignore[no-any-return]

        counts = await self._ops.run("get", count) if names else []
        return {agent: int(n) for agent, n in zip(names, counts, strict=True)}

    async def count_path(self, tenant: str, agent: str, path: str, user: str) -> None:
        async def count() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(self._key(tenant, "p", agent), path, 1)
                if user:
                    pipe.sadd(self._key(tenant, "u", agent), user)
                await pipe.execute()

        await self._ops.run("set", count)

    async def path_counts(self, tenant: str, agent: str) -> PathCounts:
        paths: dict[bytes, bytes] = await self._do(
            "get", lambda: self._redis.hgetall(self._key(tenant, "p", agent))
        )
        users = await self._do("get", lambda: self._redis.scard(self._key(tenant, "u", agent)))
        return PathCounts({k.decode(): int(v) for k, v in paths.items()}, int(users))

    async def aclose(self) -> None:
        await self._abandoned.aclose()  # while Redis answers: no offer that timed out keeps a place
        await self._ops.aclose()

    async def _abandon_offer(self, escalation_id: str, offer: tuple[list[str], str, int]) -> None:
        keys, member, ttl = offer
        await self._abandon(keys=keys, args=[escalation_id, ttl])
        await self._redis.zrem(self._shared("due"), member)

    async def _do(self, op: str, work: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return await work()

        result = await self._ops.run(op, run)
        self._abandoned.store_answered()  # an offer waiting to be abandoned is tried again at once
        return result

    def _shared(self, *parts: str) -> str:
        """A key over every tenant (the expiry index and the backlog)."""
        return ":".join((self._prefix, "ans", *parts))

    async def _index(self, e: Escalation) -> None:
        """The expiry index and the backlog after `e`'s atomic step. A failure here is logged, not
        raised: the step is done, and the next sweep repairs the index."""
        member, deadline, closed = _member(e), e.deadline, e.retained_from

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                if e.state is State.QUEUED:
                    pipe.zadd(self._shared("queued", e.agent), {member: e.queued_at})
                else:
                    pipe.zrem(self._shared("queued", e.agent), member)
                if deadline is None:
                    pipe.zrem(self._shared("due"), member)
                else:
                    pipe.zadd(self._shared("due"), {member: deadline})
                if e.state is not State.OFFERED:  # accepted or closed: no longer an open offer
                    pipe.zrem(self._key(e.tenant, "oo", e.agent), e.id)
                    pipe.zrem(self._key(e.tenant, "oo", e.agent, e.user), e.id)
                if closed is None:  # an answer undone while its canonical answer failed is open again
                    pipe.zrem(self._shared("closed"), member)
                else:
                    pipe.zadd(self._shared("closed"), {member: closed})
                await pipe.execute()

        try:
            await self._ops.run("set", write)
        except StoreError as exc:
            _log.warning("escalation expiry index not updated: %r", exc)

    async def _canonical_of(self, tenant: str, agent: str, answer_id: bytes) -> CanonicalAnswer | None:
        doc = await self._do("get", lambda: self._redis.hget(self._key(tenant, "c", agent), answer_id))
        if doc is None:
            return None
        reuse = await self._do("get", lambda: self._redis.hget(self._key(tenant, "cr", agent), answer_id))
        return _canonical(doc, reuse)


def _member(e: Escalation) -> str:
    return e.tenant + _SEP + e.id


def _parse(member: bytes) -> tuple[str, str]:
    tenant, _, escalation_id = member.decode().partition(_SEP)
    return tenant, escalation_id


def _canonical(doc: bytes, reuse: bytes | None) -> CanonicalAnswer:
    fields = json.loads(doc)
    fields["reuse_count"] = int(reuse or 0)
    return CanonicalAnswer(**fields)
