"""A real Redis on loopback: Debian's `redis-server`, started by the tests, reached through redis-py.

`redis_url` (session scope) starts one `redis-server` on 127.0.0.1 and a free port, with persistence
off, waits until it answers PING, yields `redis://127.0.0.1:<port>/0` and stops the server when the
session ends. `flush_redis(url)` empties its database; tests call it between themselves (or use a
unique key prefix). In CI a missing `redis-server` fails the test; on a developer's machine it skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.kms import component_missing, free_port, stop

START_TIMEOUT_SECONDS = 15.0


def redis_server_binary() -> str:
    """`redis-server` on PATH, else Debian's /usr/bin/redis-server."""
    for candidate in (shutil.which("redis-server"), "/usr/bin/redis-server"):
        if candidate and Path(candidate).is_file():
            return candidate
    component_missing("redis-server not found: apt-get install redis-server (.ci/run does)")


def ping(port: int) -> bool:
    """True when a Redis on 127.0.0.1:port answers PING (spoken in RESP by hand: no client needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def wait_ping(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"redis-server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        if ping(port):
            return
        time.sleep(0.02)
    stop(process)
    pytest.fail(f"redis-server did not answer within {START_TIMEOUT_SECONDS:g}s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """One throwaway redis-server for the whole session (no RDB snapshots, no AOF)."""
    binary = redis_server_binary()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="redis-") as tmp:
        log = Path(tmp) / "redis.log"
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with log.open("wb") as out:
            process = subprocess.Popen([*command, "--dir", tmp], stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_ping(port, process, log)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop(process)


async def flush_redis(url: str) -> None:
    """Empty the database behind `url`."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


@contextlib.contextmanager
def start_redis(*extra: str, tls: bool = False) -> Iterator[int]:
    """A dedicated redis-server for one test (e.g. `--maxmemory 1`, or TLS with `tls=True` and the
    `--tls-*` options in `extra`); yields its port and stops it afterwards."""
    binary = redis_server_binary()
    port = free_port()
    ports = ["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]
    with tempfile.TemporaryDirectory(prefix="redis-") as tmp:
        log = Path(tmp) / "redis.log"
        command = [binary, *ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *extra]
        with log.open("wb") as out:
            process = subprocess.Popen([*command, "--dir", tmp], stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_listening(port, process, log)  # PING would need the TLS or ACL options of the test
            yield port
        finally:
            stop(process)


def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """For a TLS-only server: wait until the port accepts connections."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"redis-server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    stop(process)
    pytest.fail(f"redis-server did not listen within {START_TIMEOUT_SECONDS:g}s:\n{log.read_text()[-2000:]}")


async def stall(url: str, seconds: float) -> asyncio.Task[None]:
    """DEBUG SLEEP from another connection (the server must run with `--enable-debug-command yes`):
    Redis answers nothing for `seconds`, as a fork, a slow script or SIGSTOP would make it."""
    from redis.asyncio import Redis

    other = Redis.from_url(url)

    async def sleep() -> None:
        try:
            await other.execute_command("DEBUG", "SLEEP", str(seconds))
        finally:
            await other.aclose()

    task = asyncio.create_task(sleep())
    await asyncio.sleep(0.05)  # the server is asleep now
    return task
