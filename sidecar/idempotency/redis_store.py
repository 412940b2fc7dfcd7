"""Idempotency keys in Redis, shared by every sidecar on it.

One string per key: `P` + fingerprint + claim token while the first call runs, `D` + fingerprint +
answer once finished (expiring after the window). A waiting call polls at a fixed interval on the
injected clock. A claim is a lease: it expires `lease_seconds` after it was last renewed, and the
sidecar renews its claims every third of that while their calls run, so a call may run as long as
its deadline allows while a crashed sidecar's claim frees the key within one lease.

A claim that does not return normally (it timed out, the connection broke, or its caller was
cancelled) may still run on the server later: a stalled Redis keeps the command queued. Its caller
has been told nothing ran, so the claim is given up in the background, retried until Redis answers:
the key is deleted if it still holds this claim, or, if the claim has not run yet, a tombstone
`X` + token is left that the claim refuses when it runs (other claims treat the tombstone as
absent). Without that a retry would wait for the claim to expire for an answer that never comes.

An answer that could not be kept (Redis down or stalled as the first call finished: the call was
answered and charged) is kept in the background, retried until Redis answers (at most
`MAX_UNKEPT` answers at once, for at most `GIVE_UP_SECONDS`), so a retry gets it instead of running
the call a second time. Until then a retry to this sidecar, or one waiting on the first call, is
answered by it (also while Redis is down, or after it came back without its data). It is written
only while the key still holds this claim or nothing: a retry through another sidecar that claimed
the key after this claim's lease lapsed, before Redis took the answer, runs the call again (its
answer is kept, not this one).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sidecar.core.clock import Clock
from sidecar.core.tasks import cancel_and_wait
from sidecar.idempotency.store import Held, IdempotencyStoreUnavailableError
from sidecar.stores.pending import PendingWrites
from sidecar.stores.redis import RedisEndpoint, connect

if TYPE_CHECKING:
    from redis.asyncio import Redis

_FP = 32  # sha256
_TOKEN = 16  # bytes of a claim's token
LEASE_SECONDS = 15.0
DEFAULT_TIMEOUT_SECONDS = 5.0  # per operation, when the configuration gives none
GIVE_UP_SECONDS = 300.0  # how long an abandoned claim is given up for while Redis does not answer
MAX_UNKEPT = 32  # answers waiting to be kept while Redis does not answer (each at most max_response_bytes)

# KEYS[1]; ARGV: the claim (P..fingerprint..token), lease ms, this claim's tombstone (X..token).
# Returns "" when claimed (or given up already), else the value holding the key.
_CLAIM = """
local v = redis.call("GET", KEYS[1])
if v == ARGV[3] then return "" end
if not v or string.sub(v, 1, 1) == "X" then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return ""
end
return v
"""

# KEYS[1]; ARGV: the claim, its tombstone, ms. Deletes the claim, or (not run yet) leaves the tombstone.
_GIVE_UP = """
local v = redis.call("GET", KEYS[1])
if v == ARGV[1] then redis.call("DEL", KEYS[1]) return 1 end
if not v or string.sub(v, 1, 1) == "X" then redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3]) end
return 0
"""

# KEYS[1]; ARGV: the claim, the answer (D..), window ms. An answer kept late: only over this claim,
# nothing, or a tombstone (not over another's claim or answer).
_KEEP = """
local v = redis.call("GET", KEYS[1])
if v and v ~= ARGV[1] and string.sub(v, 1, 1) ~= "X" then return 0 end
redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
return 1
"""

# KEYS[1]; ARGV: the claim. The first call failed: drop its claim (not another's that came after it).
_RELEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0
"""

# KEYS[1]; ARGV: the claim, lease ms. The call still runs: its claim lives one more lease.
_RENEW = """
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 0
"""


