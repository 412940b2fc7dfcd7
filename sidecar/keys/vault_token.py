"""Keeping the sidecar's Vault token alive: renew a renewable token before its TTL runs out, or read
it again from the file another process keeps it in.

A token given as such (`settings.keys.vault.token`) may carry a TTL; when it runs
out, every wrap and unwrap is refused. At start the token is looked up (`auth/token/lookup-self`):
a token without a TTL (a root or periodic-less service token made with no TTL) needs nothing; one
that is not renewable is logged as such (it will expire; nothing here can help). A renewable one is
renewed (`auth/token/renew-self`) when two thirds of its TTL have passed, and again after each
renewal, until Vault caps it at its max TTL (it warns so; or the renewal no longer extends it):
then a warning says when it expires. (Renewed again at its max TTL, Vault would only answer
"past the max TTL" with a 500, then 403.)

A lookup or renewal that fails is logged (its error class, never the token) and counted
(`outcome="failed"`), and tried again after a backoff (1 s, doubling to 30 s), never later than
half the time the token has left; once the token's TTL has passed it is logged as expired and the
renewal stops. Every wait is on the injected clock; `aclose` cancels the renewal at once.

A token in a file (`settings.keys.vault.token_file`, as Vault Agent's auto-auth sink writes it) is
the file writer's to keep alive: the sidecar does not renew it, it reads the file again when the
file changes or Vault refuses the token (`TokenFile`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sidecar.core.clock import Clock

_log = logging.getLogger("sidecar.keys")

RENEW_AT = 2 / 3  # of the token's TTL
MAX_TOKEN_FILE_BYTES = 64 * 1024  # a Vault token is a few hundred bytes; a batch token a few KiB
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
# A renewal that moves the expiry by less than this (or a tenth of the TTL) has hit the max TTL.
MIN_EXTENSION_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class TokenLease:
    """What Vault says of the token: seconds it has left (0: it does not expire), whether it may be
    renewed, and whether this renewal was capped by its max TTL (Vault warns so)."""

    ttl: float
    renewable: bool
    capped: bool = False


class RenewalObserver(Protocol):
    """Told each lookup or renewal's outcome, "renewed" or "failed" (telemetry.metrics.Metrics)."""

    def key_token_renewal(self, outcome: str) -> None: ...


TokenCall = Callable[[], Awaitable[TokenLease]]


class TokenRenewal:
    """Renews the token through `lookup` and `renew` (the backend's calls to Vault, on its threads)."""

    def __init__(
        self, lookup: TokenCall, renew: TokenCall, clock: Clock, observer: RenewalObserver | None = None
    ) -> None:
        self._lookup, self._renew, self._clock, self._observer = lookup, renew, clock, observer
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._keep_alive(), name="vault-token-renewal")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep_alive(self) -> None:
        lease = await self._until_answered(self._lookup, "look up", expires_at=None)
        while lease is not None and self._renewable(lease):
            expires_at = self._clock.monotonic() + lease.ttl
            await self._clock.sleep(lease.ttl * RENEW_AT)
            renewed = await self._until_answered(self._renew, "renew", expires_at=expires_at)
            if renewed is None:
                return
            self._count("renewed")
            least = min(MIN_EXTENSION_SECONDS, lease.ttl / 10)  # a TTL of a second or two, as in tests
            if renewed.capped or (
                renewed.ttl > 0 and self._clock.monotonic() + renewed.ttl < expires_at + least
            ):
                _log.warning(
                    "the Vault token has reached its max TTL and is no longer extended: it expires "
                    "in %.0f s; give the sidecar a new token (or use Kubernetes auth) before then",
                    renewed.ttl,
                )
                return
            lease = renewed

    @staticmethod
    def _renewable(lease: TokenLease) -> bool:
        if lease.ttl <= 0:
            _log.info("the Vault token does not expire: nothing to renew")
            return False
        if not lease.renewable:
            _log.warning(
                "the Vault token expires in %.0f s and is not renewable: user keys stop working then",
                lease.ttl,
            )
            return False
        return True

    async def _until_answered(
        self, call: TokenCall, what: str, *, expires_at: float | None
    ) -> TokenLease | None:
        """`call()`'s lease, trying again after each failure; None once the token has expired."""
        backoff = FIRST_RETRY_SECONDS
        while True:
            try:
                return await call()
            except Exception as exc:  # logged and counted: the renewal must outlive a Vault outage
                self._count("failed")
                left = None if expires_at is None else expires_at - self._clock.monotonic()
                if left is not None and left <= 0:
                    _log.error(
                        "the Vault token has expired (could not %s it: %s); user keys fail until the "
                        "sidecar has a new token",
                        what,
                        type(exc).__name__,
                    )
                    return None
                wait = backoff if left is None else max(min(backoff, left / 2), 0.001)
                _log.warning(
                    "could not %s the Vault token (%s); trying again in %.1f s",
                    what,
                    type(exc).__name__,
                    wait,
                    extra={} if left is None else {"expires_in_seconds": round(left, 1)},
                )
                await self._clock.sleep(wait)
                backoff = min(backoff * 2, MAX_RETRY_SECONDS)

    def _count(self, outcome: str) -> None:
        if self._observer is not None:
            self._observer.key_token_renewal(outcome)


class TokenFile:
    """A token another process keeps in a file (Vault Agent's auto-auth sink, which renews it and
    writes a new one when it logs in again): read at start, again before a call when the file has
    changed (modification time, size or inode), and when Vault refuses the token. Not thread-safe:
    the backend reads it under its login lock."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[int, int, int] | None = None

    def read(self) -> str:
        """The token; OSError when the file cannot be read, ValueError when it is empty, larger
        than any token (read no further: a device that never ends) or not text. Messages name the
        file, never its content."""
        stamp = self._stamp()
        with self._path.open("rb") as file:
            raw = file.read(MAX_TOKEN_FILE_BYTES + 1)
        if len(raw) > MAX_TOKEN_FILE_BYTES:
            raise ValueError(f"{self._path}: larger than {MAX_TOKEN_FILE_BYTES} bytes: not a Vault token")
        try:
            token = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"{self._path}: not UTF-8 text: not a Vault token") from None
        if not token.isprintable() or any(c.isspace() for c in token):
            raise ValueError(f"{self._path}: whitespace or a control character inside: not one Vault token")
        if not token:
            raise ValueError(f"{self._path}: the Vault token file is empty")
        self._seen = stamp
        return token

    def changed(self) -> bool:
        """Whether the file differs from when it was last read (a file being replaced: not yet)."""
        try:
            return self._stamp() != self._seen
        except OSError:
            return False

    def _stamp(self) -> tuple[int, int, int]:
        st = self._path.stat()
        return st.st_mtime_ns, st.st_size, st.st_ino
