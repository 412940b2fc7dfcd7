"""`sidecar injector serve` as a process, told to stop (SIGTERM) as the kubelet does in a rollout: it
must keep answering reviews for a while, because the API server sends them to the terminating pod
until the Service's endpoints drop it; with failurePolicy Ignore a review that fails admits the pod
without the sidecar."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.k8s.test_injector_webhook import ASKED, pod, review
from tests.k8s.tls import make_tls
from tests.support.kms import free_port, stop

pytestmark = pytest.mark.integration


def _call(port: int, context: ssl.SSLContext, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}{path}", data=body, method="POST" if body else "GET"
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _started(
    tmp_path: Path, shutdown_delay: float
) -> tuple[subprocess.Popen[bytes], int, ssl.SSLContext, Path]:
    """`sidecar injector serve` on a free port, once its /readyz says 200."""
    tls = make_tls(tmp_path / "tls")
    settings = tmp_path / "injector.yaml"
    settings.write_text("image: registry.example/sidecar:1\nconfig_map: orchestrator-sidecar\n")
    port = free_port()
    command = [
        sys.executable, "-m", "sidecar", "injector", "serve", "--settings", str(settings),
        "--tls-cert", str(tls.cert), "--tls-key", str(tls.key), "--address", f"127.0.0.1:{port}",
        "--shutdown-delay", str(shutdown_delay),
    ]  # fmt: skip
    log = tmp_path / "injector.log"
    context = ssl.create_default_context(cadata=tls.ca_pem.decode())
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            if _call(port, context, "/readyz")[0] == 200:
                return process, port, context, log
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise AssertionError(log.read_text())
        time.sleep(0.1)


def test_a_second_sigterm_during_the_shutdown_delay_exits_at_once(tmp_path: Path) -> None:
    """A rollout's SIGTERM, then another (an operator, a supervisor): the second exits at once
    instead of waiting out the shutdown delay, with the shell's code for death by SIGTERM."""
    process, _port, _context, log = _started(tmp_path, 60)
    try:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the first handled: draining for 60 s
        assert process.poll() is None
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 128 + signal.SIGTERM, log.read_text()
        assert time.monotonic() - started < 5
        assert "second signal during shutdown" in log.read_text()
    finally:
        stop(process)


def test_after_sigterm_reviews_are_still_answered_while_readyz_says_draining(tmp_path: Path) -> None:
    process, port, context, log = _started(tmp_path, 2)
    try:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.3)  # the signal handled
        assert _call(port, context, "/readyz")[0] == 503
        assert _call(port, context, "/livez")[0] == 200
        status, body = _call(port, context, "/inject", json.dumps(review(pod(ASKED))).encode())
        assert status == 200, body
        assert json.loads(body)["response"]["patchType"] == "JSONPatch"
        assert process.wait(timeout=10) == 0, log.read_text()
    finally:
        stop(process)
