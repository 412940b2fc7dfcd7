"""A real sidecar whose SQLite ledger is on a filesystem that fills up, and on one that is read-only
when it starts (a tiny tmpfs this test mounts: it needs root, as in the CI container, where a failed
mount fails the test; elsewhere it skips): calls are never failed or slowed, the lost records are
counted, the log has a line when the trouble begins and one when it ends, and the ledger recovers
without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import admin_socket, echo_policy
from tests.integration.test_ledger_postgres_faults import calls, requests_of, until
from tests.support.kms import component_missing

pytestmark = pytest.mark.integration


@pytest.fixture
def tmpfs() -> Iterator[Path]:
    if os.geteuid() != 0:
        component_missing("mounting a tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="ledger-fs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        where.rmdir()
        component_missing(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        with contextlib.suppress(OSError):
            where.rmdir()


def remount(where: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True, capture_output=True)


def fill(where: Path) -> Path:
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def dropped(s: Any) -> float:
    registry = s.sidecar.deps.telemetry.metrics.registry
    return float(registry.get_sample_value("sidecar_ledger_dropped_records_total", {"cause": "write_failed"}))


def ledger_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [
        (r.levelname, r.getMessage().split(";")[0])
        for r in caplog.records
        if r.name == "sidecar.ledger" and "retention" not in r.getMessage()
    ]


async def test_a_full_filesystem_then_room_again(
    serve: Any, tmpfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar.ledger")
    ledger = {"sqlite_path": str(tmpfs / "usage.db"), "flush_interval_seconds": 0.05}
    s = await serve(
        {"policy": echo_policy(), "settings": {"telemetry": {"ledger": ledger}, "admin": admin_socket()}}
    )
    await calls(s, "before", 3)
    await until(s, {"before": 3}, 5)
    filler = fill(tmpfs)
    await calls(s, "full", 200)  # the records need pages the filesystem no longer has
    await asyncio.sleep(0.5)
    assert dropped(s) > 0
    filler.unlink()
    await calls(s, "after", 3)
    await until(s, {"before": 3, "after": 3}, 5)
    assert ledger_lines(caplog) == [
        ("ERROR", "ledger write failed"),
        ("WARNING", "ledger writes succeed again"),
    ]


async def test_a_read_only_filesystem_at_start_then_writable(
    serve: Any, tmpfs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar.ledger")
    remount(tmpfs, "ro")
    ledger = {"sqlite_path": str(tmpfs / "usage.db"), "flush_interval_seconds": 0.05}
    s = await serve(
        {"policy": echo_policy(), "settings": {"telemetry": {"ledger": ledger}, "admin": admin_socket()}}
    )
    await calls(s, "early", 5)  # served; their records wait in the queue
    assert await requests_of(s) is None
    remount(tmpfs, "rw")
    await until(s, {"early": 5}, 10)  # the writer's next try (1 s, then 2 s) opens it
    assert ledger_lines(caplog) == [
        ("ERROR", "ledger store cannot be opened"),
        ("WARNING", "ledger store opened"),
    ]
