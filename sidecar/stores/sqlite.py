"""One SQLite connection on one thread of its own, for the embedded stores (keys, answers).

sqlite3 objects may only be used on the thread that made them, and the calls block: every
operation runs on a one-thread executor against a connection opened there on first use. A file
store is created owner-only (its -wal and -shm files inherit the mode).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
MEMORY = ":memory:"


def create_owner_only(path: str) -> None:
    if path != MEMORY and not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


class SqliteThread:
    """`open` makes the connection (schema included) on the thread; `run` hands it operations."""

    def __init__(self, name: str, open: Callable[[], sqlite3.Connection]) -> None:
        self._name, self._open = name, open
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None  # opened and used only on the executor's thread
        self._closed = False

    async def run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError(f"{self._name} is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: op(self._connect()))

    async def aclose(self) -> None:
        """Close the connection and stop the thread. Idempotent; the store cannot be used afterwards."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
