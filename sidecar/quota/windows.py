"""Calendar windows: minute, day and month, aligned in a time zone, as epoch milliseconds.

A window is [start, end). Stores get the edges of the previous, current and next windows as the
sidecar's clock sees them and pick the one containing *their* time (Redis server time in
production), so sidecars whose clocks disagree by less than a window still share one bucket.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from sidecar.config.quota import Window

MINUTE_MS = 60_000


def window_edges(window: Window, now: float, zone: zoneinfo.ZoneInfo) -> tuple[int, ...]:
    """(previous start, current start, next start, next end) in epoch ms, for `now` in epoch seconds."""
    if window == "minute":
        start = int(now * 1000) // MINUTE_MS * MINUTE_MS
        return (start - MINUTE_MS, start, start + MINUTE_MS, start + 2 * MINUTE_MS)
    local = dt.datetime.fromtimestamp(now, zone)
    current = _start_of(window, local)
    previous = _start_of(window, current - dt.timedelta(days=1))
    following = _step(window, current)
    return tuple(_ms(t) for t in (previous, current, following, _step(window, following)))


def _start_of(window: Window, local: dt.datetime) -> dt.datetime:
    day = local.date().replace(day=1) if window == "month" else local.date()
    return dt.datetime.combine(day, dt.time(), local.tzinfo)


def _step(window: Window, start: dt.datetime) -> dt.datetime:
    """The start of the window after the one starting at `start` (wall-clock arithmetic, DST-safe)."""
    if window == "day":
        return _start_of("day", start + dt.timedelta(days=1, hours=12))
    return _start_of("month", start + dt.timedelta(days=32))


def _ms(t: dt.datetime) -> int:
    return round(t.timestamp() * 1000)


def pick(edges: tuple[int, ...], now_ms: int) -> tuple[int, int]:
    """The [start, end) among consecutive `edges` holding now_ms (clamped to the first or last)."""
    for i in range(len(edges) - 1):
        if now_ms < edges[i + 1] or i == len(edges) - 2:
            return edges[i], edges[i + 1]
    raise ValueError("a window needs at least two edges")
