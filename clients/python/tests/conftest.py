"""A real sidecar process for the contract suite, started from tests/contract/sidecar.yaml."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[3]
CONTRACT = ROOT / "tests" / "contract"


@pytest.fixture(scope="session")
def contract() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CONTRACT / "scenarios.yaml").read_text())
    return loaded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_serving(address: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the sidecar exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if (
                    health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    pytest.fail(f"the sidecar did not answer SERVING within 60 s:\n{log.read_text()}")


@pytest.fixture(scope="session")
def sidecar(served: tuple[str, Path]) -> str:
    """The TCP address of a sidecar serving the contract configuration."""
    return served[0]


@pytest.fixture(scope="session")
def sidecar_socket(served: tuple[str, Path]) -> Path:
    """The Unix socket the same sidecar also listens on."""
    return served[1]


@pytest.fixture(scope="session")
def served(contract: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A sidecar serving the contract configuration on TCP and a Unix socket (stopped after the session)."""
    exe = ROOT / ".venv" / "bin" / "sidecar"
    if not exe.exists():
        pytest.fail(f"{exe} is missing: run `make setup` at the repository root")
    work = tmp_path_factory.mktemp("sidecar")
    address = f"127.0.0.1:{_free_port()}"
    env = {
        **os.environ,
        "SIDECAR__SETTINGS__LISTEN__ADDRESS": address,
        "CONTRACT_SIDECAR_TOKEN": contract["token"],
        "SIDECAR__SETTINGS__LISTEN__UNIX_SOCKET": str(work / "sidecar.sock"),
    }
    log = work / "sidecar.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe), "serve", "--config", str(CONTRACT / "sidecar.yaml")],
            env=env,
            cwd=work,
            stdout=out,
            stderr=out,
        )
    try:
        _wait_serving(address, proc, log)
        yield address, work / "sidecar.sock"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
