"""A real PostgreSQL on loopback: Debian's binaries (initdb, postgres), started by the tests.

`postgres_url` (session scope) runs `initdb` into a temporary directory and starts `postgres` on
127.0.0.1 and a free port (trust authentication, fsync off), waits until it accepts connections,
yields `postgresql://postgres@127.0.0.1:<port>/postgres`, and stops it when the session ends.
PostgreSQL refuses to run as root, so as root both run as the `postgres` user Debian's package
creates. In CI a missing PostgreSQL fails the test; on a developer's machine it skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kms import component_missing, free_port

START_TIMEOUT_SECONDS = 30.0


def postgres_bin(name: str) -> str:
    """`name` from PATH, else from Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[::-1]), None
    )
    if found:
        return found
    component_missing(f"{name} not found: apt-get install postgresql (make system-deps does)")


def _as_user() -> dict[str, Any]:
    """Popen arguments that drop root to the `postgres` user."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and there is no `postgres` user to run PostgreSQL as")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    initdb, postgres, isready = postgres_bin("initdb"), postgres_bin("postgres"), postgres_bin("pg_isready")
    user = _as_user()
    root = Path(tempfile.mkdtemp(prefix="pg-"))
    try:
        if user:
            os.chown(root, user["user"], user["group"])
        data, log = root / "data", root / "postgres.log"
        subprocess.run(
            [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120, cwd=root, **user,
        )  # fmt: skip
        port = free_port()
        command = [
            postgres, "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(root),
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=root, **user)
        try:
            deadline = time.monotonic() + START_TIMEOUT_SECONDS
            while True:
                if process.poll() is not None:
                    pytest.fail(f"postgres exited with {process.returncode}:\n{log.read_text()[-2000:]}")
                ready = subprocess.run(
                    [isready, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"], capture_output=True
                )
                if ready.returncode == 0 and _accepting(port):
                    break
                if time.monotonic() > deadline:
                    pytest.fail(f"postgres did not start in time:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # fast shutdown
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    finally:
        shutil.rmtree(root, ignore_errors=True)
