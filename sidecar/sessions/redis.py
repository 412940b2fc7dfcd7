"""The conversation store in Redis, for sidecars that share state (same contract as the memory store).

Key layout (P is the prefix, "orch:conv" by default; T and U the tenant and user, C the
conversation, each percent-encoded so ":" and braces in ids cannot merge two owners):

    P:{T|U}:c:C    hash: persona, version (the applied Switch ticket), before (the persona it
                   replaced), cleared and removed (the last clear's token and answer),
                   ticket (last one handed out, at least Redis's clock in
                   microseconds, as the epoch: both keep rising when Redis lost its data),
                   appended (the last append's token),
                   summary (the rolling summary, JSON: text, messages covered, digest of the last),
                   epoch (rises at each clear, at least to Redis's clock in microseconds: a turn's
                   append and summary carry the epoch its snapshot read, and are refused in the
                   same script when it has grown since)
    P:{T|U}:h:C    list: the history, oldest first, one versioned JSON record a message
                   (sidecar/sessions/records.py: text, name, tool calls, tool-result id, images)
    P:{T|U}:sw     list: the user's switch records, newest first, JSON

`{T|U}` is a Redis Cluster hash tag: one user's keys share a slot, so each change is one atomic
MULTI or Lua script. Every write sets the touched keys' TTL (PEXPIRE) again. `activate` is a Lua
compare-and-set on the version: a Switch whose ticket is lower than the applied one is refused,
so the Switch that arrived last wins on every sidecar; a clear raises the version to the last
ticket, so it wins over the Switches that took theirs before it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

from sidecar.core.errors import SessionStoreUnavailableError
from sidecar.core.types import Message
from sidecar.sessions import records
from sidecar.sessions.store import (
    ConversationKey,
    ConversationSummary,
    Snapshot,
    StorePolicy,
    SwitchRecord,
    starts_orphaned,
)
from sidecar.stores.errors import StoreError
from sidecar.stores.redis import RedisEndpoint, RedisOps

_log = logging.getLogger("sidecar.sessions")
LAST_TIMESTAMP = 253402300800.0  # 10000-01-01: the first second a protobuf Timestamp cannot hold

# KEYS[1] the conversation hash, KEYS[2] its history (its TTL renewed too: one conversation).
# ARGV: persona, version, ttl ms. Returns {applied, persona before}. A version is one Switch's
# ticket: finding it applied with this persona is this activation run before (its reply lost and
# the command retried), so it answers as it did then, with the persona it replaced. The TTLs are
# set after the write: a hash gone since the ticket (expired, flushed) is written anew with one.
_ACTIVATE = """
local f = redis.call("HMGET", KEYS[1], "version", "persona", "before")
local cur, current = tonumber(f[1] or "0"), f[2] or ""
local v = tonumber(ARGV[2])
local applied, before = 1, current
if v == cur and current == ARGV[1] then
  before = f[3] or ""
elseif v <= cur then
  applied = 0
else
  redis.call("HSET", KEYS[1], "persona", ARGV[1], "version", ARGV[2], "before", current)
end
redis.call("PEXPIRE", KEYS[1], ARGV[3])
redis.call("PEXPIRE", KEYS[2], ARGV[3])
return {applied, before}
"""

# KEYS[1] the conversation hash, KEYS[2] its history. ARGV: ttl ms. A ticket above both the last
# ticket and the version, and at least Redis's clock in microseconds: a Switch arriving after Redis
# lost its data (restarted without persistence, flushed, failed over to an empty replica) still
# takes a ticket above those handed out before the loss, where a plain count restarts at 1 (the
# last-Switch-wins rule would apply an older Switch over it). Written with "%.0f": Lua's default
# number format keeps 14 digits, a ticket has 16.
_TICKET = """
local f = redis.call("HMGET", KEYS[1], "ticket", "version")
local now = redis.call("TIME")
local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
local t = string.format("%.0f", math.max(tonumber(f[1] or "0") + 1, tonumber(f[2] or "0") + 1, clock))
redis.call("HSET", KEYS[1], "ticket", t)
redis.call("PEXPIRE", KEYS[1], ARGV[1])
redis.call("PEXPIRE", KEYS[2], ARGV[1])
return t
"""

# KEYS[1] the history, KEYS[2] the conversation hash. ARGV: cap, ttl ms, the append's token, byte
# cap, the snapshot's epoch ("" for none), then the records. Appends once per token (the client
# retries a command whose connection dropped, and one whose reply was lost had run), nothing when
# the conversation was cleared since the epoch (returns 0), keeps the newest `cap` records and at
# most `byte cap` bytes of them (the newest always), then drops any tool result left at the front
# without its call (the caps drop whole units: sidecar/sessions/store.py starts_orphaned).
_APPEND = """
local f = redis.call("HMGET", KEYS[2], "appended", "epoch")
if f[1] == ARGV[3] then
  return 1
