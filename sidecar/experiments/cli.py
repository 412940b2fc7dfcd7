"""`sidecar experiments report|feedback`: read (and annotate) the usage ledger a config names."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from sidecar.config.load import ConfigError, load_config, process_environ
from sidecar.core.clock import SystemClock
from sidecar.core.errors import SidecarError
from sidecar.ledger.record import FeedbackStatus, LedgerStore
from sidecar.ledger.stores import build_store

DAY = 86_400.0


def register(sub: Any) -> None:
    """Add the `experiments` command to the CLI's subparsers."""
    exp = sub.add_parser("experiments", help="experiment reports and feedback, from the usage ledger")
    actions = exp.add_subparsers(required=True, metavar="ACTION")
    report = actions.add_parser("report", help="per variant statistics, tests and a verdict")
    report.add_argument("experiment")
    report.add_argument("--config", type=Path, required=True, help="the sidecar's YAML file")
    report.add_argument("--days", type=float, default=7.0, help="the last N days (default 7)")
    report.add_argument("--start", type=float, default=None, help="unix seconds (overrides --days)")
    report.add_argument("--end", type=float, default=None, help="unix seconds (default now)")
    report.set_defaults(handler=_report)
    fb = actions.add_parser("feedback", help="store a score for a finished call")
    fb.add_argument("--config", type=Path, required=True)
    fb.add_argument("--tenant", required=True)
    fb.add_argument("--request-id", required=True)
    fb.add_argument("--score", type=float, required=True)
    fb.add_argument("--label", default="")
    fb.set_defaults(handler=_feedback)


def _report(args: argparse.Namespace) -> int:
    from sidecar.experiments.report import build_report, render
    from sidecar.experiments.stats import StatsUnavailableError

    cfg = _config(args.config)
    if cfg is None:
        return 1
    exp = cfg.policy.experiments.get(args.experiment)
    if exp is None:
        sys.stderr.write(
            f"no experiment {args.experiment!r}; configured: {', '.join(cfg.policy.experiments)}\n"
        )
        return 2
    end = args.end if args.end is not None else time.time()
    start = args.start if args.start is not None else end - args.days * DAY
    store = build_store(cfg.settings.telemetry.ledger, SystemClock())
    if store is None:
        sys.stderr.write("the ledger is off (settings.telemetry.ledger.backend: none)\n")
        return 1
    try:
        rows = asyncio.run(_rows(store, args.experiment, start, end))
        sys.stdout.write(render(build_report(args.experiment, exp, rows)) + "\n")
    except StatsUnavailableError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return 0


def _feedback(args: argparse.Namespace) -> int:
    from sidecar.experiments.feedback import Feedback, record_feedback

    cfg = _config(args.config)
    store = build_store(cfg.settings.telemetry.ledger, SystemClock()) if cfg is not None else None
    if store is None:
        sys.stderr.write("no ledger to store feedback in\n")
        return 1
    feedback = Feedback(args.tenant, args.request_id, args.score, args.label)
    try:
        result = asyncio.run(_with_store(store, record_feedback(store, feedback)))
    except SidecarError as err:
        sys.stderr.write(f"{err.code.value} {err.reason}: {err.message}\n")
        return 2
    sys.stdout.write("already stored\n" if result.status is FeedbackStatus.REPEATED else "stored\n")
    return 0


async def _rows(store: LedgerStore, experiment: str, start: float, end: float) -> Any:
    await store.open()
    try:
        return await store.experiment_rows(experiment, start, end)
    finally:
        await store.aclose()


async def _with_store(store: LedgerStore, work: Any) -> Any:
    await store.open()
    try:
        return await work
    finally:
        await store.aclose()


def _config(path: Path) -> Any:
    try:
        return load_config(path, process_environ())
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return None
