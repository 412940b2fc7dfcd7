"""Quota buckets in Redis: one Lua script call per reserve, settle or read; shared by every sidecar.

Keys (P is the prefix, "orch:quota" by default; T the tenant, percent-encoded, "%" when empty):

    P:{T}:<limit>|<scope>|<id>:<window start ms>    hash: u (used), n (highest near-limit level
                                                     reported), r:<reservation id> = "<amount>:<expiry ms>",
                                                     R (the live reservations' total), x (none expires
                                                     before this; past it they are swept)
    P:{T}:<limit>|<scope>|<id>                       the same, for a concurrency limit (no window)

`{T}` is a Redis Cluster hash tag: every bucket of a tenant (its users' too) is in one slot, so one
call's buckets are updated by one atomic script, and the script declares every key it may touch
(each candidate window's key), as Cluster requires. Every key has a TTL: a windowed bucket expires
an hour after its window ends, a concurrency bucket `reservation_ttl` after its latest reservation
(TTLs are relative, PEXPIRE, computed from the script's notion of now).

Time: by default the scripts read Redis's own clock (`TIME`), so sidecars with skewed clocks agree
on windows and on reservation expiry. The sidecar sends the edges of the previous, current and next
windows as its clock sees them, and the script picks the one holding Redis time. With
`server_time=False` (tests with an injected clock) the sidecar's clock is sent instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from sidecar.core.clock import Clock, Deadline
from sidecar.quota.store import WINDOW_GRACE_MS, BucketState, Charge, QuotaStoreError, Verdict, bucket_key
from sidecar.stores.errors import StoreError
from sidecar.stores.redis import RedisEndpoint, RedisOps

# ARGV: now ms ("" = Redis TIME), ttl ms, grace ms, reservation id, #levels, levels...,
# then per charge: #edges, edges..., limit, amount, enforce ("1"/"0").
# KEYS: per charge, one key per candidate window (#edges - 1), or one key without a window.
_PARSE = """
local now
if ARGV[1] ~= "" then now = tonumber(ARGV[1]) else
  local t = redis.call("TIME"); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttl, grace, rid = tonumber(ARGV[2]), tonumber(ARGV[3]), "r:" .. ARGV[4]
