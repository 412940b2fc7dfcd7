"""The escalation lifecycle after the offer: the user accepts (OFFERED -> QUEUED, counted against the
agent's day and week limits in one atomic store step), the creator lists, answers (-> ANSWERED: the
answer becomes a canonical answer and is appended to the user's conversation) or declines
(-> DECLINED). An offer or a queued escalation whose time ran out (the injected clock's wall time) is
EXPIRED by the background sweep (sidecar/answers/sweeper.py) or, if read before it, when it is read.
Every refused action changes nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from typing import Any

from sidecar.answers.context import EscalationContextWriter
from sidecar.answers.decide import gate
from sidecar.answers.errors import (
    RECOVERABLE,
    AgentNotFoundError,
    EscalationLimitError,
    EscalationNotAllowedError,
    EscalationNotFoundError,
    EscalationStateError,
)
from sidecar.answers.model import CanonicalAnswer, Escalation, State, new_id
from sidecar.answers.service import AnswerService, limits_at
from sidecar.answers.store import Accepted, AnswerStore
from sidecar.config.answers import AgentPolicy
from sidecar.core.clock import Deadline
from sidecar.core.errors import SidecarError

_log = logging.getLogger("sidecar.answers")

Remember = Callable[[Escalation], Awaitable[None]]
"""Append a creator's answer to the escalation's conversation (the persona service's memory)."""

FIELD = "escalation_id"


class EscalationQueue:
    def __init__(
        self,
        answers: AnswerService,
        remember: Remember | None = None,
        context: EscalationContextWriter | None = None,
    ) -> None:
        """`context`: writes a model's summary of an accepted escalation's last messages, for the
        agents whose policy asks for one (sidecar/answers/context.py)."""
        self._a, self._remember, self._context = answers, remember, context

    def with_context(self, context: EscalationContextWriter) -> EscalationQueue:
        return EscalationQueue(self._a, self._remember, context)

    @property
    def store(self) -> AnswerStore:
        return self._a.store

    def policy(self, agent: str, field: str = "agent_id") -> AgentPolicy:
        policy = self._a.agent(agent)
        if policy is None:
            raise AgentNotFoundError(field, f"agent {agent!r} has no answer policy")
        return policy

    async def accept(
        self, tenant: str, user: str, escalation_id: str, deadline: Deadline | None = None
    ) -> Escalation:
        """The user's acceptance of an offer made to them (`deadline`: the caller's, which bounds a
        context summary too)."""
        e = await self._current(tenant, escalation_id)
        if e.user != user:
            raise EscalationNotFoundError(FIELD, f"no escalation {escalation_id!r} was offered to this user")
        self._expect(e, State.OFFERED, "accepted")
        policy = self.policy(e.agent, FIELD)  # a reload may have removed it; the request names no agent
        if not policy.escalations:  # turned off since the offer (a reload): the creator takes none now
            raise EscalationLimitError(FIELD, "the creator is not taking escalations now")
        self._allowed(e, policy)
        now = self._a.clock.wall()
        queued = replace(
            e, state=State.QUEUED, queued_at=now, expires_at=now + policy.escalation_expiry_seconds
        )
        await self._a.finished(self._accepted(queued, policy, now))
        return await self._summarized(queued, policy, deadline)

    @staticmethod
    def _allowed(e: Escalation, policy: AgentPolicy) -> None:
        """The policy in force still takes the offer's message: a reload since the offer may have
        taken the user's tier out of `allowed_tiers` or blocked its topic (steps 1 and 2 again; an
        offer stored before offers kept their tier is not judged by it)."""
        judged = policy if e.tier else policy.model_copy(update={"allowed_tiers": []})
        refused = gate(judged, e.question, e.tier)
        if refused is None:
            return
        what = "your plan" if refused.reason == "tier_not_allowed" else "this topic"
        raise EscalationNotAllowedError(
            FIELD,
            f"the creator no longer takes messages from {what} ({refused.reason}): not accepted",
        )

    async def _accepted(self, queued: Escalation, policy: AgentPolicy, now: float) -> None:
        """The store's atomic acceptance, then its report: both even when the user's call is
        cancelled between them (else a queued escalation the metrics never saw)."""
        result = await self._a.store.accept(State.OFFERED, queued, limits_at(policy, now))
        if result is Accepted.DAY_LIMIT or result is Accepted.WEEK_LIMIT:
            period = "today" if result is Accepted.DAY_LIMIT else "this week"
            raise EscalationLimitError(FIELD, f"the creator takes no more escalations {period}")
        if result is not Accepted.OK:
            raise EscalationStateError(FIELD, "the offer was accepted or closed meanwhile")
        self._a.observer.on_transition(queued.agent, queued)

    async def _summarized(
        self, queued: Escalation, policy: AgentPolicy, deadline: Deadline | None
    ) -> Escalation:
        """The queued escalation with a model's summary as its context, when the agent asks for one
        and it could be made; else as it was queued (the verbatim messages)."""
        if policy.context_summary is None or self._context is None:
            return queued
        written = await self._context.write(queued, policy.context_summary, deadline)
        if written is queued or not await self._a.store.replace(State.QUEUED, written):
            return queued  # kept verbatim, or answered or expired meanwhile
        return written

    async def list(
        self, tenant: str, agent: str, states: Collection[State], user: str = ""
    ) -> list[Escalation]:
        """The agent's escalations in `states` (every state when empty), oldest first; due ones are
        expired on the way."""
        self.policy(agent)
        now = self._a.clock.wall()
        out: list[Escalation] = []
        for e in await self._a.store.escalations(tenant, agent):
            if e.due(now):
                e = await self._expire(e, now)
            # an offer never accepted is not the user's message to the creator: not found by user
            if (not states or e.state in states) and (not user or (e.user == user and e.sent)):
                out.append(e)
        return out

    async def get(self, tenant: str, agent: str, escalation_id: str) -> Escalation:
        e = await self._current(tenant, escalation_id)
        if e.agent != agent:
            raise EscalationNotFoundError(FIELD, f"agent {agent!r} has no escalation {escalation_id!r}")
        return e

    async def answer(
        self, tenant: str, agent: str, escalation_id: str, text: str, layer: str, deadline: Deadline
    ) -> tuple[Escalation, CanonicalAnswer]:
        """QUEUED -> ANSWERED; the answer becomes a canonical answer of the escalation's layer (or
        `layer`) and reaches the conversation."""
        e = await self.get(tenant, agent, escalation_id)
        self._expect(e, State.QUEUED, "answered")
        vector = await self._a.vector(
            tenant, e.question, deadline
        )  # before any change: a failure changes nothing
        now = self._a.clock.wall()
        canonical = CanonicalAnswer(
            new_id("can_"), tenant, agent, layer or e.layer, e.question, text, now, source="escalation"
        )
        done = replace(e, state=State.ANSWERED, closed_at=now, answer=text, canonical_id=canonical.id)
        await self._a.finished(self._answered(done, e, canonical, vector))
        return done, canonical

    async def _answered(
        self, done: Escalation, before: Escalation, canonical: CanonicalAnswer, vector: Any
    ) -> None:
        """QUEUED -> ANSWERED, then the canonical answer and the conversation: run to the end even
        when the creator's call is cancelled between the writes (else ANSWERED, and nothing else)."""
        if not await self._a.store.replace(State.QUEUED, done):
            raise EscalationStateError(FIELD, "the escalation was answered or closed meanwhile")
        try:
            await self._a.store.add_canonical(canonical, vector)
        except RECOVERABLE:  # the call fails, which promises nothing changed: the escalation waits again
            await self._undo(done, before)
            raise
        self._a.observer.on_transition(done.agent, done)
        if self._remember is not None and done.user and done.conversation:
            try:
                await self._remember(done)
            except SidecarError as err:  # the answer is stored and canonical; only the memory is lost
                _log.warning("creator answer not added to the conversation", extra={"reason": err.reason})

    async def _undo(self, done: Escalation, before: Escalation) -> None:
        """Put `before` back in place of `done` (compare and set), when the step after it failed."""
        try:
            if await self._a.store.replace(done.state, before):
                return
        except RECOVERABLE as exc:
            _log.error("escalation left %s after a failed step: %r", done.state.value, exc)
            return
        _log.error("escalation moved on before it could be put back", extra={"escalation": done.id})

    async def decline(self, tenant: str, agent: str, escalation_id: str, reason: str) -> Escalation:
        e = await self.get(tenant, agent, escalation_id)
        self._expect(e, State.QUEUED, "declined")
        done = replace(e, state=State.DECLINED, closed_at=self._a.clock.wall(), decline_reason=reason)
        await self._a.finished(self._declined(done))
        return done

    async def _declined(self, done: Escalation) -> None:
        """QUEUED -> DECLINED and its report, even when the creator's call is cancelled between."""
        if not await self._a.store.replace(State.QUEUED, done):
            raise EscalationStateError(FIELD, "the escalation was answered or closed meanwhile")
        self._a.observer.on_transition(done.agent, done)

    async def _current(self, tenant: str, escalation_id: str) -> Escalation:
        """The stored escalation of this tenant, expired first when due."""
        e = await self._a.store.get(tenant, escalation_id)
        if e is None:
            raise EscalationNotFoundError(FIELD, f"no escalation {escalation_id!r}")
        now = self._a.clock.wall()
        return await self._expire(e, now) if e.due(now) else e

    async def _expire(self, e: Escalation, now: float) -> Escalation:
        gone = e.expired(now)
        if await self._a.store.replace(e.state, gone):
            self._a.observer.on_transition(e.agent, gone)
            return gone
        current = await self._a.store.get(e.tenant, e.id)  # another sidecar moved it first
        return current if current is not None else gone

    @staticmethod
    def _expect(e: Escalation, state: State, action: str) -> None:
        if e.state is not state:
            raise EscalationStateError(
                FIELD, f"escalation {e.id!r} is {e.state.value}: only a {state.value} one can be {action}"
            )
