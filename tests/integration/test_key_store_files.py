"""The SQLite key store's file as an operator gets it wrong: a `store_path` that cannot be opened, a
file another process holds locked. Key calls and `sidecar keys rotate` report a classified key error,
never a crash or a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml

from sidecar.core.clock import SystemClock
from sidecar.core.errors import KeyBackendUnavailableError
from sidecar.keys.local import LocalKekBackend
from sidecar.keys.store import KeyRecord, SqliteKeyStore
from tests.conftest import echo_policy
from tests.integration.test_cli import SIDECAR

pytestmark = pytest.mark.integration


def test_keys_rotate_with_a_store_path_it_cannot_open_exits_1_with_the_reason(tmp_path: Path) -> None:
    """It died with a sqlite3.OperationalError traceback."""
    kek = tmp_path / "kek"
    LocalKekBackend.generate_file(kek)
    keys = {"backend": "local", "local": {"kek_file": str(kek)}, "store_path": str(tmp_path / "no" / "k.db")}
    config = tmp_path / "sidecar.yaml"
    config.write_text(yaml.safe_dump({"settings": {"keys": keys}, "policy": echo_policy()}))
    result = subprocess.run(
        [*SIDECAR, "keys", "rotate", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    store = tmp_path / "no" / "k.db"  # named by its setting, at start (it was KEY_UNAVAILABLE at first use)
    assert f"settings.keys.store_path: {store}: cannot open (No such file or directory)" in result.stderr


async def test_a_store_file_held_locked_by_another_process_is_backend_unavailable(tmp_path: Path) -> None:
    """SQLite waits 5 s for the lock, then the call is retryable: KEY_BACKEND_UNAVAILABLE."""
    path = tmp_path / "keys.db"
    store = SqliteKeyStore(path, SystemClock())
    await store.list("acme")  # created
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    record = KeyRecord("key_0123456789", "acme", "alice", "openai", "default", "oenv1.x", "…", 1.0, 1.0)
    try:
        with pytest.raises(KeyBackendUnavailableError) as caught:
            await store.put(record)
    finally:
        holder.rollback()
        holder.close()
        await store.aclose()
    assert caught.value.metadata == {"storeError": "SQLITE_BUSY", "retryAfterSeconds": "1"}
