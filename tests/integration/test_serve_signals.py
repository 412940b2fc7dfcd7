"""`sidecar serve` told to stop while it is still starting (a pod deleted right after it was
scheduled): the SIGTERM is kept and the sidecar stops cleanly once started. Without a handler yet,
the default action killed it (its socket left behind), and as a container's PID 1, where the kernel
drops a signal nobody handles, it ignored the SIGTERM and served on until the kubelet's SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import echo_policy

pytestmark = pytest.mark.integration


def test_a_sigterm_during_start_up_stops_the_sidecar_cleanly(tmp_path: Path) -> None:
    with socket.socket() as silent:  # a "PostgreSQL" that accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        sock = tmp_path / "sidecar.sock"
        ledger = {
            "backend": "postgres",
            "postgres_url": f"postgresql://u@127.0.0.1:{port}/db",
            "timeout_seconds": 5,
        }
        config = tmp_path / "sidecar.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "settings": {
                        "listen": {"address": "127.0.0.1:0", "unix_socket": str(sock)},
                        "telemetry": {"metrics": {"address": "127.0.0.1:0"}, "ledger": ledger},
                    },
                    "policy": echo_policy(),
                }
            )
        )
        log = tmp_path / "sidecar.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "sidecar", "serve", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 30
            while not sock.exists():  # built; start() now waits for the ledger's database
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert not sock.exists()  # stopped in order: the socket is gone


def test_a_sighup_during_start_up_is_kept_and_rereads_the_file(tmp_path: Path) -> None:
    """A SIGHUP (the config file changed) while `sidecar serve` is still starting: the process lives
    on and rereads the file once it has started. Without a handler yet, the default action killed it.
    The config path is a FIFO first, so the test knows the sidecar is reading it when it signals."""
    config = tmp_path / "sidecar.yaml"
    os.mkfifo(config)

    def with_tone(status: str) -> bytes:
        policy = echo_policy(deployments={"echo": {"provider": "echo", "model": "echo-1"}})
        policy["experiments"] = {
            "tone": {"route": "echo", "control": "a", "status": status, "variants": {"a": {}, "b": {}}}
        }
        settings = {"listen": {"address": "127.0.0.1:0"}, "telemetry": {"metrics": {"enabled": False}}}
        return yaml.safe_dump({"settings": settings, "policy": policy}).encode()

    log = tmp_path / "sidecar.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        with config.open("wb") as fifo:  # opens once the sidecar opened it to read its config
            process.send_signal(signal.SIGHUP)  # the file changed meanwhile (below)
            changed = tmp_path / "changed.yaml"
            changed.write_bytes(with_tone("stopped"))
            os.replace(changed, config)
            fifo.write(with_tone("running"))
        deadline = time.monotonic() + 30
        while b"experiment changed" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert b"status running -> stopped" in log.read_bytes()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
