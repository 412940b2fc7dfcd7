"""A second SIGTERM or SIGINT while `sidecar serve` drains stops it at once, saying so: operators
(a developer's second Ctrl-C, a supervisor that signals again) expect that. It waited out the whole
shutdown grace for the calls in flight, however often it was told."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import yaml

from tests.conftest import echo_policy, user
from tests.support.api import Stubs, stream_request

pytestmark = pytest.mark.integration


def config(tmp: Path, sock: Path) -> Path:
    slow = {"chunk_delay_seconds": 1.0, "tokens_per_chunk": 1}
    policy = echo_policy(deployments={"echo": {"provider": "echo", "model": "echo-1", "echo": slow}})
    path = tmp / "sidecar.yaml"
    settings = {
        "listen": {"address": "127.0.0.1:0", "unix_socket": str(sock)},
        "telemetry": {"metrics": {"address": "127.0.0.1:0"}},
        "shutdown_grace_seconds": 120,
    }
    path.write_text(yaml.safe_dump({"settings": settings, "policy": policy}))
    return path


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_second_signal_during_the_drain_stops_at_once(tmp_path: Path, second: signal.Signals) -> None:
    sock = tmp_path / "s.sock"
    log = tmp_path / "sidecar.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "sidecar", "serve", "--config", str(config(tmp_path, sock))),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    channel = grpc.aio.insecure_channel(f"unix:{sock}")
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert process.returncode is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.05)
        words = " ".join(f"w{i}" for i in range(300))  # 300 s of answer, a chunk a second
        call = Stubs(channel).StreamGenerate(stream_request(messages=[user(words)]), timeout=300)
        assert (await call.read()).HasField("delta")  # in flight
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(1.0)
        assert process.returncode is None  # draining: the call has its grace
        process.send_signal(second)
        code = await asyncio.wait_for(process.wait(), 10)
        assert code == 128 + second, log.read_text()
        assert "second signal" in log.read_text()
    finally:
        await channel.close(None)
        if process.returncode is None:
            process.kill()
            await process.wait()
