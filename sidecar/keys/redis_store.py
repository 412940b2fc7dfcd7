"""Encrypted key records in Redis: the KeyStore for sidecars that share state.

Same contract as `SqliteKeyStore` (see `sidecar.keys.store.KeyStore`). As there, a record holds only
the envelope (`Envelope.encode()` output) and metadata; the plaintext key is never stored.

Key layout (P is the prefix, "orch:keys" by default; T is the tenant, percent-encoded, "%" when empty):

    P:{T}:rec:<ref>                        hash: ref, tenant, user, provider, key_name, envelope,
                                           last_four, created_at, updated_at (repr of the float), seq
    P:{T}:owner:<user>:<provider>:<name>   string: the ref filling that owner slot (parts percent-encoded)
    P:{T}:user:<user>                      set: the refs of one user (find, list of one user)
    P:{T}:idx                              set: every ref of the tenant (list of a tenant, all_refs)
    P:{T}:seq                              counter: insertion order, the tie-break of find's "newest"
    P:refs                                 hash: ref -> tenant, so get(ref) needs no tenant

`{T}` is a Redis Cluster hash tag: a tenant's keys share one hash slot, and every change to them is
one Lua script, so it is atomic. Percent-encoding keeps ":", "{" and "}" in names from merging two
owners or moving a key to another slot. Cluster caveats: the client here is the standalone
`redis.asyncio.Redis` (the layout is Cluster-ready, a `RedisCluster` client is not wired); the
scripts declare only the tenant's idx key (which routes them) and derive the other keys of the
same slot inside, which Redis Cluster executes although its docs ask scripts to declare every key.

`P:refs` is the one global key and lives in its own slot, so in a Cluster it cannot join a tenant's
script. It is kept as an index that is never wrong in a harmful way: a put claims the ref there
before writing the record (atomically refusing a ref held by another tenant), and a delete or a
replacement removes the entry after removing the record. A crash between the two steps leaves an
entry without a record; get() then returns None and all_refs() leaves it out (it lists only refs
also present in their tenant's idx). A deleted ref re-put concurrently with its deletion could lose
its entry; refs are 128-bit random and never reused, so this is accepted.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote

from sidecar.core.clock import Clock
from sidecar.core.errors import KeyBackendUnavailableError, KeyDecryptError
from sidecar.keys.store import KeyRecord, key_limit_reached
from sidecar.stores.errors import StoreError
from sidecar.stores.redis import RedisEndpoint, RedisOps

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

DEFAULT_PREFIX = "orch:keys"

# Shared by the per-tenant scripts. ARGV[1] is the tenant's base "P:{T}:"; KEYS[1] its idx set.
# enc() matches urllib.parse.quote(s, safe=""): Redis runs Lua in the C locale, so %w is ASCII only.
_PREAMBLE = """
local base = ARGV[1]
local function enc(s)
  return (string.gsub(s, "[^%w_.~-]", function(c) return string.format("%%%02X", string.byte(c)) end))
end
local function rec(ref) return base .. "rec:" .. ref end
local function owner(user, provider, key_name)
  return base .. "owner:" .. enc(user) .. ":" .. enc(provider) .. ":" .. enc(key_name)
end
local function by_user(user) return base .. "user:" .. enc(user) end
local function drop(ref)
  local f = redis.call("HMGET", rec(ref), "user", "provider", "key_name")
  if not f[1] then return 0 end
  local o = owner(f[1], f[2], f[3])
  if redis.call("GET", o) == ref then redis.call("DEL", o) end
  redis.call("SREM", by_user(f[1]), ref)
  redis.call("SREM", KEYS[1], ref)
  redis.call("DEL", rec(ref))
  return 1
end
"""

# ARGV: base, ref, tenant, user, provider, key_name, envelope, last_four, created_at, updated_at,
# max_per_user ("" for no limit). Returns the ref it displaced from the owner slot (nil if none).
_PUT = """
local ref, user, provider, key_name = ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local held = redis.call("HMGET", rec(ref), "user", "provider", "key_name")
if held[1] and (held[1] ~= user or held[2] ~= provider or held[3] ~= key_name) then
  return redis.error_reply("REF_TAKEN")
end
local o = owner(user, provider, key_name)
local old = redis.call("GET", o)
if not old and ARGV[11] ~= "" and redis.call("SCARD", by_user(user)) >= tonumber(ARGV[11]) then
  return redis.error_reply("KEY_LIMIT " .. redis.call("SCARD", by_user(user)))
