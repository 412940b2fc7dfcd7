"""The expiry sweeper: a task started and stopped with the server that, every `sweep_interval_seconds`
of the injected clock, stores the configured canonical answers again if the store lost them (a Redis
restarted without persistence or flushed: they are seeded at start only), expires the escalations
whose time ran out (of every tenant and agent, at most `sweep_batch` a sweep), deletes those closed
longer than `closed_retention_days` (at most `sweep_batch` too) and refreshes the backlog gauge, so
the expiry counter and the backlog move without anyone reading the escalations.

Each expiry is the store's compare-and-set (`AnswerStore.replace`): of two sidecars sweeping one
Redis, or a sweep racing a creator's answer, exactly one move succeeds; only the sidecar whose move
succeeded counts it. A failing store is logged and counted (`sidecar_answer_errors_total{op="sweep"}`);
the next sweep tries again.
"""

from __future__ import annotations

import asyncio
import logging

from sidecar.answers.errors import RECOVERABLE
from sidecar.answers.service import AnswerService
from sidecar.core.tasks import cancel_and_wait

_log = logging.getLogger("sidecar.answers")


class ExpirySweeper:
    def __init__(self, answers: AnswerService, *, interval: float, batch: int) -> None:
        self._a, self._interval, self._batch = answers, interval, batch
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0  # sweeps finished by the task, failed ones included

    async def sweep(self) -> int:
        """One sweep: the escalations expired by this sidecar (others may have moved some first)."""
        store, observer = self._a.store, self._a.observer
        try:  # a store or embedding model failing here must not hold up the expiries
            restored = await self._a.restore_seeds()
        except RECOVERABLE as exc:
            _log.warning("canonical answers not checked: %r", exc)
            observer.on_error("sweep")
            restored = 0
        if restored:
            _log.warning("canonical answers lost by the store were stored again", extra={"answers": restored})
        now = self._a.clock.wall()
        expired = 0
        for e in await store.due(now, self._batch):
            gone = e.expired(now)
            if await store.replace(e.state, gone):
                observer.on_transition(e.agent, gone)
                expired += 1
        retention = self._a.policy.closed_retention_days * 86_400
        forgotten = await store.forget(now - retention, self._batch)
        if forgotten:
            _log.info("closed escalations deleted after the retention", extra={"escalations": forgotten})
        agents = sorted(self._a.policy.agents)  # the policy now in force (a reload may change it)
        for agent, queued in (await store.backlog(agents)).items():
            observer.on_backlog(agent, queued)
        return expired

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="escalation-sweeper")

    async def stop(self) -> None:
        """Cancel the task and wait for it (a sweep in progress is abandoned between two moves)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            await self._a.clock.sleep(self._interval)
            try:
                n = await self.sweep()
            except RECOVERABLE as exc:
                _log.warning("escalation sweep failed: %r", exc)
                self._a.observer.on_error("sweep")
                n = 0
            except Exception:  # unforeseen (a bug): logged whole and counted; the task must go on,
                _log.exception("escalation sweep failed")  # or nothing expires again until a restart
                self._a.observer.on_error("sweep")
                n = 0
            self.rounds += 1
            if n:
                _log.info("escalations expired", extra={"escalations": n})
