"""Rolling upgrades: what crosses versions while injectors and sidecars of two versions run at once.

`helm upgrade` rewrites the injector's settings ConfigMap in place, under the injector pods that still
run the previous version until the rollout replaces them; the kubelet refreshes the mounted file, so
one of them that restarts reads the later chart's settings."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.k8s.test_injector_webhook import ASKED, pod, review
from tests.k8s.tls import make_tls
from tests.k8s.tools import find, template
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


def test_an_injector_restarting_under_a_later_charts_settings_keeps_serving(tmp_path: Path) -> None:
    """The settings as this chart renders them, plus a key of a later chart: the injector refused
    them (Extra inputs are not permitted) and exited, a crash loop; with the new version's pods
    unable to start (a mistyped image.tag), no injector was left, and every pod was admitted without
    the sidecar (or refused, under Fail). It serves, and names what it ignored."""
    rendered = yaml.safe_load(find(template(), "ConfigMap", "-injector")["data"]["injector.yaml"])
    settings = tmp_path / "injector.yaml"
    settings.write_text(yaml.safe_dump({**rendered, "a_later_setting": {"enabled": True}}))
    tls = make_tls(tmp_path / "tls")
    port = free_port()
    command = [
        sys.executable, "-m", "sidecar", "injector", "serve", "--settings", str(settings),
        "--tls-cert", str(tls.cert), "--tls-key", str(tls.key), "--address", f"127.0.0.1:{port}",
        "--shutdown-delay", "0",
    ]  # fmt: skip
    log = tmp_path / "injector.log"
    context = ssl.create_default_context(cadata=tls.ca_pem.decode())
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _call(port, context, "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, f"exited {process.returncode}: {log.read_text()}"
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        status, body = _call(port, context, "/inject", json.dumps(review(pod(ASKED))).encode())
        assert status == 200 and json.loads(body)["response"]["patchType"] == "JSONPatch"
        warnings = [json.loads(line) for line in log.read_text().splitlines() if "a_later_setting" in line]
        assert warnings and warnings[0]["level"] == "WARNING" and warnings[0]["ignored"] == "a_later_setting"
    finally:
        stop(process)
