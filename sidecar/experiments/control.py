"""Promote or stop a variant without a restart: a reloaded policy's experiments replace the ones in
force, and every change (status, promoted variant, weights, a new or removed experiment) is written
to the audit trail (the ledger's `experiment_audit` table when the ledger is on, and the log)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sidecar.config.experiments import ExperimentConfig
from sidecar.core.clock import Clock
from sidecar.experiments.book import ExperimentBook
from sidecar.ledger.record import AuditEntry, LedgerStore

_log = logging.getLogger("sidecar.experiments")


def changes(
    old: Mapping[str, ExperimentConfig], new: Mapping[str, ExperimentConfig]
) -> list[tuple[str, str]]:
    """(experiment, change) for every difference that matters to who is served by what."""
    found: list[tuple[str, str]] = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            found.append((name, "added" if a is None else "removed"))
            continue
        if a.status != b.status:
            found.append((name, f"status {a.status} -> {b.status}"))
        if a.promoted != b.promoted:
            found.append((name, f"promoted {a.promoted or '-'} -> {b.promoted or '-'}"))
        if a.variants != b.variants:
            found.append((name, "variants changed"))
        if (a.route, a.control, a.gates, a.min_samples, a.alpha) != (
            b.route,
            b.control,
            b.gates,
            b.min_samples,
            b.alpha,
        ):
            found.append((name, "settings changed"))
    return found


def in_force(exp: ExperimentConfig) -> str:
    """One experiment's state as the audit trail records it at start."""
    weights = ",".join(f"{name}={v.weight:g}" for name, v in exp.variants.items())
    return f"in force at start: status {exp.status}, promoted {exp.promoted or '-'}, weights {weights}"


class ExperimentControl:
    def __init__(
        self,
        book: ExperimentBook,
        current: Mapping[str, ExperimentConfig],
        *,
        clock: Clock,
        ledger: LedgerStore | None,
    ) -> None:
        self.book, self._current, self._clock, self._ledger = book, dict(current), clock, ledger

    async def apply(
        self, experiments: Mapping[str, ExperimentConfig], prompts: Mapping[str, str], *, source: str
    ) -> list[AuditEntry]:
        """Put `experiments` in force and record what changed; returns the audit entries."""
        now = self._clock.wall()
        entries = [
            AuditEntry(now, name, change, source) for name, change in changes(self._current, experiments)
        ]
        self.book.replace(experiments, prompts)
        self._current = dict(experiments)
        for e in entries:
            _log.warning(
                "experiment changed", extra={"experiment": e.experiment, "change": e.change, "source": source}
            )
        await self._audit(entries)
        return entries

    async def started(self) -> list[AuditEntry]:
        """Record the experiments in force as the sidecar starts: a change made by editing the
        config and restarting (on Kubernetes, the usual way) left no trace in the audit trail, which
        recorded SIGHUP reloads only."""
        now = self._clock.wall()
        entries = [
            AuditEntry(now, name, in_force(exp), "start") for name, exp in sorted(self._current.items())
        ]
        for e in entries:
            _log.info("experiment in force", extra={"experiment": e.experiment, "change": e.change})
        await self._audit(entries)
        return entries

    async def _audit(self, entries: list[AuditEntry]) -> None:
        if entries and self._ledger is not None:
            try:
                await self._ledger.audit(entries)
            except Exception:
                _log.exception("the experiment audit could not be written to the ledger")
