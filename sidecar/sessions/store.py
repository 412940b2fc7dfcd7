"""The conversation store: one typed interface, an in-memory implementation (the embedded default).

State per conversation (tenant, user, conversation id): the active persona, the version of the
Switch that set it, a ticket counter for Switches, the history (user, assistant and tool messages
with their tool calls and image references, oldest first, capped; sidecar/sessions/records.py) and
the rolling summary of the older messages (sidecar/context/summary.py). Per user (tenant, user):
the switch history, newest first, capped.
Every write refreshes the entry's TTL; an entry not written for `ttl_seconds` is gone.

A clear wins over the turns in flight: each conversation counts its clears (its epoch), a snapshot
says the epoch it was read at, and a turn's append and summary carry it: the store refuses them,
atomically with the write, when the conversation was cleared since (the turn read the history the
user cleared; its answer was delivered, only its memory is dropped).

Last Switch wins, also across sidecars sharing a store: a Switch takes a ticket (`next_version`,
strictly increasing per conversation) when it arrives, and `activate` applies it only if no Switch
with a higher ticket has been applied already. A clear wins over the Switches in flight the same
way: it raises the applied version to the last ticket handed out, so a Switch that took its ticket
before the clear is refused (superseded) instead of bringing a persona back after it.

In memory, a clear drops the conversation's entry and leaves only a mark, kept apart and bounded
(sidecar/sessions/marks.py), and a ticket writes nothing: neither takes a place among the
`max_conversations`, so clearing made-up conversation ids cannot push out other users' state.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.core.clock import Clock
from sidecar.core.lru import Lru
from sidecar.core.types import Message, Role
from sidecar.sessions.marks import ClearMarks
from sidecar.sessions.records import storable


@dataclass(frozen=True, slots=True)
class ConversationKey:
    tenant: str
    user: str
    conversation: str

    @property
    def owner(self) -> tuple[str, str]:
        return (self.tenant, self.user)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A conversation's state as one call sees it."""

    persona_id: str = ""  # "" = none chosen
    version: int = 0  # ticket of the Switch that set it
    history: tuple[Message, ...] = ()
    epoch: int = 0  # the conversation's clears when it was read (writes of this turn carry it)


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """The rolling summary of a conversation's older messages: its text, how many messages it
    covers, and a digest of the newest message it covers (where the next refresh starts)."""

    text: str
    messages: int
    covered: str


@dataclass(frozen=True, slots=True)
class SwitchRecord:
    conversation_id: str
    from_persona: str
    to_persona: str
    command: str
    success: bool
    error: str  # the ErrorInfo reason of a failed switch, "" on success
    at: float  # wall-clock seconds
    version: int = 0  # the ticket it took; 0 when it failed before taking one


@dataclass(frozen=True, slots=True)
class StorePolicy:
    ttl_seconds: float
    max_history_messages: int
    max_switch_history: int
    max_conversations: int = 100_000
    max_bytes: int = 64 * 1024 * 1024  # in-memory store: what histories, summaries, switch records hold
    max_history_bytes: int = 2 * 1024 * 1024  # one conversation's history (the newest message always)