class RedisIdempotencyStore:
    def __init__(
        self,
        endpoint: RedisEndpoint | str,
        *,
        prefix: str,
        window_seconds: float,
        lease_seconds: float = LEASE_SECONDS,
        clock: Clock,
        poll_seconds: float = 0.05,
        on_store_error: Callable[[str], None] = lambda op: None,
    ) -> None:
        """`endpoint`: the connection settings (TLS, ACL user and password, timeouts), or a bare URL
        with the defaults (DEFAULT_TIMEOUT_SECONDS per operation). `on_store_error(op)` counts each
        failed operation (claim, finish, release, wait; renew and give_up in the background)."""
        if isinstance(endpoint, str):
            endpoint = RedisEndpoint(endpoint, timeout=DEFAULT_TIMEOUT_SECONDS)
        self._redis: Redis = connect(endpoint)
        self._prefix = prefix
        self._window_ms = int(window_seconds * 1000)
        self._lease_ms = max(1, int(min(lease_seconds, window_seconds) * 1000))
        self._poll, self._clock = poll_seconds, clock
        self._claim, self._give_up, self._release, self._renew, self._keep = (
            self._redis.register_script(s) for s in (_CLAIM, _GIVE_UP, _RELEASE, _RENEW, _KEEP)
        )
        self._on_error = on_store_error
        self._held: dict[str, bytes] = {}  # key name -> this process's claim on it, renewed
        self._abandoned: PendingWrites[str, bytes] = PendingWrites(  # claims to give up
            clock,
            attempt=self._give_up_claim,
            failures=(Exception,),  # whatever the client raised: Redis did not take it, try again
            on_error=lambda exc: on_store_error("give_up"),
        )
        self._unkept: PendingWrites[str, tuple[bytes, bytes]] = PendingWrites(  # answers to keep
            clock,
            attempt=self._keep_late,
            failures=(Exception,),
            on_error=lambda exc: on_store_error("finish"),
            max_pending=MAX_UNKEPT,
        )
        self._renewer: asyncio.Task[None] | None = None

    def _key(self, key: str) -> str:
        # hashed: tenant and request ids never appear in Redis key names
        return self._prefix + hashlib.sha256(key.encode()).hexdigest()

    async def _run(self, name: str, op: Awaitable[Any]) -> Any:
        try:
            result = await op
        except Exception as exc:
            self._on_error(name)
            raise IdempotencyStoreUnavailableError(
                "the idempotency store is unreachable; retry", retry_after=1.0
            ) from exc
        self._unkept.store_answered()  # an answer waiting to be kept is tried again at once
        return result

    async def claim(self, key: str, fingerprint: bytes) -> Held | None:
        name = self._key(key)
        if (unkept := self._unkept.waiting(name)) is not None:  # this sidecar's answer, kept later
            return _decode(unkept[1])
        mine = b"P" + fingerprint + os.urandom(_TOKEN)
        try:
            args: list[bytes | int] = [mine, self._lease_ms, _tombstone(mine)]
            held = await self._run("claim", self._claim(keys=[name], args=args))
        except BaseException:  # timed out, broke or cancelled: the claim may still run on the server
            self._abandon(name, mine)
            raise
        if not held:
            self._held[name] = mine
            if self._renewer is None or self._renewer.done():
                self._renewer = asyncio.ensure_future(self._renew_held())
            return None
        return _decode(held) or Held(fingerprint, None)

    async def finish(self, key: str, fingerprint: bytes, answer: bytes) -> None:
        """Keep the answer; if Redis does not take it, the failure is raised and the answer kept in the
        background, retried until Redis answers."""
        name = self._key(key)
        mine = self._held.pop(name, None)
        value = b"D" + fingerprint + answer
        try:
            await self._run("finish", self._redis.set(name, value, px=self._window_ms))
        except BaseException:
            if mine is not None:
                until = self._clock.monotonic() + min(self._window_ms / 1000, GIVE_UP_SECONDS)
                self._unkept.add(name, (mine, value), until=until)
            raise

    async def release(self, key: str) -> None:
        """Drop this process's claim on `key`; if Redis does not answer, the failure is raised and the
        claim given up in the background, retried until Redis answers."""
        name = self._key(key)
        mine = self._held.pop(name, None)
        if mine is None:
            return
        try:
            await self._run("release", self._release(keys=[name], args=[mine]))
        except BaseException:
            self._abandon(name, mine)
            raise

    async def wait(self, key: str) -> Held | None:
        """The answer once the key holds one, or None once it is free (absent or a tombstone, which a
        claim takes). Anything else (a call still running, or a value this sidecar cannot read) is
        waited on at the poll interval: re-claiming at once would spin on Redis."""
        name = self._key(key)
        while True:
            if (unkept := self._unkept.waiting(name)) is not None:  # finished here, kept later
                return _decode(unkept[1])
            raw = await self._run("wait", self._redis.get(name))
            if raw is None or raw[:1] == b"X":
                return None
            held = _decode(raw)
            if held is not None and held.answer is not None:
                return held
            await self._clock.sleep(self._poll)

    async def aclose(self) -> None:
        await cancel_and_wait(self._renewer)
        # at once, while Redis answers (a retry need not wait out the lease): a stalled Redis costs
        # the shutdown one timeout, not one for each
        await asyncio.gather(self._unkept.aclose(), self._abandoned.aclose())
        await self._redis.aclose()

    async def _renew_held(self) -> None:
        """Every third of a lease, renew the claims of the calls still running here."""
        while self._held:
            await self._clock.sleep(self._lease_ms / 3000)
            held = list(self._held.items())
            results = await asyncio.gather(
                *(self._renew(keys=[name], args=[mine, self._lease_ms]) for name, mine in held),
                return_exceptions=True,  # unreachable now: the next round tries again
            )
            if any(isinstance(r, Exception) for r in results):
                self._on_error("renew")

    def _abandon(self, name: str, mine: bytes) -> None:
        """Give the claim up in the background until Redis answers (or the claim has expired)."""
        self._abandoned.add(name, mine, until=self._clock.monotonic() + GIVE_UP_SECONDS)

    async def _keep_late(self, name: str, claim_and_answer: tuple[bytes, bytes]) -> None:
        mine, value = claim_and_answer
        await self._keep(keys=[name], args=[mine, value, self._window_ms])

    async def _give_up_claim(self, name: str, mine: bytes) -> None:
        await self._give_up(keys=[name], args=[mine, _tombstone(mine), self._lease_ms])


def _tombstone(claim: bytes) -> bytes:
    return b"X" + claim[-_TOKEN:]


def _decode(raw: bytes | None) -> Held | None:
    if not raw or raw[:1] not in (b"P", b"D") or len(raw) < 1 + _FP:
        return None
    fingerprint = raw[1 : 1 + _FP]
    return Held(fingerprint, raw[1 + _FP :] if raw[:1] == b"D" else None)
