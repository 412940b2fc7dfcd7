"""A real AWS KMS API on loopback: moto's server mode, started by the tests, reached through boto3.

`kms_endpoint` (session scope) starts one `moto_server` on 127.0.0.1 and a free port, creates one
symmetric KMS key in it, and stops the server when the session ends. `start_moto()` starts a
dedicated one for a test that needs to stop it midway. In CI a missing moto_server fails the test;
on a developer's machine it skips.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
START_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class MotoKms:
    """A running moto server and the KMS key created in it for this session."""

    url: str
    region: str
    key_arn: str
    process: subprocess.Popen[bytes]

    def client(self) -> Any:
        """A boto3 KMS client for the emulator, with dummy credentials."""
        import boto3

        return boto3.client("kms", region_name=self.region, endpoint_url=self.url, **CREDENTIALS)

    def create_key(self) -> str:
        """A new symmetric key (for a test that rotates or disables it); returns its ARN."""
        return str(self.client().create_key(Description="sidecar test")["KeyMetadata"]["Arn"])


def component_missing(message: str) -> NoReturn:
    """A real component a test needs is not installed: a failure in CI, a skip on a developer's machine."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def moto_command() -> list[str]:
    """How to run moto's server: the console script next to this Python, on PATH, or `-m moto.server`."""
    for candidate in (Path(sys.executable).parent / "moto_server", shutil.which("moto_server")):
        if candidate and Path(candidate).is_file():
            return [str(candidate)]
    with contextlib.suppress(ImportError):
        import moto.server  # noqa: F401

        return [sys.executable, "-m", "moto.server"]
    component_missing("moto_server not found: pip install 'moto[server]' (see pyproject's dev extra)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url_host: str, port: int, process: subprocess.Popen[bytes], log: Path, path: str = "/") -> None:
    """Until the server answers `path` below status 500; fails with its log if it dies or never answers."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        conn = http.client.HTTPConnection(url_host, port, timeout=1)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status < 500:  # OpenBao's health says 501/503 until it is initialized and unsealed
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.05)
    stop(process)
    pytest.fail(f"server did not answer within {START_TIMEOUT_SECONDS:g}s:\n{log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def start_moto() -> Iterator[MotoKms]:
    """A moto server of its own with one KMS key, stopped on exit (if the test has not stopped it)."""
    command = moto_command()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="moto-") as tmp:
        log = Path(tmp) / "moto.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_http("127.0.0.1", port, process, log, "/moto-api/")
            server = MotoKms(f"http://127.0.0.1:{port}", REGION, "", process)
            yield MotoKms(server.url, REGION, server.create_key(), process)
        finally:
            stop(process)


@pytest.fixture(scope="session")
def kms_endpoint() -> Iterator[MotoKms]:
    """One moto KMS server and key for the whole session."""
    with start_moto() as server:
        yield server
