"""What the quota service reports: near-limit events, shadow refusals, store errors.

Each goes to a structured log line, to counters the metrics layer can read, and to typed hooks
the composition root connects (e.g. to Prometheus). Near-limit events also go to the webhook.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

from sidecar.core.clock import Clock
from sidecar.telemetry.logging import RateLimitedLog

_log = logging.getLogger("sidecar.quota")
# The operations a store error is reported for (`store_error`), each a series from the start.
STORE_OPERATIONS = ("reserve", "extend", "settle", "release", "read", "renew")
STORE_ERROR_LOG_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class NearLimitEvent:
    """A limit's bucket reached `level` percent (used plus reserved) for the first time in its window."""

    limit: str
    metric: str
    scope: str
    tenant: str
    user: str
    window: str
    level: int
    used: float
    limit_value: float
    window_end: float | None  # epoch seconds; None for a concurrency limit
    shadow: bool

    def as_json(self) -> dict[str, object]:
        return {"event": "quota.near_limit", **asdict(self)}


class EventSink(Protocol):
    def send(self, event: NearLimitEvent) -> None: ...

    async def aclose(self) -> None: ...


@dataclass
class QuotaSignals:
    """Hooks and counters; the hooks run on the request path, so they must be quick and never raise."""

    on_near_limit: list[Callable[[NearLimitEvent], None]] = field(default_factory=list)
    on_store_error: list[Callable[[str], None]] = field(default_factory=list)
    on_refused: list[Callable[[str, str], None]] = field(default_factory=list)  # (limit, reason)
    webhook: EventSink | None = None
    near_limit_total: Counter[tuple[str, int]] = field(default_factory=Counter)
    store_errors_total: Counter[str] = field(default_factory=Counter)  # by operation
    # reservations a limit refused (a cache-only call's refused estimate too, served by a hit or not);
    # refused calls are sidecar_quota_refusals_total, counted from the call's final error
    refused_total: Counter[tuple[str, str]] = field(default_factory=Counter)
    shadow_refused_total: Counter[str] = field(default_factory=Counter)
    clock: Clock | None = None  # with it, store errors are logged once a minute at most
    _errors: RateLimitedLog | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.clock is not None:
            self._errors = RateLimitedLog(_log, self.clock, interval=STORE_ERROR_LOG_INTERVAL_SECONDS)

    def near_limit(self, event: NearLimitEvent) -> None:
        self.near_limit_total[(event.limit, event.level)] += 1
        _log.warning("quota near limit", extra=event.as_json())
        for hook in self.on_near_limit:
            _safely(hook, event)
        if self.webhook is not None:
            self.webhook.send(event)

    def store_error(self, operation: str, error: Exception) -> None:
        """Counted and handed to the hooks each time; logged once a minute at most (with `clock`):
        a store that is down fails every call's reserve and settle, hundreds a second."""
        self.store_errors_total[operation] += 1
        extra: dict[str, object] = {"operation": operation, "error": str(error)}
        if self._errors is not None:
            self._errors.log(logging.ERROR, "quota store error", extra=extra)
        else:
            _log.error("quota store error", extra=extra)
        for hook in self.on_store_error:
            _safely(hook, operation)

    def refused(self, limit: str, reason: str, *, shadow: bool) -> None:
        if shadow:
            self.shadow_refused_total[limit] += 1
            _log.info("quota shadow limit would refuse", extra={"limit": limit, "reason": reason})
            return
        self.refused_total[(limit, reason)] += 1
        for hook in self.on_refused:
            _safely(hook, limit, reason)


def _safely(hook: Callable[..., None], *args: object) -> None:
    try:
        hook(*args)
    except Exception:
        _log.exception("quota signal hook failed")