local nlev = tonumber(ARGV[5])
local levels = {}
for i = 1, nlev do levels[i] = tonumber(ARGV[5 + i]) end
local charges = {}
local a, k = 6 + nlev, 1
while a <= #ARGV do
  local ne = tonumber(ARGV[a]); a = a + 1
  local c = {start = 0, finish = 0, key = KEYS[k]}
  if ne > 0 then
    local idx = ne - 1
    for i = 1, ne - 1 do if now < tonumber(ARGV[a + i]) then idx = i; break end end
    c.start, c.finish, c.key = tonumber(ARGV[a + idx - 1]), tonumber(ARGV[a + idx]), KEYS[k + idx - 1]
    k = k + ne - 1
  else
    k = k + 1
  end
  a = a + ne
  c.limit, c.amount, c.enforce = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), ARGV[a + 2] == "1"
  a = a + 3
  charges[#charges + 1] = c
end
local function int(v) return string.format("%d", v) end
local function parse(v)
  local amt, exp = string.match(v, "^(%-?%d+):(%d+)")
  return tonumber(amt), tonumber(exp)
end
-- R is the live reservations' total; x a time before which none expires. Past x, sweep them.
local function sweep(c, clean)
  local h = redis.call("HGETALL", c.key)
  local total, first = 0, nil
  for i = 1, #h, 2 do
    if string.sub(h[i], 1, 2) == "r:" then
      local amt, exp = parse(h[i + 1])
      if exp > now then
        total = total + amt
        if not first or exp < first then first = exp end
      elseif clean then redis.call("HDEL", c.key, h[i]) end
    end
  end
  c.reserved = total
  if clean then
    redis.call("HSET", c.key, "R", int(total))
    if first then redis.call("HSET", c.key, "x", int(first)) else redis.call("HDEL", c.key, "x") end
  end
end
local function load(c, clean)
  local f = redis.call("HMGET", c.key, "u", "n", "R", "x", rid)
  c.used, c.noted, c.reserved, c.held = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0, 0
  if f[4] and tonumber(f[4]) <= now then sweep(c, clean) end
  if f[5] then
    local amt, exp = parse(f[5])
    if exp > now then
      c.held = amt
      c.released = string.sub(f[5], -2) == ":x"
    end
  end
end
local function crossed(c)
  if c.limit <= 0 then return 0 end
  local hit = 0
  for _, lv in ipairs(levels) do
    if (c.used + c.reserved) * 100 >= lv * c.limit and lv > c.noted then hit = lv end
  end
  if hit > 0 then redis.call("HSET", c.key, "n", hit) end
  return hit
end
local function keep(c)
  if c.finish > 0 then redis.call("PEXPIRE", c.key, math.max(1, c.finish + grace - now)) end
end
"""

_RESERVE = """
local refused, out = -1, {}
for i, c in ipairs(charges) do
  load(c, true)
  if c.released then return {-2, {}} end
  c.over = c.used + c.reserved + c.amount > c.limit
  if c.over and c.enforce and refused < 0 then refused = i - 1 end
end
for _, c in ipairs(charges) do
  local level = 0
  if refused < 0 then
    local x = tonumber(redis.call("HGET", c.key, "x"))
    if not x or x > now + ttl then x = now + ttl end
    c.reserved = c.reserved + c.amount
    local held = int(c.held + c.amount) .. ":" .. int(now + ttl)
    redis.call("HSET", c.key, rid, held, "R", int(c.reserved), "x", int(x))
    if c.finish > 0 then keep(c) else redis.call("PEXPIRE", c.key, ttl) end
    level = crossed(c)
  end
  out[#out + 1] = {c.start, c.finish, c.used, c.reserved, level, c.over and 1 or 0}
end
return {refused, out, now}
"""

# A bucket whose reservation id was finished by a release (a tombstone) is left as it is: a settle
# that reaches Redis after its own retry (see _RELEASE) charges nothing a second time.
_SETTLE = """
local out = {}
for _, c in ipairs(charges) do
  load(c, true)
  local level = 0
  if c.released then c.amount = 0
  elseif redis.call("HDEL", c.key, rid) == 1 then
    c.reserved = c.reserved - c.held
    redis.call("HSET", c.key, "R", int(c.reserved))
  end
  if c.amount ~= 0 then c.used = redis.call("HINCRBY", c.key, "u", int(c.amount)) end
  keep(c)
  if redis.call("EXISTS", c.key) == 1 then level = crossed(c) end
  out[#out + 1] = {c.start, c.finish, c.used, c.reserved, level, 0}
end
return {-1, out}
"""

# A release finishes a reservation id for good: where the id still holds a reservation, it is
# dropped and the charge's amount charged (0 after a failed reserve; the real usage when a settle is
# retried), never more than it held (a fail_open extension the store never took is uncounted).
# It leaves a tombstone "0:<expiry>:x" under the id (amount 0, swept like any reservation),
# so a reserve of that id still queued at the server is refused when it runs (-2), and a settle or
# release of it that runs later does nothing: idempotent, never charged twice.
_RELEASE = """
for _, c in ipairs(charges) do
  load(c, true)
  if not c.released then
    if redis.call("HDEL", c.key, rid) == 1 then
      c.reserved = c.reserved - c.held
      redis.call("HSET", c.key, "R", int(c.reserved))
      local charge = math.min(c.amount, c.held)
      if charge > 0 then redis.call("HINCRBY", c.key, "u", int(charge)) end
    end
    local x = tonumber(redis.call("HGET", c.key, "x"))
    if not x or x > now + ttl then x = now + ttl end
    redis.call("HSET", c.key, rid, "0:" .. int(now + ttl) .. ":x", "x", int(x))
    if c.finish > 0 then keep(c) else redis.call("PEXPIRE", c.key, ttl) end
  end
end
return {-1, {}}
"""

# A renewal moves a live reservation's expiry to now + ttl (and the bucket's TTL with it); a
# reservation settled (absent), released (a tombstone) or expired is not brought back. "x" (none
# expires before it) stays a lower bound: the expiry only moves later.
_RENEW = """
for _, c in ipairs(charges) do
  local v = redis.call("HGET", c.key, rid)
  if v and string.sub(v, -2) ~= ":x" then
    local amt, exp = parse(v)
    if exp > now then
      redis.call("HSET", c.key, rid, int(amt) .. ":" .. int(now + ttl))
      if c.finish > 0 then keep(c) else redis.call("PEXPIRE", c.key, ttl) end
    end
  end
end
return {-1, {}}
"""

_READ = """
local out = {}
for _, c in ipairs(charges) do
  load(c, false)
  out[#out + 1] = {c.start, c.finish, c.used, c.reserved, 0, 0}
end
return {-1, out}
"""


_RELEASED = -2  # the reserve script found its id released (see _RELEASE)


class RedisQuotaStore:
    """QuotaStore on Redis, through the shared client factory (`sidecar.stores.redis`).

    Reserve and extend are bounded by the call's deadline as well as the store's timeout. A reserve
    or extend that times out may still have run on the server: the caller releases the reservation
    id (`settle` with nothing charged is idempotent), see `QuotaService.reserve`.
    """

    def __init__(self, ops: RedisOps, clock: Clock, *, prefix: str, server_time: bool = True) -> None:
        self._ops, self._clock, self._prefix, self._server_time = ops, clock, prefix, server_time
        self._reserve, self._settle, self._read, self._release, self._renew = (
            ops.client.register_script(_PARSE + body) for body in (_RESERVE, _SETTLE, _READ, _RELEASE, _RENEW)
        )

    @classmethod
    def from_url(
        cls, url: str, clock: Clock, *, prefix: str, timeout: float, server_time: bool = True
    ) -> RedisQuotaStore:
        """A store with its own client on `url` (no TLS options): tests and benchmarks."""
        endpoint = RedisEndpoint(url, connect_timeout=timeout, timeout=timeout)
        return cls(RedisOps(endpoint, clock=clock), clock, prefix=prefix, server_time=server_time)

    async def reserve(
        self,
        tag: str,
        rid: str,
        charges: Sequence[Charge],
        *,
        ttl_ms: int,
        levels: Sequence[int],
        deadline: Deadline | None = None,
    ) -> Verdict:
        refused, states, at = await self._run(
            "reserve", self._reserve, tag, rid, charges, ttl_ms, levels, deadline
        )
        if refused == _RELEASED:
            raise QuotaStoreError("quota store: the reservation was released meanwhile", kind="released")
        return Verdict(refused < 0, states, refused, at)

    async def settle(
        self, tag: str, rid: str, charges: Sequence[Charge], *, levels: Sequence[int]
    ) -> tuple[BucketState, ...]:
        return (await self._run("settle", self._settle, tag, rid, charges, 0, levels, None))[1]

    async def release(self, tag: str, rid: str, charges: Sequence[Charge], *, ttl_ms: int) -> None:
        await self._run("release", self._release, tag, rid, charges, ttl_ms, (), None)

    async def renew(self, tag: str, rid: str, charges: Sequence[Charge], *, ttl_ms: int) -> None:
        await self._run("renew", self._renew, tag, rid, charges, ttl_ms, (), None)

    async def read(self, tag: str, charges: Sequence[Charge]) -> tuple[BucketState, ...]:
        return (await self._run("read", self._read, tag, "", charges, 0, (), None))[1]

    async def _run(
        self,
        op: str,
        script: Any,
        tag: str,
        rid: str,
        charges: Sequence[Charge],
        ttl_ms: int,
        levels: Sequence[int],
        deadline: Deadline | None,
    ) -> tuple[int, tuple[BucketState, ...], int]:
        """(refused index, the buckets' states, the script's time in epoch ms: 0 where not returned)."""
        now = "" if self._server_time else str(int(self._clock.wall() * 1000))
        args: list[str | int] = [now, ttl_ms, WINDOW_GRACE_MS, rid, len(levels), *levels]
        keys: list[str] = []
        base = f"{self._prefix}:{{{quote(tag, safe='') or '%'}}}:"
        for c in charges:
            args += [len(c.edges), *c.edges, c.limit, c.amount, "1" if c.enforce else "0"]
            starts = c.edges[:-1] or (0,)
            keys += [base + bucket_key(c.key, start) for start in starts]
        try:
            reply = await self._ops.run(op, lambda: script(keys=keys, args=args), deadline=deadline)
        except StoreError as exc:
            raise QuotaStoreError(f"quota store {exc}", kind=exc.kind) from exc
        states = tuple(
            BucketState(int(s), int(e), int(u), int(r), int(lv), bool(over))
            for s, e, u, r, lv, over in reply[1]
        )
        return int(reply[0]), states, int(reply[2]) if len(reply) > 2 else 0

    async def aclose(self) -> None:
        await self._ops.aclose()