end
if old and old ~= ref then drop(old) else old = false end
redis.call("HSET", rec(ref), "ref", ref, "tenant", ARGV[3], "user", user, "provider", provider,
  "key_name", key_name, "envelope", ARGV[7], "last_four", ARGV[8], "created_at", ARGV[9],
  "updated_at", ARGV[10], "seq", redis.call("INCR", base .. "seq"))
redis.call("SET", o, ref)
redis.call("SADD", by_user(user), ref)
redis.call("SADD", KEYS[1], ref)
return old
"""

_DELETE = "return drop(ARGV[2])"  # ARGV: base, ref

# ARGV: base, ref, envelope, updated_at. Returns 0 when there is no such record.
_REWRAP = """
if redis.call("EXISTS", rec(ARGV[2])) == 0 then return 0 end
redis.call("HSET", rec(ARGV[2]), "envelope", ARGV[3], "updated_at", ARGV[4])
return 1
"""

# ARGV: base, "ref" ref | "owner" user provider key_name | "user" user | "tenant". Returns HGETALL arrays.
_READ = """
local refs
if ARGV[2] == "ref" then
  refs = {ARGV[3]}
elseif ARGV[2] == "owner" then
  local r = redis.call("GET", owner(ARGV[3], ARGV[4], ARGV[5]))
  refs = r and {r} or {}
elseif ARGV[2] == "user" then
  refs = redis.call("SMEMBERS", by_user(ARGV[3]))
else
  refs = redis.call("SMEMBERS", KEYS[1])
end
local out = {}
for _, r in ipairs(refs) do
  local h = redis.call("HGETALL", rec(r))
  if #h > 0 then out[#out + 1] = h end
