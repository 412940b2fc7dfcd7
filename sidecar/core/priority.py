"""A call's priority: five levels the caller sets (trusted metadata for now) and its tier may cap."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping

PRIORITY_METADATA_KEY = "priority"


class Priority(enum.IntEnum):
    """Higher is served first when the sidecar is full; NORMAL when the caller says nothing."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()


PRIORITY_NAMES = tuple(p.name for p in Priority)


def parse_priority(value: str) -> Priority | None:
    """A level by name, any case ("critical", "HIGH"); None for anything else."""
    return Priority.__members__.get(value.strip().upper())


def priority_from_metadata(metadata: Mapping[str, str], bad: Callable[[str, str], None]) -> Priority:
    """The edge conversion: metadata["priority"] names a level; absent is NORMAL; anything else is a
    violation reported through `bad(field, description)` (then NORMAL, never used: the call is refused)."""
    raw = metadata.get(PRIORITY_METADATA_KEY)
    if raw is None:
        return Priority.NORMAL
    level = parse_priority(raw)
    if level is None:
        bad(f"metadata[{PRIORITY_METADATA_KEY}]", f"one of {', '.join(PRIORITY_NAMES)}")
        return Priority.NORMAL
    return level


def capped(priority: Priority, cap: Priority | None) -> Priority:
    """The priority a tier allows: at most its cap."""
    return priority if cap is None else min(priority, cap)
