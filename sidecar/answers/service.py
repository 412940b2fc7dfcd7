"""The answer policy at work: one message's decision (signals from the local embedding of the message
against the agent's canonical answers), canonical answers written in advance (seeds), and the offer an
escalation starts as. The escalation lifecycle after the offer is in sidecar/answers/queue.py."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sidecar.answers.decide import Escalate, classify, escalation, gate, measure, offer_text, refuse
from sidecar.answers.errors import RECOVERABLE, EmbeddingModelError
from sidecar.answers.model import (
    MAX_QUESTION_CHARS,
    CanonicalAnswer,
    Decision,
    Escalation,
    Path,
    State,
    clipped,
    kept_context,
    new_id,
)
from sidecar.answers.store import AnswerStore, Limits, OfferCaps
from sidecar.answers.windows import buckets, next_window
from sidecar.config.answers import LAYERS, AgentPolicy, AnswersPolicy, CanonicalSeed
from sidecar.core.clock import Clock, Deadline

_log = logging.getLogger("sidecar.answers")
T = TypeVar("T")

EmbedText = Callable[[str, str, str, Deadline], Awaitable[Any]]
"""(tenant, embedding route, text, deadline) -> the text's embedding: `.vector` (a unit-length float32
numpy array) and `.model` (the identity of the model that made it; embeddings.service.PromptVector)."""


def _ignore(*_: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class AnswerObserver:
    on_decision: Callable[[str, Decision], None] = _ignore  # (agent, decision)
    on_transition: Callable[[str, Escalation], None] = _ignore  # (agent, escalation in its new state)
    on_error: Callable[[str], None] = _ignore  # the operation that failed: signals, store or sweep
    on_backlog: Callable[[str, int], None] = _ignore  # (agent, escalations in QUEUED): at each sweep
    on_context: Callable[[str, str], None] = _ignore  # (agent, how its context summary went)
    on_reload: Callable[[str], None] = _ignore  # a reload of the policy: applied or refused


@dataclass(frozen=True, slots=True)
class Message:
    """One message to an agent, with what the decision needs to know about its caller."""

    tenant: str
    user: str
    conversation: str
    agent: str
    tier: str
    layer: str  # the caller's relationship layer: public, friends or intimate
    text: str
    context: tuple[tuple[str, str], ...]  # (role, text) of the messages before it
    deadline: Deadline
    policy: AgentPolicy  # the agent's policy, taken once for the call (a reload swaps it, never mutates)


def visible(layer: str) -> tuple[str, ...]:
    """The layers a caller of `layer` may be served from: its own and those before it."""
    return LAYERS[: LAYERS.index(layer) + 1]


def limits_at(policy: AgentPolicy, wall: float) -> Limits:
    day, week = buckets(policy, wall)
    return Limits(day, week, policy.escalations_per_day, policy.escalations_per_week)


class AnswerService:
    def __init__(
        self,
        policy: AnswersPolicy,
        store: AnswerStore,
        *,
        embed: EmbedText,
        embedding_route: str,
        model: str,
        clock: Clock,
        names: Mapping[str, str],
        observer: AnswerObserver | None = None,
    ) -> None:
        """`model`: the identity of the embedding route's first model, the one every vector of the
        canonical answers is made with."""
        self.policy, self.store, self._embed, self._route = policy, store, embed, embedding_route
        self._model = model
        self.clock, self._names = clock, names
        self.observer = observer or AnswerObserver()
        self._finishing: set[asyncio.Task[Any]] = set()  # changes that outlive a cancelled caller

    async def finished(self, work: Coroutine[Any, Any, T]) -> T:
        """`work` run to its end even when its caller is cancelled meanwhile: a change begun in the
        store (several writes) is completed or undone, never left half made. `drain` waits for it."""
        task = asyncio.ensure_future(work)
        self._finishing.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._finishing.discard(task)
        if not task.cancelled():
            task.exception()  # taken here too: the caller that would have seen it may have left

    async def drain(self) -> None:
        """Wait for the changes still being finished for callers that left."""
        while self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)

    async def aclose(self) -> None:
        """Finish what callers left half done, then close the store."""
        await self.drain()
        await self.store.aclose()

    def agent(self, agent: str) -> AgentPolicy | None:
        return self.policy.agents.get(agent)

    def replace_agents(self, agents: Mapping[str, AgentPolicy]) -> None:
        """Put these per-agent policies in force (a reload, checked before: sidecar/answers/reload.py).
        One swap of the immutable policy: a call or a sweep in progress keeps the one it read."""
        self.policy = self.policy.model_copy(update={"agents": dict(agents)})

    def name(self, agent: str) -> str:
        return self._names.get(agent, agent)

    async def vector(self, tenant: str, text: str, deadline: Deadline) -> Any:
        """The text's vector by the route's first model. Another model's (the route fell back while
        the first fails) is EmbeddingModelError: compared with the stored vectors it would mean
        nothing, and stored with them it would break every later search of the agent."""
        embedded = await self._embed(tenant, self._route, text, deadline)
        if embedded.model != self._model:
            raise EmbeddingModelError(
                f"embedding route {self._route!r} answered with {embedded.model!r}, not {self._model!r}"
            )
        return embedded.vector

    async def decide(self, m: Message) -> Decision:
        """The path of one message; never calls a model. A failing embedding or store degrades to
        the model's answer (A, reason signals_unavailable), after the tier and topic checks."""
        policy = m.policy
        decision = gate(policy, m.text, m.tier)
        if decision is None:
            try:
                decision = await self._measured(m, policy)
            except RECOVERABLE as exc:
                _log.warning("answer policy: signals unavailable: %r", exc)
                self.observer.on_error("signals")
                decision = Decision(Path.AUTO_ANSWER, "signals_unavailable")
        self.observer.on_decision(m.agent, decision)
        try:
            await self.store.count_path(m.tenant, m.agent, decision.path.value, m.user)
        except RECOVERABLE as exc:
            _log.warning("answer policy: path not counted: %r", exc)
            self.observer.on_error("store")
        return decision

    async def _measured(self, m: Message, policy: AgentPolicy) -> Decision:
        vector = await self.vector(m.tenant, m.text, m.deadline)
        found = await self.store.nearest(m.tenant, m.agent, visible(m.layer), vector)
        signals = measure(m.text, found[1] if found is not None else 0.0)
        choice = classify(policy, signals, found[0] if found is not None else None)
        if isinstance(choice, Escalate):
            return await self._escalate(m, policy, choice)
        if choice.path is Path.CANONICAL:
            await self.store.reused(m.tenant, m.agent, choice.canonical_id)
        return choice

    async def _escalate(self, m: Message, policy: AgentPolicy, want: Escalate) -> Decision:
        if not m.user:  # an offer is accepted by the user it was made to: this one never could be
            return refuse(policy, "escalations_disabled", want.signals)
        now = self.clock.wall()
        day, week = await self.store.used(m.tenant, m.agent, limits_at(policy, now))
        over = (policy.escalations_per_day is not None and day >= policy.escalations_per_day) or (
            policy.escalations_per_week is not None and week >= policy.escalations_per_week
        )
        decision = escalation(policy, want, over_limit=over, available_from=next_window(policy, now), now=now)
        if decision.path is not Path.OFFER_ESCALATION:
            return decision
        offer = Escalation(
            id=new_id("esc_"),
            tenant=m.tenant,
            agent=m.agent,
            user=m.user,
            conversation=m.conversation,
            question=clipped(m.text, MAX_QUESTION_CHARS),
            layer=m.layer,
            state=State.OFFERED,
            created_at=now,
            offer_expires_at=now + policy.offer_expiry_seconds,
            context=kept_context(m.context, policy.context_messages),
            reason=want.reason,
            tier=m.tier,
        )
        caps = OfferCaps(policy.max_open_offers_per_user, policy.max_open_offers)
        if not await self.store.offer(offer, caps):  # offers cost the user nothing: their number is bounded
            return refuse(policy, "offer_limit", want.signals)
        self.observer.on_transition(m.agent, offer)
        return replace(
            decision,
            text=offer_text(self.name(m.agent), want.reason),
            escalation_id=offer.id,
            offer_expires_at=offer.offer_expires_at,
        )

    async def seed(self, before: Mapping[str, AgentPolicy] | None = None) -> int:
        """Store every configured canonical answer for every seed tenant (ids derived from the content,
        so a restart adds nothing twice); after a reload only those `before` did not have. The
        count stored."""
        n = 0
        deadline = Deadline.after(300.0, self.clock)
        for agent, policy in self.policy.agents.items():
            known = set(before[agent].seeds()) if before is not None and agent in before else set()
            for tenant in self.policy.seed_tenants:
                for answer in self._seeds(tenant, agent, [s for s in policy.seeds() if s not in known]):
                    await self.store.add_canonical(
                        answer, await self.vector(tenant, answer.question, deadline)
                    )
                    n += 1
        return n

    async def restore_seeds(self) -> int:
        """Store the configured canonical answers again where the store lost them (a Redis restarted
        without persistence, flushed, failed over to an empty replica; or seeding failed at start):
        one read per agent and seed tenant (is its first seed there?), the embeddings only for those
        lost. The count stored."""
        n = 0
        deadline = Deadline.after(300.0, self.clock)
        for agent, policy in self.policy.agents.items():
            for tenant in self.policy.seed_tenants:
                answers = self._seeds(tenant, agent, policy.seeds())
                if not answers or await self.store.has_canonical(tenant, agent, answers[0].id):
                    continue
                for answer in answers:
                    await self.store.add_canonical(
                        answer, await self.vector(tenant, answer.question, deadline)
                    )
                    n += 1
        return n

    def _seeds(self, tenant: str, agent: str, seeds: Sequence[CanonicalSeed]) -> list[CanonicalAnswer]:
        """The canonical answers of seeds, ids derived from their content."""
        out = []
        for s in seeds:
            digest = hashlib.blake2b(
                "\x00".join((tenant, agent, s.layer, s.question, s.answer)).encode(), digest_size=12
            ).hexdigest()
            now = self.clock.wall()
            out.append(CanonicalAnswer("can_" + digest, tenant, agent, s.layer, s.question, s.answer, now))
        return out