class ConversationStore(Protocol):
    async def snapshot(self, key: ConversationKey, *, history: bool) -> Snapshot: ...

    async def next_version(self, key: ConversationKey) -> int:
        """A new Switch ticket for the conversation, greater than every earlier one."""
        ...

    async def activate(self, key: ConversationKey, persona_id: str, version: int) -> tuple[bool, str]:
        """Set the active persona unless a higher version is applied; (applied, persona before)."""
        ...

    async def append(
        self, key: ConversationKey, messages: tuple[Message, ...], *, epoch: int | None = None
    ) -> bool:
        """Add to the history (as sidecar/sessions/records.py `storable` keeps them: tool calls,
        tool results and image references, no inline image bytes), dropping the oldest beyond the cap,
        and then any tool result left at the front without its call (`starts_orphaned`). With
        `epoch` (a snapshot's), nothing is added when the conversation was cleared since: False."""
        ...

    async def clear(self, key: ConversationKey) -> bool:
        """Forget the history, the summary and the active persona, and count the clear in the epoch,
        also when there was nothing to forget (a first turn may be in flight); the version rises to
        the last ticket handed out (a Switch ticketed before the clear is not applied after it);
        whether there was anything."""
        ...

    async def summary(self, key: ConversationKey) -> ConversationSummary | None:
        """The conversation's rolling summary, if one was saved and has not expired."""
        ...

    async def save_summary(
        self, key: ConversationKey, summary: ConversationSummary, *, epoch: int | None = None
    ) -> bool:
        """Replace the rolling summary (refreshes the conversation's TTL); with `epoch`, not when the
        conversation was cleared since (False)."""
        ...

    async def record_switch(self, tenant: str, user: str, record: SwitchRecord) -> None: ...

    async def switches(self, tenant: str, user: str, conversation: str, limit: int) -> list[SwitchRecord]:
        """The user's switches, newest first; only one conversation's when `conversation` is set."""
        ...

    async def aclose(self) -> None: ...


MESSAGE_OVERHEAD = 128  # bytes of a stored message besides its strings: the object, tuples, deque slot


def footprint(message: Message) -> int:
    """The bytes a stored message holds in this process: its strings as Python keeps them, plus the
    objects around them (an approximation from above for the store's memory bound)."""
    strings = (
        message.text,
        message.name,
        message.tool_call_id,
        *(s for c in message.tool_calls for s in (c.id, c.name, c.arguments)),
        *(s for i in message.images for s in (i.url, i.mime_type)),
        *(s for b in message.thinking for s in (b.text, b.signature, b.redacted)),
    )
    return MESSAGE_OVERHEAD + sum(sys.getsizeof(s) for s in strings)


def record_footprint(record: SwitchRecord) -> int:
    """The bytes a switch record holds in this process (as `footprint` for a message)."""
    strings = (record.conversation_id, record.from_persona, record.to_persona, record.command, record.error)
    return MESSAGE_OVERHEAD + sum(sys.getsizeof(s) for s in strings)


def starts_orphaned(history: Sequence[Message]) -> bool:
    """Whether the history starts with a tool result, whose call the cap dropped: the cap drops the
    oldest messages a whole unit at a time (an assistant message and the results after it), since a
    replayed orphan result is refused by the resolve step and by the providers, on every turn."""
    return bool(history) and history[0].role is Role.TOOL


@dataclass(slots=True)
class _Conversation:
    expires_at: float
    persona_id: str = ""
    version: int = 0
    history: deque[Message] = field(default_factory=deque)
    summary: ConversationSummary | None = None
    size: int = 0  # the history's footprint in bytes
    summary_size: int = 0  # the summary's
    written: int = 0  # the store's write count when it was last written (least recently written first)
    epoch: int = 0  # the last clear's mark (MemoryConversationStore._mark)


@dataclass(slots=True)
class _Switches:
    expires_at: float
    records: deque[SwitchRecord] = field(default_factory=deque)
    size: int = 0  # the records' footprint in bytes
    written: int = 0


