"""Availability windows and the day/week buckets of the escalation limits, in the agent's time zone."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sidecar.config.answers import DAYS, AgentPolicy, minutes


def local(policy: AgentPolicy, wall: float) -> datetime:
    return datetime.fromtimestamp(wall, ZoneInfo(policy.timezone))


def available(policy: AgentPolicy, wall: float) -> bool:
    """The creator takes escalations now (no windows: always)."""
    if not policy.availability:
        return True
    now = local(policy, wall)
    day, minute = DAYS[now.weekday()], now.hour * 60 + now.minute
    return any(day in w.days and minutes(w.start) <= minute < minutes(w.end) for w in policy.availability)


def next_window(policy: AgentPolicy, wall: float) -> float:
    """The wall time the next window opens (now when available; 0 when there is no window at all)."""
    if available(policy, wall):
        return wall
    now = local(policy, wall)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    starts: list[float] = []
    for offset in range(8):
        day = midnight + timedelta(days=offset)
        for w in policy.availability:
            if DAYS[day.weekday()] in w.days:
                start = _opening(day + timedelta(minutes=minutes(w.start)))
                if start > wall:
                    starts.append(start)
    return min(starts) if starts else 0.0


def _opening(start: datetime) -> float:
    """The instant a window starting at this local time opens: the time's own (the first of two when
    the clocks fall back), or, when they spring forward over it, the instant they jump past it (its
    own time never comes: read in the old offset it fell after the jump, when a window of an hour
    had already closed)."""
    first, last = start.replace(fold=1).timestamp(), start.replace(fold=0).timestamp()
    if last <= first:  # it exists: fold 0 is the first (or the only) time it is shown
        return last
    wanted = start.replace(tzinfo=None)
    lo, hi = math.floor(first), math.ceil(last)  # the jump lies between the two readings
    while lo < hi:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, start.tzinfo).replace(tzinfo=None) >= wanted:
            hi = mid
        else:
            lo = mid + 1
    return float(lo)


def buckets(policy: AgentPolicy, wall: float) -> tuple[str, str]:
    """The limit buckets a moment falls in: its local day and ISO week."""
    now = local(policy, wall)
    year, week, _ = now.isocalendar()
    return now.strftime("%Y-%m-%d"), f"{year}-W{week:02d}"
