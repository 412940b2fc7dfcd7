"""Fitting a conversation into a token budget: pure, no I/O.

The rules, in order:
1. The system messages at the front (the application's system prompt and the persona's) are
   pinned: always kept, never counted as "recent".
2. The rest is cut into units: an assistant message and the tool messages that answer it (the
   run of ROLE_TOOL messages right after it) are one unit, kept or dropped whole, so a tool call
   is never separated from its result. Every other message is a unit of its own.
3. The newest unit is always kept. Older units are kept, newest first, while the kept messages
   number at most `max_recent` and the prompt fits every budget; the first unit that does not
   ends the walk, so what is kept is always a contiguous, most recent tail.
4. A budget is one deployment's context window minus the max_tokens it will be asked for and the
   call's tool definitions and response schema (`fixed`), counted with that deployment's
   tokenizer; a message counts its text, role, name, tool calls, tool-result id and images. If
   the pinned messages and the newest unit fit no budget, the prompt is CONTEXT_TOO_LONG; budgets
   they do not fit are left out (the route will not choose those deployments either).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.context.tokenizer import TokenCounter
from sidecar.core.errors import ContextTooLongError
from sidecar.core.types import Message, Role

Unit = tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class Budget:
    """What one deployment can take: its tokenizer, its window and the max_tokens it will be sent."""

    deployment: str
    counter: TokenCounter
    window: int
    max_tokens: int
    fixed: int = 0  # the call's tool definitions and response schema, by this counter

    @property
    def limit(self) -> int:
        return self.window - self.max_tokens - self.fixed


@dataclass(frozen=True, slots=True)
class Fit:
    """The outcome: pinned + kept is the prompt to send; dropped is what was left out."""

    pinned: tuple[Message, ...]
    dropped: tuple[Message, ...]
    kept: tuple[Message, ...]
    budgets: tuple[Budget, ...]  # the budgets the result fits (those the newest unit could fit)

    @property
    def budget(self) -> Budget:
        """The strictest of them: its tokenizer reports what was removed."""
        return min(self.budgets, key=lambda b: b.limit)

    @property
    def trimmed(self) -> bool:
        return bool(self.dropped)


def split_pinned(messages: Sequence[Message]) -> tuple[tuple[Message, ...], tuple[Message, ...]]:
    """The leading system messages, and the rest."""
    n = 0
    while n < len(messages) and messages[n].role is Role.SYSTEM:
        n += 1
    return tuple(messages[:n]), tuple(messages[n:])


def units(messages: Sequence[Message]) -> list[Unit]:
    """Group an assistant message with the tool results that follow it; others stand alone."""
    out: list[list[Message]] = []
    for m in messages:
        if m.role is Role.TOOL and out and out[-1][0].role is Role.ASSISTANT:
            out[-1].append(m)
        else:
            out.append([m])
    return [tuple(u) for u in out]


class _Tally:
    """Running prompt size under each distinct tokenizer of the budgets; counts each message once."""

    def __init__(self, budgets: Sequence[Budget], base: Sequence[Message], reserve: int) -> None:
        limits: dict[str, tuple[TokenCounter, int]] = {}
        for b in budgets:
            known = limits.get(b.counter.name)
            if known is None or b.limit < known[1]:
                limits[b.counter.name] = (b.counter, b.limit)
        self._limits = list(limits.values())
        self.totals = [
            c.frame(base) + reserve + sum(c.count_message(m) for m in base) for c, _ in self._limits
        ]

    def fits_with(self, unit: Unit) -> list[int] | None:
        """The totals with `unit` added, or None if any budget would overflow."""
        pairs = zip(self.totals, self._limits, strict=True)
        added = [t + sum(c.count_message(m) for m in unit) for t, (c, _) in pairs]
        if all(t <= limit for t, (_, limit) in zip(added, self._limits, strict=True)):
            return added
        return None


def _upper_bound(messages: Sequence[Message], budgets: Sequence[Budget]) -> int:
    """More tokens than any tokenizer here can count: every token is at least one UTF-8 byte."""
    per_message = max(b.counter.per_message + b.counter.per_name + 1 for b in budgets)
    frame = max(b.counter.frame(messages) for b in budgets)
    images = sum(max(b.counter.count_image(i) for b in budgets) for m in messages for i in m.images)
    return frame + images + sum(_bytes(m) + per_message for m in messages)


def _bytes(m: Message) -> int:
    """The UTF-8 bytes of every text a message carries, plus each tool call's framing."""
    calls = sum(len(f"{c.id}{c.name}{c.arguments}".encode()) + 3 for c in m.tool_calls)
    calls += sum(len(b.text.encode()) + len(b.redacted) for b in m.thinking)
    return len(m.text.encode()) + len(m.role.value) + len(m.name.encode()) + calls + len(m.tool_call_id)


def fit(messages: Sequence[Message], budgets: Sequence[Budget], max_recent: int, reserve: int = 0) -> Fit:
    """Trim `messages` to the rules above; `reserve` tokens are kept free (for a summary)."""
    pinned, rest = split_pinned(messages)
    strictest = min(budgets, key=lambda b: b.limit)
    if len(rest) <= max_recent and _upper_bound(messages, budgets) + reserve <= strictest.limit:
        return Fit(pinned, (), rest, tuple(budgets))  # fits for certain: nothing to count
    groups = units(rest)
    newest = groups[-1] if groups else ()
    usable = [b for b in budgets if _Tally([b], pinned, reserve).fits_with(newest) is not None]
    if not usable:
        largest = max(budgets, key=lambda b: b.limit)
        prompt = largest.counter.count_prompt(messages) + largest.fixed
        raise ContextTooLongError(prompt, largest.window)
    tally = _Tally(usable, pinned, reserve)
    start = len(rest)  # rest[start:] is kept
    for unit in reversed(groups):
        if start < len(rest) and len(rest) - start + len(unit) > max_recent:
            break
        totals = tally.fits_with(unit)
        if totals is None:
            break
        tally.totals = totals
        start -= len(unit)
    return Fit(pinned, rest[:start], rest[start:], tuple(usable))


def unanswered(messages: Sequence[Message]) -> list[int]:
    """Positions of tool results that answer no tool call of an earlier assistant message."""
    calls: set[str] = set()
    out: list[int] = []
    for i, m in enumerate(messages):
        calls.update(c.id for c in m.tool_calls)
        if m.role is Role.TOOL and m.tool_call_id not in calls:
            out.append(i)
    return out