class MemoryConversationStore:
    """One process's conversations and switch histories, bounded by count and by the bytes their
    histories, summaries and switch records hold together (the least recently written of either
    dropped first; a conversation larger than the whole bound alone keeps its newest messages that
    fit, a user's switch history its newest record)."""

    def __init__(self, policy: StorePolicy, clock: Clock) -> None:
        self._policy, self._clock = policy, clock
        self._convs: Lru[ConversationKey, _Conversation] = Lru(policy.max_conversations, self._evicted)
        self._switches: Lru[tuple[str, str], _Switches] = Lru(policy.max_conversations, self._switches_gone)
        self._size = 0  # the footprint of every history, summary and switch record held
        self._writes = 0
        self._marks = 0  # the last Switch ticket or clear handed out, for every conversation
        # the clears' marks of conversations with nothing stored, bounded apart (sidecar/sessions/marks.py)
        self._cleared: ClearMarks[ConversationKey] = ClearMarks(
            policy.max_conversations // 10, policy.ttl_seconds, clock
        )

    @property
    def cleared(self) -> int:
        """Marks of clears held for conversations with nothing stored (at most a tenth of
        `max_conversations`)."""
        return len(self._cleared)

    @property
    def size(self) -> int:
        """Bytes the histories, summaries and switch records hold (`footprint`, `record_footprint`),
        at most `max_bytes` after a write."""
        return self._size

    def _stamp(self) -> int:
        self._writes += 1
        return self._writes

    def _mark(self) -> int:
        """A Switch ticket or a clear's epoch: one count for the whole store, so it keeps rising when a
        conversation is forgotten (expired, evicted) while a Switch or a turn of it is in flight, where
        a count per conversation would start again at 1 (as Redis's clock does for the Redis store)."""
        self._marks += 1
        return self._marks

    def _live(self, key: ConversationKey) -> _Conversation | None:
        conv = self._convs.peek(key)
        if conv is not None and conv.expires_at <= self._clock.monotonic():
            self._forget(key)
            return None
        return conv

    def _forget(self, key: ConversationKey) -> None:
        self._forgotten(key, self._convs.pop(key))

    def _forgotten(self, key: ConversationKey, conv: _Conversation) -> None:
        self._size -= conv.size + conv.summary_size

    def _evict(self, key: ConversationKey) -> None:
        self._evicted(key, self._convs.pop(key))

    def _evicted(self, key: ConversationKey, conv: _Conversation) -> None:
        """A conversation dropped for the bounds: its clear's and its Switch's marks then hold for every
        conversation with nothing stored (a turn or Switch of it in flight still loses to them)."""
        self._cleared.lift(max(conv.epoch, conv.version))
        self._forgotten(key, conv)

    def _forget_switches(self, owner: tuple[str, str]) -> None:
        self._switches_gone(owner, self._switches.pop(owner))

    def _switches_gone(self, owner: tuple[str, str], entry: _Switches) -> None:
        self._size -= entry.size

    def _evict_others(self, key: ConversationKey | None, owner: tuple[str, str] | None) -> None:
        """While over `max_bytes`: drop the least recently written conversation or switch history,
        never the one being written (`key` or `owner`)."""
        while self._size > self._policy.max_bytes:
            conv = next((k for k in self._convs if k != key), None)
            switches = next((o for o in self._switches if o != owner), None)
            if conv is not None and (
                switches is None or self._convs[conv].written < self._switches[switches].written
            ):
                self._evict(conv)
            elif switches is not None:
                self._forget_switches(switches)
            else:
                return

    def _drop_oldest(self, conv: _Conversation) -> None:
        size = footprint(conv.history.popleft())
        conv.size -= size
        self._size -= size

    def _write(self, key: ConversationKey) -> _Conversation:
        """The conversation for writing: created if needed, TTL refreshed, most recent in LRU order."""
        expires = self._clock.monotonic() + self._policy.ttl_seconds
        conv = self._live(key)
        if conv is None:
            mark = self._cleared.pop(key)  # a clear's mark (or the floor) carries over
            conv = _Conversation(expires, version=mark, epoch=mark)
            self._convs.put(key, conv)  # past max_conversations the oldest goes to _evicted
        conv.expires_at, conv.written = expires, self._stamp()
        self._convs.refresh(key)
        return conv

    async def snapshot(self, key: ConversationKey, *, history: bool) -> Snapshot:
        conv = self._live(key)
        if conv is None:  # every clear so far is at or below the count
            return Snapshot(epoch=self._marks)
        return Snapshot(conv.persona_id, conv.version, tuple(conv.history) if history else (), conv.epoch)

    async def next_version(self, key: ConversationKey) -> int:
        """A ticket from the store-wide count: nothing is written (a Switch never applied, or one on a
        made-up conversation id, takes no place among the conversations)."""
        return self._mark()

    async def activate(self, key: ConversationKey, persona_id: str, version: int) -> tuple[bool, str]:
        conv = self._live(key)
        before = conv.persona_id if conv is not None else ""
        if version <= (conv.version if conv is not None else self._cleared.get(key)):
            return False, before  # a refused Switch takes no place among the conversations
        conv = self._write(key)
        conv.persona_id, conv.version = persona_id, version
        return True, before

    def _stale(self, key: ConversationKey, epoch: int | None) -> bool:
        """Whether the conversation was cleared since a snapshot read at `epoch`."""
        if epoch is None:
            return False
        conv = self._live(key)
        return (conv.epoch if conv is not None else self._cleared.get(key)) > epoch

    async def append(
        self, key: ConversationKey, messages: tuple[Message, ...], *, epoch: int | None = None
    ) -> bool:
        if self._stale(key, epoch):
            return False
        conv = self._write(key)
        for message in map(storable, messages):
            conv.history.append(message)
            size = footprint(message)
            conv.size += size
            self._size += size
        while (
            len(conv.history) > self._policy.max_history_messages
            or (conv.size > self._policy.max_history_bytes and len(conv.history) > 1)
            or starts_orphaned(conv.history)
        ):
            self._drop_oldest(conv)
        self._bound(key, conv)
        return True

    def _bound(self, key: ConversationKey, conv: _Conversation) -> None:
        """Within `max_bytes`: the least recently written conversations and switch histories go
        first, then this one's oldest messages (whole units, as for the count cap)."""
        self._evict_others(key, None)
        while conv.history and (self._size > self._policy.max_bytes or starts_orphaned(conv.history)):
            self._drop_oldest(conv)

    async def clear(self, key: ConversationKey) -> bool:
        """The conversation's entry goes and leaves a mark (sidecar/sessions/marks.py), above every
        epoch read and every ticket handed out before: those turns and Switches lose to it. A clear
        takes no place among the conversations (of a made-up id neither)."""
        conv = self._live(key)
        had = conv is not None and bool(conv.history or conv.persona_id or conv.summary)
        if conv is not None:
            self._forget(key)
        self._cleared.put(key, self._mark())
        return had

    async def summary(self, key: ConversationKey) -> ConversationSummary | None:
        conv = self._live(key)
        return conv.summary if conv is not None else None

    async def save_summary(
        self, key: ConversationKey, summary: ConversationSummary, *, epoch: int | None = None
    ) -> bool:
        if self._stale(key, epoch):
            return False
        conv = self._write(key)
        size = MESSAGE_OVERHEAD + sys.getsizeof(summary.text) + sys.getsizeof(summary.covered)
        self._size += size - conv.summary_size
        conv.summary, conv.summary_size = summary, size
        self._bound(key, conv)
        return True

    async def record_switch(self, tenant: str, user: str, record: SwitchRecord) -> None:
        owner = (tenant, user)
        expires = self._clock.monotonic() + self._policy.ttl_seconds
        entry = self._switches.peek(owner)
        if entry is None or entry.expires_at <= self._clock.monotonic():
            if entry is not None:
                self._forget_switches(owner)
            entry = _Switches(expires)
            self._switches.put(owner, entry)
        entry.expires_at, entry.written = expires, self._stamp()
        self._switches.refresh(owner)
        entry.records.appendleft(record)
        self._grow(entry, record_footprint(record))
        while len(entry.records) > self._policy.max_switch_history:
            self._grow(entry, -record_footprint(entry.records.pop()))
        self._evict_others(None, owner)
        while self._size > self._policy.max_bytes and len(entry.records) > 1:
            self._grow(entry, -record_footprint(entry.records.pop()))

    def _grow(self, entry: _Switches, size: int) -> None:
        entry.size += size
        self._size += size

    async def switches(self, tenant: str, user: str, conversation: str, limit: int) -> list[SwitchRecord]:
        entry = self._switches.peek((tenant, user))
        if entry is None or entry.expires_at <= self._clock.monotonic():
            return []
        found = (r for r in entry.records if not conversation or r.conversation_id == conversation)
        return [r for _, r in zip(range(limit), found, strict=False)]

    async def aclose(self) -> None:
        self._convs.clear()
        self._cleared.clear()
        self._switches.clear()
        self._size = 0
