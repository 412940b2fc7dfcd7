"""The injected container spec, run as a process (what the kubelet would do, minus the container):
its args and environment start a sidecar whose startup/readiness probe path answers on the health
port, and the application's address variable reaches it over the shared Unix socket."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sidecar.injector import containers as c
from sidecar.injector.mutate import decide
from sidecar.injector.settings import InjectorSettings
from tests.k8s.tools import find, ipv6_loopback, template
from tests.support.kms import free_port, stop

pytestmark = pytest.mark.integration


def probe(port: int, path: str, host: str = "127.0.0.1") -> int:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=1) as resp:
            return int(resp.status)
    except OSError as exc:
        return int(getattr(exc, "code", 0))


@pytest.mark.parametrize(
    "values",
    [
        [],  # the chart's config
        # metrics off (docs/benchmarks.md): the health port, which the probes need, is served anyway
        ["--set", "config.settings.telemetry.metrics.enabled=false"],
    ],
    ids=["chart-config", "metrics-off"],
)
def test_the_injected_sidecar_serves_the_application_over_the_socket(
    tmp_path: Path, values: list[str]
) -> None:
    config = find(template(*values), "ConfigMap", "-config")["data"]["sidecar.yaml"]
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "sidecar.yaml").write_text(config)
    (tmp_path / "state").mkdir()
    settings = InjectorSettings(
        image="unused", config_map="cfg", grpc_port=free_port(), health_port=free_port(),
        socket_dir=str(tmp_path / "sock"), drain_seconds=1,
    )  # fmt: skip
    (tmp_path / "sock").mkdir()
    pod = {
        "metadata": {"annotations": {"orchestrator.sidecar/inject": "true"}},
        "spec": {"containers": [{"name": "app"}]},
    }
    decision = decide(pod, settings)
    assert decision.pod is not None
    sidecar: dict[str, Any] = decision.pod["spec"]["initContainers"][0]
    args = [a.replace(c.CONFIG_DIR, str(tmp_path / "config")) for a in sidecar["args"]]
    env = {e["name"]: e["value"] for e in sidecar["env"] if "value" in e}
    log = tmp_path / "sidecar.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sidecar", *args], env={"PATH": "/usr/bin:/bin", **env},
            cwd=tmp_path / "state", stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        startup = sidecar["startupProbe"]["httpGet"]["path"]
        deadline = time.monotonic() + 30
        while probe(settings.health_port, startup) != 200:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert probe(settings.health_port, sidecar["livenessProbe"]["httpGet"]["path"]) == 200
        if ipv6_loopback():  # on an IPv6 cluster the kubelet probes the pod's IPv6 address
            assert probe(settings.health_port, startup, host="[::1]") == 200
        app_env = {e["name"]: e["value"] for e in decision.pod["spec"]["containers"][0]["env"]}
        address = app_env["ORCHESTRATOR_SIDECAR_ADDRESS"]
        assert address == f"unix://{tmp_path}/sock/sidecar.sock"
        chat = subprocess.run(
            [sys.executable, "-m", "sidecar", "chat", "--target", address, "hello from the app"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert chat.returncode == 0, chat.stderr
        assert chat.stdout.strip() == "hello from the app"
        assert (tmp_path / "state" / "sidecar-usage.db").exists()  # the ledger in the working directory
    finally:
        stop(process)
