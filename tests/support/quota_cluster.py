"""Several real `sidecar serve` processes sharing one redis-server of their own.

`OwnRedis` is a redis-server the test may stop and start again (on the same port, with an
append-only file so its counts survive, as a production Redis with persistence would). The
session-wide `redis_url` server is never stopped. `SidecarProcess` runs `python -m sidecar serve`
on a free port with a config file, waits for its "sidecar serving" log line, and can be killed
(SIGKILL, no cleanup) and started again on the same port.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kms import free_port, stop
from tests.support.redis import redis_server_binary, wait_ping

START_TIMEOUT_SECONDS = 30.0


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        self.dir, self.port = directory, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = self.dir / "redis.log"
        command = [
            redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir),
        ]  # fmt: skip
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        wait_ping(self.port, self.process, log)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None


class SidecarProcess:
    def __init__(self, directory: Path, name: str, config: dict[str, Any]) -> None:
        self.port = free_port()
        telemetry = {
            "metrics": {"address": "127.0.0.1:0"},
            "ledger": {"sqlite_path": str(directory / f"{name}-usage.db")},
        }
        settings = {**config.get("settings", {}), "listen": {"address": f"127.0.0.1:{self.port}"}}
        config = {**config, "settings": {**settings, "telemetry": telemetry}}
        self.config = directory / f"{name}.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.log = directory / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sidecar", "serve", "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, served_before: int = 0) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"sidecar exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            if self.log.read_text().count("sidecar serving") > served_before:
                return
            time.sleep(0.02)
        pytest.fail(f"sidecar did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no settle; whatever it had reserved stays until the reservation TTL."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        served = self.log.read_text().count("sidecar serving")
        self.spawn()
        self.wait_ready(served)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)  # type: ignore[arg-type]
            self.process = None