end
if ARGV[5] ~= "" and tonumber(f[2] or "0") > tonumber(ARGV[5]) then
  return 0
end
redis.call("HSET", KEYS[2], "appended", ARGV[3])
for i = 6, #ARGV do
  redis.call("RPUSH", KEYS[1], ARGV[i])
end
redis.call("LTRIM", KEYS[1], -tonumber(ARGV[1]), -1)
local kept = redis.call("LRANGE", KEYS[1], 0, -1)
local total = 0
for i = 1, #kept do total = total + #kept[i] end
local first = 1
while total > tonumber(ARGV[4]) and first < #kept do
  total = total - #kept[first]
  redis.call("LPOP", KEYS[1])
  first = first + 1
end
while true do
  local first = redis.call("LINDEX", KEYS[1], 0)
  if not first then break end
  local ok, record = pcall(cjson.decode, first)
  if not ok or type(record) ~= "table" or record["r"] ~= "tool" then break end
  redis.call("LPOP", KEYS[1])
end
redis.call("PEXPIRE", KEYS[1], ARGV[2])
redis.call("PEXPIRE", KEYS[2], ARGV[2])
return 1
"""

# KEYS[1] the conversation hash, KEYS[2] its history. ARGV: ttl ms. Forgets the history, the
# persona and the summary and raises the epoch (kept with the hash's TTL, also for a conversation
# with nothing to forget: its first turn may be in flight) by one and at least to Redis's clock in
# microseconds: a clear after Redis lost its data (restarted without persistence, flushed) still
# lands above the epoch a turn in flight read before the loss, where a plain count restarts at 1.
# The version rises to the last ticket handed out and at least to the same clock, so a Switch that
# took its ticket before the clear (also before a loss of Redis's data) is not applied after it
# (superseded, as by a newer Switch). ARGV[2]: the clear's token: a retry of this command (its reply
# lost) finds it and answers as the first run did. Returns what it removed.
_CLEAR = """
local done = redis.call("HMGET", KEYS[1], "cleared", "removed")
if done[1] == ARGV[2] then
  return tonumber(done[2])
end
local removed = redis.call("DEL", KEYS[2]) + redis.call("HDEL", KEYS[1], "persona", "summary")
local f = redis.call("HMGET", KEYS[1], "ticket", "version", "epoch")
local now = redis.call("TIME")
local clock = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = math.max(tonumber(f[1] or "0"), tonumber(f[2] or "0"), clock)
redis.call("HSET", KEYS[1], "version", string.format("%.0f", last))
local epoch = math.max(tonumber(f[3] or "0") + 1, clock)
redis.call("HSET", KEYS[1], "epoch", string.format("%.0f", epoch), "cleared", ARGV[2], "removed", removed)
redis.call("PEXPIRE", KEYS[1], ARGV[1])
return removed
"""

# KEYS[1] the conversation hash, KEYS[2] its history. ARGV: the summary, ttl ms, the epoch ("" for
# none). Nothing when the conversation was cleared since the epoch (returns 0).
_SUMMARY = """
if ARGV[3] ~= "" and tonumber(redis.call("HGET", KEYS[1], "epoch") or "0") > tonumber(ARGV[3]) then
  return 0
end
redis.call("HSET", KEYS[1], "summary", ARGV[1])
redis.call("PEXPIRE", KEYS[1], ARGV[2])
redis.call("PEXPIRE", KEYS[2], ARGV[2])
return 1
"""

# KEYS[1] the user's switch records. ARGV: the record, cap, ttl ms. Recorded once: a retry of this
# command (its reply lost) finds its record already first (records carry their time).
_RECORD = """
if redis.call("LINDEX", KEYS[1], 0) ~= ARGV[1] then
  redis.call("LPUSH", KEYS[1], ARGV[1])
  redis.call("LTRIM", KEYS[1], 0, tonumber(ARGV[2]) - 1)
