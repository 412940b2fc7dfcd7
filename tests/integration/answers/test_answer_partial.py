"""A creator's answer is two store writes: the escalation's compare-and-set (QUEUED -> ANSWERED) and
the canonical answer. When the second fails (the store blinks between them), the call says
ANSWER_STORE_UNAVAILABLE, which promises that nothing was changed: the escalation must be QUEUED
again, so the creator's retry succeeds (it got ESCALATION_WRONG_STATE, the answer was never made
canonical and never reached the user's conversation)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sidecar.answers.model import CanonicalAnswer, State
from sidecar.answers.queue import EscalationQueue
from sidecar.answers.service import AnswerObserver, AnswerService
from sidecar.answers.sqlite_store import SqliteAnswerStore
from sidecar.config.answers import AgentPolicy, AnswersPolicy
from sidecar.core.clock import Deadline, FakeClock
from sidecar.embeddings.service import PromptVector
from sidecar.stores.errors import StoreUnavailableError
from tests.integration.answers.test_store import NOW, offer

pytestmark = pytest.mark.integration


class Blinking(SqliteAnswerStore):
    """Fails the next canonical write once."""

    blink = False

    async def add_canonical(self, answer: CanonicalAnswer, vector: Any) -> None:
        if self.blink:
            self.blink = False
            raise StoreUnavailableError("the store blinked")
        await super().add_canonical(answer, vector)


async def embed(*_: Any) -> PromptVector:
    return PromptVector(np.array([1.0, 0.0], dtype=np.float32), "m")


async def test_a_failed_canonical_write_leaves_the_escalation_queued(tmp_path: Path) -> None:
    clock = FakeClock(start=0.0)  # wall time NOW
    store = Blinking(str(tmp_path / "answers.db"))
    policy = AnswersPolicy(agents={"maya": AgentPolicy()})
    service = AnswerService(
        policy, store, embed=embed, embedding_route="local", model="m", clock=clock, names={}
    )
    queue = EscalationQueue(service)
    e = offer("esc_partial")
    await store.put(replace(e, state=State.QUEUED, queued_at=NOW, expires_at=NOW + 3600))
    deadline = Deadline.after(10, clock)
    store.blink = True
    with pytest.raises(StoreUnavailableError):
        await queue.answer("acme", "maya", "esc_partial", "Strong flour.", "", deadline)
    assert (await store.get("acme", "esc_partial")).state is State.QUEUED  # type: ignore[union-attr]
    assert await store.canonical("acme", "maya") == []
    done, canonical = await queue.answer("acme", "maya", "esc_partial", "Strong flour.", "", deadline)
    assert done.state is State.ANSWERED and [c.id for c in await store.canonical("acme", "maya")] == [
        canonical.id
    ]
    await store.aclose()


class Slow(SqliteAnswerStore):
    """Holds the canonical write until released: the creator's call can be cancelled meanwhile."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.writing, self.go = asyncio.Event(), asyncio.Event()

    async def add_canonical(self, answer: CanonicalAnswer, vector: Any) -> None:
        self.writing.set()
        await self.go.wait()
        await super().add_canonical(answer, vector)


async def test_a_creator_cancelled_between_the_two_writes_still_gets_the_answer_made_canonical(
    tmp_path: Path,
) -> None:
    """The creator's deadline or a dropped connection cancels AnswerEscalation after the escalation
    moved to ANSWERED and before its canonical answer was written: it stayed ANSWERED (a retry gets
    ESCALATION_WRONG_STATE) with no canonical answer, and the user's conversation never got it."""
    clock = FakeClock(start=0.0)
    store = Slow(str(tmp_path / "answers.db"))
    service = AnswerService(
        AnswersPolicy(agents={"maya": AgentPolicy()}), store, embed=embed, embedding_route="local",
        model="m", clock=clock, names={},
    )  # fmt: skip
    remembered: list[str] = []

    async def remember(e: Any) -> None:
        remembered.append(e.answer)

    queue = EscalationQueue(service, remember=remember)
    e = replace(offer("esc_cancelled"), conversation="c1")
    await store.put(replace(e, state=State.QUEUED, queued_at=NOW, expires_at=NOW + 3600))
    call = asyncio.ensure_future(
        queue.answer("acme", "maya", "esc_cancelled", "Strong flour.", "", Deadline.after(10, clock))
    )
    await store.writing.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    store.go.set()
    await service.drain()  # the answer's last steps, finished after the caller left
    done = await store.get("acme", "esc_cancelled")
    assert done is not None and done.state is State.ANSWERED
    [canonical] = await store.canonical("acme", "maya")
    assert canonical.id == done.canonical_id and canonical.answer == "Strong flour."
    assert remembered == ["Strong flour."]
    await store.aclose()


class Stalling(SqliteAnswerStore):
    """Holds the reply of an acceptance or a decline after the store made it: the caller can be
    cancelled between the store's step and what follows it."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.stepped, self.go = asyncio.Event(), asyncio.Event()

    async def _held(self, result: Any) -> Any:
        self.stepped.set()
        await self.go.wait()
        return result

    async def accept(self, expect: State, new: Any, limits: Any) -> Any:
        return await self._held(await super().accept(expect, new, limits))

    async def replace(self, expect: State, new: Any) -> bool:
        done: bool = await super().replace(expect, new)
        return await self._held(done) if new.state is State.DECLINED else done


@pytest.mark.parametrize("step", ["accept", "decline"])
async def test_a_transition_whose_caller_left_after_the_store_step_is_counted(
    tmp_path: Path, step: str
) -> None:
    """The acceptance or decline was made in the store, then the caller was cancelled (its deadline,
    a dropped connection) before the transition was reported: sidecar_answer_escalations_total
    missed a queued or declined escalation the store holds."""
    clock = FakeClock(start=0.0)
    store = Stalling(str(tmp_path / "answers.db"))
    moved: list[State] = []
    seen = AnswerObserver(on_transition=lambda _agent, e: moved.append(e.state))
    service = AnswerService(
        AnswersPolicy(agents={"maya": AgentPolicy()}), store, embed=embed, embedding_route="local",
        model="m", clock=clock, names={}, observer=seen,
    )  # fmt: skip
    queue = EscalationQueue(service)
    e = offer("esc_stepped01")
    if step == "accept":
        await store.put(e)
        call = asyncio.ensure_future(queue.accept("acme", "ann", e.id, Deadline.after(10, clock)))
    else:
        await store.put(replace(e, state=State.QUEUED, queued_at=NOW, expires_at=NOW + 3600))
        call = asyncio.ensure_future(queue.decline("acme", "maya", e.id, "not now"))
    await store.stepped.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    store.go.set()
    await service.drain()
    stored = await store.get("acme", e.id)
    assert stored is not None
    assert moved == [stored.state] == [State.QUEUED if step == "accept" else State.DECLINED]
    await store.aclose()
