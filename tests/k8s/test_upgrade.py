"""Rolling upgrades: what crosses versions while injectors and sidecars of two versions run at once.

`helm upgrade` rewrites the injector's settings ConfigMap in place, under the injector pods that still
run the previous version until the rollout replaces them; the kubelet refreshes the mounted file, so
one of them that restarts reads the later chart's settings."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.cluster import Cluster, start_cluster
from tests.k8s.test_cluster import ASKED, Injector, names, pod
from tests.k8s.test_injector_webhook import pod as review_pod
from tests.k8s.test_injector_webhook import review
from tests.k8s.tls import make_tls
from tests.k8s.tools import CHART, find, helm, template
from tests.support.kms import free_port, stop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


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
        status, body = _call(port, context, "/inject", json.dumps(review(review_pod(ASKED))).encode())
        assert status == 200 and json.loads(body)["response"]["patchType"] == "JSONPatch"
        warnings = [json.loads(line) for line in log.read_text().splitlines() if "a_later_setting" in line]
        assert warnings and warnings[0]["level"] == "WARNING" and warnings[0]["ignored"] == "a_later_setting"
    finally:
        stop(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


def chart_at(directory: Path, version: str) -> Path:
    """A copy of the chart as its release `version` would be (version and appVersion)."""
    chart = directory / f"chart-{version}"
    shutil.copytree(CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    (chart / "Chart.yaml").write_text(yaml.safe_dump({**meta, "version": version, "appVersion": version}))
    return chart


def test_an_upgrade_injects_new_pods_with_its_version_and_leaves_running_ones(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The sidecar's image follows the chart's appVersion through the injector's settings; a pod the
    previous injector admitted keeps its sidecar (the webhook sees creations only), and so does a pod
    created again from its dumped manifest (it carries the injected mark): both are what the
    operator must restart after an upgrade (docs/kubernetes.md, Upgrades)."""
    tls = make_tls(tmp_path / "tls")
    port = free_port()
    for namespace in ("upgrade-system", "upgrade-apps"):
        cluster.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", "upgrade-system")
    values = (
        "--set", f"webhook.url=https://127.0.0.1:{port}/inject",
        "--set", f"webhook.caBundle={base64.b64encode(tls.ca_pem).decode()}",
        "--set", "sidecarNamespaces={upgrade-apps}",
    )  # fmt: skip
    settings_path = "/api/v1/namespaces/upgrade-system/configmaps/upgrade-orchestrator-sidecar-injector"
    pods = "/api/v1/namespaces/upgrade-apps/pods"

    def injector_of_the_release(name: str) -> Injector:
        directory = tmp_path / name
        directory.mkdir()
        settings = directory / "injector.yaml"
        settings.write_text(cluster.get(settings_path)["data"]["injector.yaml"])
        injector = Injector(directory, settings, tls, port)
        injector.start()
        return injector

    def sidecar_image(stored: dict[str, Any]) -> str:
        [sidecar] = [c for c in stored["spec"]["initContainers"] if c["name"] == "orchestrator-sidecar"]
        return str(sidecar["image"])

    helm("install", "upgrade", str(chart_at(tmp_path, "0.1.0")), *kube, *values)
    try:
        old = injector_of_the_release("old")
        try:
            before = cluster.create(pods, pod("before", ASKED))
        finally:
            old.stop()
        assert sidecar_image(before) == "ghcr.io/orchestrator/sidecar:0.1.0"
        helm("upgrade", "upgrade", str(chart_at(tmp_path, "0.2.0")), *kube, *values)
        new = injector_of_the_release("new")
        try:
            after = cluster.create(pods, pod("after", ASKED))
            again = {k: before[k] for k in ("apiVersion", "kind", "spec")}
            again["metadata"] = {"name": "again", "annotations": before["metadata"]["annotations"]}
            recreated = cluster.create(pods, again)
            assert new.decisions("skipped", "already_injected") == 1
        finally:
            new.stop()
        assert sidecar_image(after) == "ghcr.io/orchestrator/sidecar:0.2.0"
        assert sidecar_image(cluster.get(f"{pods}/before")) == "ghcr.io/orchestrator/sidecar:0.1.0"
        assert sidecar_image(recreated) == "ghcr.io/orchestrator/sidecar:0.1.0"
        assert names(recreated["spec"]["initContainers"]) == ["orchestrator-sidecar"]  # not twice
    finally:
        helm("uninstall", "upgrade", *kube)