end
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return 1
"""

# KEYS[1] the conversation hash, KEYS[2] its history. One atomic read that, unlike MULTI, Redis
# still runs when it is out of memory or a replica (a script that writes nothing).
_READ = """
return {redis.call("HMGET", KEYS[1], "persona", "version", "epoch"), redis.call("LRANGE", KEYS[2], 0, -1)}
"""


class RedisConversationStore:
    """Every failure of Redis (unreachable, timeout, READONLY replica, OOM, ...) is classified by the
    client factory and raised as SESSION_STORE_UNAVAILABLE, which callers can handle: a history write
    that fails after the answer was delivered is a warning, not a failed call."""

    def __init__(self, ops: RedisOps, policy: StorePolicy, *, prefix: str = "orch:conv") -> None:
        self._ops, self._redis = ops, ops.client
        self._policy, self._prefix = policy, prefix
        self._ttl_ms = max(1, int(policy.ttl_seconds * 1000))
        self._activate = self._redis.register_script(_ACTIVATE)
        self._ticket = self._redis.register_script(_TICKET)
        self._read = self._redis.register_script(_READ)
        self._append = self._redis.register_script(_APPEND)
        self._record = self._redis.register_script(_RECORD)
        self._clear = self._redis.register_script(_CLEAR)
        self._summary = self._redis.register_script(_SUMMARY)

    @classmethod
    def from_url(cls, url: str, policy: StorePolicy, *, prefix: str = "orch:conv") -> RedisConversationStore:
        """A store with its own client on `url` (no TLS options): tests."""
        return cls(RedisOps(RedisEndpoint(url, timeout=5.0), retries=1), policy, prefix=prefix)

    def _base(self, tenant: str, user: str) -> str:
        return f"{self._prefix}:{{{quote(tenant, safe='')}|{quote(user, safe='')}}}:"

    def _keys(self, key: ConversationKey) -> tuple[str, str]:
        base, conv = self._base(key.tenant, key.user), quote(key.conversation, safe="")
        return f"{base}c:{conv}", f"{base}h:{conv}"

    async def snapshot(self, key: ConversationKey, *, history: bool) -> Snapshot:
        state, hist = self._keys(key)
        async with _classified("snapshot", self._ops):
            if not history:
                fields = ["persona", "version", "epoch"]
                persona, version, epoch = await self._redis.hmget(state, fields)  # type: ignore[misc]
                return Snapshot(_str(persona), int(version or 0), epoch=int(epoch or 0))
            (persona, version, epoch), raw = await self._read(keys=[state, hist])
        stored, unreadable = records.decode_history(raw)
        if unreadable:  # never fail every call of the conversation over records it cannot read
            _log.warning(
                "conversation history: records this version cannot read were left out",
                extra={"records": unreadable},
            )
        while starts_orphaned(stored):  # written by a sidecar that capped without regard to units
            stored.pop(0)
        return Snapshot(_str(persona), int(version or 0), tuple(stored), int(epoch or 0))

    async def next_version(self, key: ConversationKey) -> int:
        async with _classified("next_version", self._ops):
            return int(await self._ticket(keys=list(self._keys(key)), args=[self._ttl_ms]))

    async def activate(self, key: ConversationKey, persona_id: str, version: int) -> tuple[bool, str]:
        async with _classified("activate", self._ops):
            applied, before = await self._activate(
                keys=list(self._keys(key)), args=[persona_id, version, self._ttl_ms]
            )
        return bool(int(applied)), _str(before)

    async def append(
        self, key: ConversationKey, messages: tuple[Message, ...], *, epoch: int | None = None
    ) -> bool:
        if not messages:
            return True
        state, hist = self._keys(key)
        encoded = [records.encode(records.storable(m)) for m in messages]
        token = os.urandom(12).hex()  # the same in a retry of this append: it is stored once
        async with _classified("append", self._ops):
            caps: list[int | str] = [
                self._policy.max_history_messages,
                self._ttl_ms,
                token,
                self._policy.max_history_bytes,
                "" if epoch is None else epoch,
            ]
            return bool(int(await self._append(keys=[hist, state], args=[*caps, *encoded])))

    async def clear(self, key: ConversationKey) -> bool:
        token = os.urandom(12).hex()  # the same in a retry of this clear: it answers as the first run
        async with _classified("clear", self._ops):
            return bool(int(await self._clear(keys=list(self._keys(key)), args=[self._ttl_ms, token])))

    async def summary(self, key: ConversationKey) -> ConversationSummary | None:
        async with _classified("summary", self._ops):
            raw = await self._redis.hget(self._keys(key)[0], "summary")  # type: ignore[misc]
        if not raw:
            return None
        summary = _summary(raw)
        if summary is None:  # never fail every call of the conversation over a summary it cannot read
            _log.warning("conversation summary: a value this version cannot read was skipped")
        return summary

    async def save_summary(
        self, key: ConversationKey, summary: ConversationSummary, *, epoch: int | None = None
    ) -> bool:
        value = json.dumps({"t": summary.text, "m": summary.messages, "c": summary.covered})
        args: list[str | int] = [value, self._ttl_ms, "" if epoch is None else epoch]
        async with _classified("save_summary", self._ops):
            return bool(int(await self._summary(keys=list(self._keys(key)), args=args)))

    async def record_switch(self, tenant: str, user: str, record: SwitchRecord) -> None:
        key = self._base(tenant, user) + "sw"
        data = {
            "c": record.conversation_id,
            "f": record.from_persona,
            "to": record.to_persona,
            "cmd": record.command,
            "ok": record.success,
            "e": record.error,
            "at": record.at,
            "v": record.version,
        }
        async with _classified("record_switch", self._ops):
            await self._record(
                keys=[key], args=[json.dumps(data), self._policy.max_switch_history, self._ttl_ms]
            )

    async def switches(self, tenant: str, user: str, conversation: str, limit: int) -> list[SwitchRecord]:
        key = self._base(tenant, user) + "sw"
        async with _classified("switches", self._ops):
            raw = await self._redis.lrange(key, 0, self._policy.max_switch_history - 1)  # type: ignore[misc]
        records = [r for r in map(_record, raw) if r is not None]
        if len(records) < len(raw):  # never fail the user's switch history over a record it cannot read
            _log.warning(
                "switch history: records this version cannot read were left out",
                extra={"records": len(raw) - len(records)},
            )
        found = (r for r in records if not conversation or r.conversation_id == conversation)
        return [r for _, r in zip(range(limit), found, strict=False)]

    async def aclose(self) -> None:
        await self._ops.aclose()


@asynccontextmanager
async def _classified(op: str, ops: RedisOps) -> AsyncIterator[None]:
    """Any Redis failure (classified by the factory, counted by its observer) ->
    SESSION_STORE_UNAVAILABLE, retryable; the store's per-operation timeout bounds the block."""
    try:
        async with ops.bounded(op):
            yield
    except StoreError as exc:
        raise SessionStoreUnavailableError(
            f"the conversation store (Redis) failed ({exc.kind}); retry later",
            metadata={"storeError": exc.kind},
            retry_after=1.0,
        ) from exc


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _summary(raw: bytes | str) -> ConversationSummary | None:
    """A stored summary ({"t": text, "m": messages covered, "c": digest}), or None when it is not one
    this version can read (a newer sidecar's shape, a damaged value)."""
    try:
        d = json.loads(raw)
        text, messages, covered = d["t"], d["m"], d["c"]
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(text, str) and isinstance(covered, str) and type(messages) is int and messages >= 0):
        return None
    return ConversationSummary(text=text, messages=messages, covered=covered)


def _record(raw: bytes | str) -> SwitchRecord | None:
    """A stored switch record, or None when it is not one this version can read."""
    try:
        d = json.loads(raw)
        record = SwitchRecord(
            conversation_id=str(d["c"]),
            from_persona=str(d["f"]),
            to_persona=str(d["to"]),
            command=str(d["cmd"]),
            success=bool(d["ok"]),
            error=str(d["e"]),
            at=float(d["at"]),
            version=int(d["v"]),
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    return record if 0 <= record.at < LAST_TIMESTAMP else None  # NaN too: a Timestamp takes neither
