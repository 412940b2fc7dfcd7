"""Personas of conversations: Switch (ordered per user, last one wins), and each call's persona and history.

`switch` resolves the target (an id, or a natural command through CommandMatcher), checks the
caller's tier, takes a ticket from the store, waits for its turn in the user's queue (behind the
snapshots of earlier generations and earlier Switches) and applies it unless a newer Switch of the
same conversation, or a ClearConversation, arrived meanwhile (then it fails with
SWITCH_SUPERSEDED). Every attempt, failed or not, goes into the switch history.

`plan` gives a call its persona and, with memory, the stored history: read in the user's queue
turn, so a Generate sees every Switch that arrived before it, and no later one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sidecar.core.clock import Clock
from sidecar.core.errors import FieldViolation, InvalidRequestError, SidecarError, SwitchSupersededError
from sidecar.core.types import Call, Message
from sidecar.personas.matching import CommandMatcher
from sidecar.personas.registry import Persona, PersonaRegistry, ensure_allowed
from sidecar.sessions.sequencer import Abandoned, UserSequencer
from sidecar.sessions.store import ConversationKey, ConversationStore, SwitchRecord

_log = logging.getLogger("sidecar.personas")


@dataclass(frozen=True, slots=True)
class SwitchCommand:
    key: ConversationKey
    tier: str
    persona_id: str = ""  # exactly one of persona_id and command is set
    command: str = ""


@dataclass(frozen=True, slots=True)
class SwitchResult:
    persona: Persona
    previous: str  # the persona id before ("" = none)
    version: int


@dataclass(frozen=True, slots=True)
class Plan:
    """What one call gets from its conversation."""

    persona: Persona | None
    history: tuple[Message, ...] = ()
    remember: ConversationKey | None = None  # where to append the exchange after success
    epoch: int | None = None  # the conversation's epoch its snapshot was read at (None: not read)


class PersonaService:
    def __init__(
        self,
        registry: PersonaRegistry,
        store: ConversationStore,
        *,
        clock: Clock,
        memory_default: bool,
        summaries: bool = False,
    ) -> None:
        self.registry, self.store = registry, store
        self._clock, self._memory_default = clock, memory_default
        self._summaries = summaries  # rolling summaries configured: a save to check against clears
        self._matcher = CommandMatcher(registry)
        self._sequencer = UserSequencer(clock)
        self._pending: dict[ConversationKey, tuple[int, asyncio.Future[None]]] = {}  # (version, abandon)
        self._background: set[asyncio.Task[None]] = set()

    # Switch

    async def switch(self, cmd: SwitchCommand) -> SwitchResult:
        try:
            persona = self._resolve(cmd)
        except SidecarError as err:
            await self._record_failure(cmd, "", err.reason, 0)
            raise
        key = cmd.key
        version = await self.store.next_version(key)
        abandon = self._wait_newest(key, version)
        try:
            async with self._sequencer.turn(key.owner, abandon=abandon):
                applied, before = await self.store.activate(key, persona.id, version)
        except Abandoned:
            applied, before = False, ""
        except asyncio.CancelledError:
            self._spawn(self._record_failure(cmd, persona.id, "CANCELLED", version))
            raise
        finally:
            if (pending := self._pending.get(key)) is not None and pending[1] is abandon:
                del self._pending[key]
        if not applied:
            await self._record_failure(cmd, persona.id, SwitchSupersededError.reason, version)
            raise SwitchSupersededError(
                f"a newer Switch or a ClearConversation of conversation {key.conversation!r} came "
                "before this one was applied",
                metadata={"conversationId": key.conversation, "version": str(version)},
            )
        record = SwitchRecord(
            key.conversation, before, persona.id, cmd.command, True, "", self._clock.wall(), version
        )
        try:
            await self.store.record_switch(key.tenant, key.user, record)
        except SidecarError as err:  # applied: only its line in the switch history is lost
            _log.warning("switch not recorded", extra={"reason": err.reason, "version": version})
        return SwitchResult(persona, before, version)

    def _wait_newest(self, key: ConversationKey, version: int) -> asyncio.Future[None]:
        """This Switch's `abandon` future: a newer Switch cancels an older one still waiting. Versions
        decide, not the order in which the store's answers came back: with several store connections
        an older Switch's version can arrive after a newer one's, and must then give way at once."""
        abandon: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pending = self._pending.get(key)
        if pending is not None and not pending[1].done() and pending[0] > version:
            abandon.set_result(None)  # a newer Switch is already waiting: this one is superseded
            return abandon
        if pending is not None and not pending[1].done():
            pending[1].set_result(None)
        self._pending[key] = (version, abandon)
        return abandon

    def _resolve(self, cmd: SwitchCommand) -> Persona:
        if cmd.persona_id:
            return self.registry.require(cmd.persona_id, cmd.tier)
        persona = self._matcher.match(cmd.command, tier=cmd.tier)
        ensure_allowed(persona, cmd.tier)
        return persona

    async def _record_failure(self, cmd: SwitchCommand, target: str, reason: str, version: int) -> None:
        """Record a failed attempt; a store outage here must not hide the attempt's own error."""
        key = cmd.key
        try:
            current = (await self.store.snapshot(key, history=False)).persona_id
            record = SwitchRecord(
                key.conversation, current, target, cmd.command, False, reason, self._clock.wall(), version
            )
            await self.store.record_switch(key.tenant, key.user, record)
        except SidecarError as err:
            _log.warning("switch attempt not recorded", extra={"reason": err.reason, "attempt": reason})

    def _spawn(self, work: object) -> None:
        """Finish a record after the caller went away (the switch history must still show it)."""
        assert asyncio.iscoroutine(work)
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def switches(self, tenant: str, user: str, conversation: str, limit: int) -> list[SwitchRecord]:
        return await self.store.switches(tenant, user, conversation, limit)

    async def clear(self, key: ConversationKey) -> bool:
        async with self._sequencer.turn(key.owner):
            return await self.store.clear(key)

    # Calls

    def involved(self, call: Call) -> bool:
        """False when this layer has nothing to do for the call (no personas, no memory)."""
        return bool(
            len(self.registry)
            or call.persona_id
            or call.memory
            or (self._memory_default and call.conversation_id and call.memory is None)
        )

    async def plan(self, call: Call) -> Plan:
        memory = self._memory_default if call.memory is None else call.memory
        key = None
        if call.conversation_id and call.tenant_id and call.user_id:
            key = ConversationKey(call.tenant_id, call.user_id, call.conversation_id)
        elif call.memory:
            field = "conversation_id" if not call.conversation_id else "user_id"
            raise InvalidRequestError(
                [FieldViolation(field, "memory needs a tenant_id, user_id and conversation_id")]
            )
        explicit = self.registry.require(call.persona_id, call.tier) if call.persona_id else None
        if key is None:
            return Plan(explicit or self._default(call.tier))
        if explicit is not None and not memory:  # neither its persona nor its history is read
            return Plan(explicit, epoch=await self._epoch(key, call) if self._summaries else None)
        async with self._sequencer.turn(key.owner):
            snap = await self.store.snapshot(key, history=memory)
        persona = explicit or self._active(snap.persona_id, call.tier)
        return Plan(persona, snap.history, key if memory else None, snap.epoch)

    async def _epoch(self, key: ConversationKey, call: Call) -> int | None:
        """The conversation's epoch for a call that reads nothing else of it: the rolling summary it
        may save is refused after a clear all the same. Needing no Switch's order, it takes no turn
        in the user's queue; a store that fails leaves the save unchecked (None) rather than failing
        a call that needs nothing else from the store (its summary's save then fails the same way)."""
        try:
            return (await self.store.snapshot(key, history=False)).epoch
        except SidecarError as err:
            _log.warning(
                "conversation epoch not read", extra={"request_id": call.request_id, "reason": err.reason}
            )
            return None

    def _active(self, persona_id: str, tier: str) -> Persona | None:
        if not persona_id:
            return self._default(tier)
        persona = self.registry.get(persona_id)
        if persona is None:  # removed from the configuration since the Switch
            _log.warning("active persona no longer configured", extra={"persona": persona_id})
            return self._default(tier)
        ensure_allowed(persona, tier)
        return persona

    def _default(self, tier: str) -> Persona | None:
        persona = self.registry.get(self.registry.default) if self.registry.default else None
        return persona if persona is not None and persona.allows(tier) else None

    async def remember(
        self, key: ConversationKey, messages: tuple[Message, ...], *, epoch: int | None = None
    ) -> bool:
        """Append to the history; with `epoch` (the plan's), not when the conversation was cleared
        since the call read it (False): a clear wins over the turns in flight."""
        return await self.store.append(key, messages, epoch=epoch)

    async def aclose(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.store.aclose()