end
return out
"""

# On the global map (KEYS[1]); ARGV: ref, tenant. Claim returns the tenant now holding the ref.
_CLAIM = """
local t = redis.call("HGET", KEYS[1], ARGV[1])
if t then return t end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
return ARGV[2]
"""
_RELEASE = """
if redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
return redis.call("HDEL", KEYS[1], ARGV[1])
"""


class RedisKeyStore:
    """KeyStore on Redis (redis.asyncio, imported here lazily); several sidecars may share one."""

    def __init__(self, ops: RedisOps, clock: Clock, *, prefix: str = DEFAULT_PREFIX) -> None:
        """`ops` must decode responses (`RedisOps(..., decode_responses=True)`)."""
        if not prefix or "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must be non-empty and free of '{' and '}' (hash tags)")
        self._clock = clock
        self._prefix = prefix
        self._refs = f"{prefix}:refs"
        self._ops = ops
        self._redis: Redis = ops.client
        script = self._redis.register_script
        self._put, self._delete, self._rewrap, self._read = (
            script(_PREAMBLE + body) for body in (_PUT, _DELETE, _REWRAP, _READ)
        )
        self._claim, self._release = script(_CLAIM), script(_RELEASE)
        self._closed = False

    @classmethod
    def from_url(cls, url: str, clock: Clock, *, prefix: str = DEFAULT_PREFIX) -> RedisKeyStore:
        """A store with its own client on `url` (no TLS options): tests."""
        return cls(RedisOps(RedisEndpoint(url), decode_responses=True, retries=1), clock, prefix=prefix)

    async def put(self, record: KeyRecord, *, max_per_user: int | None = None) -> None:
        r = record
        holder = await self._call(self._claim, self._refs, r.ref, r.tenant)
        if holder != r.tenant:
            raise ValueError(f"key ref {r.ref!r} already belongs to another record")
        fields = (r.ref, r.tenant, r.user, r.provider, r.key_name, r.envelope, r.last_four)
        limit = "" if max_per_user is None else str(max_per_user)
        try:
            displaced = await self._tenant(
                self._put, r.tenant, *fields, repr(r.created_at), repr(r.updated_at), limit
            )
        except _RefTakenError:
            raise ValueError(f"key ref {r.ref!r} already belongs to another record") from None
        except _KeyLimitError as full:
            await self._call(self._release, self._refs, r.ref, r.tenant)  # the ref was never stored
            raise key_limit_reached(full.kept, int(limit)) from None
        if displaced is not None:
            await self._call(self._release, self._refs, displaced, r.tenant)

    async def get(self, ref: str) -> KeyRecord | None:
        tenant = await self._tenant_of(ref)
        found = [] if tenant is None else await self._records(tenant, "ref", ref)
        return found[0][0] if found else None

    async def find(
        self, tenant: str, user: str, provider: str, key_name: str | None = None
    ) -> KeyRecord | None:
        if key_name is not None:
            found = await self._records(tenant, "owner", user, provider, key_name)
        else:  # the newest: by created_at, then by insertion order (as SQLite's rowid)
            found = [
                (r, seq) for r, seq in await self._records(tenant, "user", user) if r.provider == provider
            ]
        return max(found, key=lambda pair: (pair[0].created_at, pair[1]))[0] if found else None

    async def list(self, tenant: str, user: str | None = None) -> list[KeyRecord]:
        mode = ("tenant",) if user is None else ("user", user)
        records = [r for r, _ in await self._records(tenant, *mode)]
        return sorted(records, key=lambda r: (r.user, r.provider, r.key_name))

    async def delete(self, tenant: str, ref: str) -> bool:
        if not await self._tenant(self._delete, tenant, ref):
            return False
        await self._call(self._release, self._refs, ref, tenant)
        return True

    async def replace_envelope(self, ref: str, envelope: str) -> None:
        tenant = await self._tenant_of(ref)
        now = repr(float(self._clock.wall()))
        if tenant is None or not await self._tenant(self._rewrap, tenant, ref, envelope, now):
            raise KeyError(ref)

    async def all_refs(self) -> builtins.list[str]:
        """Refs in the global map that their tenant's index confirms (crash leftovers left out)."""
        self._check()
        async with classified("all_refs", self._ops):
            owners = await cast("Awaitable[dict[str, str]]", self._redis.hgetall(self._refs))
        tenants = sorted(set(owners.values()))
        if not tenants:
            return []
        async with classified("all_refs", self._ops), self._redis.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                pipe.smembers(self._base(tenant) + "idx")
            members = await pipe.execute()
        return sorted(
            ref for t, refs in zip(tenants, members, strict=True) for ref in refs if owners.get(ref) == t
        )

    async def aclose(self) -> None:
        """Close the connections. Idempotent; the store cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        await self._ops.aclose()

    def _base(self, tenant: str) -> str:
        return f"{self._prefix}:{{{quote(tenant, safe='') or '%'}}}:"

    def _check(self) -> None:
        if self._closed:
            raise RuntimeError("RedisKeyStore is closed")

    async def _tenant_of(self, ref: str) -> str | None:
        self._check()
        async with classified("get", self._ops):
            return await cast("Awaitable[str | None]", self._redis.hget(self._refs, ref))

    async def _call(self, script: AsyncScript, key: str, *args: str) -> Any:
        from redis.exceptions import ResponseError

        self._check()
        async with classified("script", self._ops):
            try:
                return await script(keys=[key], args=args)
            except ResponseError as exc:
                if "REF_TAKEN" in str(exc):
                    raise _RefTakenError from None
                if str(exc).startswith("KEY_LIMIT "):
                    raise _KeyLimitError(int(str(exc).split()[1])) from None
                raise

    async def _tenant(self, script: AsyncScript, tenant: str, *args: str) -> Any:
        base = self._base(tenant)
        return await self._call(script, base + "idx", base, *args)

    async def _records(self, tenant: str, *mode: str) -> builtins.list[tuple[KeyRecord, int]]:
        """The records a read selects, each with its insertion sequence number."""
        rows = await self._tenant(self._read, tenant, *mode)
        hashes = [dict(zip(row[::2], row[1::2], strict=True)) for row in rows]
        return [(_record(h), int(h["seq"])) for h in hashes]


class _RefTakenError(Exception):
    """The put script found the ref held by another owner."""


class _KeyLimitError(Exception):
    """The put script found the user keeping max_per_user keys, none under the record's name."""

    def __init__(self, kept: int) -> None:
        super().__init__(kept)
        self.kept = kept


@asynccontextmanager
async def classified(op: str, ops: RedisOps) -> AsyncIterator[None]:
    """Redis failures of the key store and its rotation lock, classified by the client factory:
    transient ones (unreachable, timeout, READONLY, OOM) are KEY_BACKEND_UNAVAILABLE (retryable), the
    rest (a wrong ACL password, a command error) KEY_UNAVAILABLE, our misconfiguration."""
    try:
        async with ops.bounded(op):
            yield
    except StoreError as exc:
        metadata = {"storeError": exc.kind}
        if exc.transient:
            raise KeyBackendUnavailableError(
                f"the key store (Redis) failed ({exc.kind})", metadata=metadata, retry_after=1.0
            ) from exc
        raise KeyDecryptError(f"the key store (Redis) refused ({exc.kind})", metadata=metadata) from exc


def _record(h: dict[str, str]) -> KeyRecord:
    r, t, u, p, k = h["ref"], h["tenant"], h["user"], h["provider"], h["key_name"]
    return KeyRecord(
        r, t, u, p, k, h["envelope"], h["last_four"], float(h["created_at"]), float(h["updated_at"])
    )
