"""`sidecar keys new-kek` and `sidecar keys encrypt` as a person runs them, in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.keys.backend import KeyContext
from sidecar.keys.envelope import Envelope, unseal
from sidecar.keys.local import LocalKekBackend
from tests.conftest import echo_policy

pytestmark = pytest.mark.integration
SIDECAR = [sys.executable, "-m", "sidecar"]
OWNER = ["--tenant", "acme", "--user", "alice", "--provider", "openai"]


def run(*args: str, stdin: Any = None, data: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIDECAR, *args], input=data, stdin=stdin, capture_output=True, text=True, timeout=30
    )


def config(tmp_path: Path, keys: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "sidecar.yaml"
    settings = {"keys": {**(keys or {}), "store_path": str(tmp_path / "keys.db")}}
    path.write_text(yaml.safe_dump({"settings": settings, "policy": echo_policy()}))
    return path


@pytest.fixture
def kek(tmp_path: Path) -> Path:
    path = tmp_path / "kek"
    assert run("keys", "new-kek", str(path)).returncode == 0
    return path


@pytest.fixture
def local_config(tmp_path: Path, kek: Path) -> Path:
    return config(tmp_path, {"backend": "local", "local": {"kek_file": str(kek)}})


def test_new_kek_writes_a_0600_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    made = run("keys", "new-kek", str(path))
    assert made.returncode == 0, made.stderr
    assert made.stdout == f"{path}\n"
    assert "development only" in made.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_bytes()
    LocalKekBackend.from_file(path)  # a loadable KEK

    again = run("keys", "new-kek", str(path))
    assert again.returncode == 1
    assert again.stdout == ""
    assert "already exists" in again.stderr and "refusing to overwrite" in again.stderr
    assert path.read_bytes() == content


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "azure", "bedrock"])
async def test_encrypt_prints_one_blob_that_opens_with_the_same_kek(
    kek: Path, local_config: Path, provider: str
) -> None:
    canary = "sk-canary-" + secrets.token_hex(16)
    owner = ["--tenant", "acme", "--user", "alice", "--provider", provider]
    result = run("keys", "encrypt", "--config", str(local_config), *owner, "--key-name", "work",
                 data=canary + "\n")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout.endswith("\n")
    assert lines[0].startswith("oenv1.")
    assert canary not in result.stdout and canary not in result.stderr
    assert canary[-8:] not in result.stdout + result.stderr

    backend = LocalKekBackend.from_file(kek)
    try:
        context = KeyContext("acme", "alice", provider, "work")
        plaintext = await unseal(backend, Envelope.decode(lines[0]), context)
    finally:
        await backend.aclose()
    assert bytes(plaintext) == canary.encode()  # exactly one trailing newline was stripped


def test_empty_stdin_exits_2(local_config: Path) -> None:
    for data in ("", "\n"):
        result = run("keys", "encrypt", "--config", str(local_config), *OWNER, data=data)
        assert result.returncode == 2
        assert result.stdout == ""
        assert "error: INVALID_REQUEST: no key on standard input" in result.stderr


def test_a_terminal_on_stdin_is_refused(local_config: Path) -> None:
    controller, terminal = pty.openpty()
    try:
        result = run("keys", "encrypt", "--config", str(local_config), *OWNER, stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "reading the key from standard input" in result.stderr and "terminal" in result.stderr


def test_a_config_without_a_key_backend_exits_1(tmp_path: Path) -> None:
    canary = "sk-canary-" + secrets.token_hex(16)
    result = run("keys", "encrypt", "--config", str(config(tmp_path)), *OWNER, data=canary)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error: KEYS_DISABLED: no key backend configured (settings.keys.backend)" in result.stderr
    assert canary not in result.stderr


def test_a_missing_kek_file_is_reported_without_the_key(tmp_path: Path) -> None:
    canary = "sk-canary-" + secrets.token_hex(16)
    cfg = config(tmp_path, {"backend": "local", "local": {"kek_file": str(tmp_path / "absent")}})
    result = run("keys", "encrypt", "--config", str(cfg), *OWNER, data=canary)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error: KEY_BACKEND_UNAVAILABLE: cannot set up the local key backend" in result.stderr
    assert canary not in result.stderr


def test_a_key_input_that_never_ends_is_refused_not_read_whole(local_config: Path) -> None:
    """`sidecar keys encrypt < /dev/zero` read standard input to its end: it hung, filling memory."""
    with open("/dev/zero", "rb") as zero:
        result = run("keys", "encrypt", "--config", str(local_config), *OWNER, stdin=zero)
    assert result.returncode == 2 and result.stdout == ""
    assert "longer than 8192 bytes" in result.stderr


def test_bad_input_is_a_usage_error(local_config: Path) -> None:
    provider = run("keys", "encrypt", "--config", str(local_config), "--tenant", "acme", "--user", "alice",
                   "--provider", "echo", data="sk-x")  # fmt: skip
    assert provider.returncode == 2
    assert "invalid choice: 'echo'" in provider.stderr

    canary = "sk-canary " + secrets.token_hex(16)  # a space: not a key the RegisterKey RPC accepts either
    owner = ["--tenant", "no spaces", "--user", "alice", "--provider", "openai"]
    bad = run("keys", "encrypt", "--config", str(local_config), *owner, data=canary)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert "error: INVALID_REQUEST: --tenant: " in bad.stderr and "the key: printable ASCII" in bad.stderr
    assert canary not in bad.stderr and canary.split()[1] not in bad.stderr


async def put_records(db: Path, kek: Path, n: int) -> None:
    from sidecar.core.clock import SystemClock
    from sidecar.keys.envelope import seal
    from sidecar.keys.store import KeyRecord, SqliteKeyStore

    store = SqliteKeyStore(db, SystemClock())
    backend = LocalKekBackend.from_file(kek)
    for i in range(n):
        ctx = KeyContext("acme", f"u{i}", "openai", "default")
        env = (await seal(backend, ctx, f"sk-{i}".encode())).encode()
        await store.put(KeyRecord(f"key_{i:08d}", "acme", f"u{i}", "openai", "default", env, "…", 1.0, 1.0))
    await store.aclose()


async def test_keys_rotate_is_a_one_off_job_that_one_run_at_a_time_may_do(
    tmp_path: Path, local_config: Path, kek: Path
) -> None:
    from sidecar.core.clock import SystemClock
    from sidecar.keys.rotation import SqliteRotationLock

    await put_records(tmp_path / "keys.db", kek, 3)
    done = run("keys", "rotate", "--config", str(local_config), "--per-second", "1000")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"rotated": 3, "failed": 0}

    lock = SqliteRotationLock(tmp_path / "keys.db", SystemClock())
    assert await lock.acquire("another-pod", 60)  # a run elsewhere holds the key store's lock
    busy = run("keys", "rotate", "--config", str(local_config))
    assert busy.returncode == 3 and "ROTATION_IN_PROGRESS" in busy.stderr
    assert run("keys", "rotate", "--config", str(local_config), "--per-second", "0").returncode == 2
