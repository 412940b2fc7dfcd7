"""The chart against a real API server: `helm install`, then pods and Deployments created through the
API with and without the annotation, read back with the sidecar injected (or not) by the injector,
which runs as `sidecar injector serve` on loopback and is the webhook's `url` (no kubelet runs)."""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.k8s.cluster import Cluster, start_cluster
from tests.k8s.tls import Tls, make_tls
from tests.k8s.tools import CHART, helm
from tests.support.kms import free_port, stop

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]  # the first test starts the cluster

RELEASE, SYSTEM, APPS = "orch", "orchestrator-system", "apps"
WEBHOOK = f"{RELEASE}-orchestrator-sidecar.inject.orchestrator.sidecar"
ASKED = {"orchestrator.sidecar/inject": "true"}


class Injector:
    """`sidecar injector serve` as a process, on a fixed free port (the webhook URL names it)."""

    def __init__(self, directory: Path, settings: Path, tls: Tls, port: int) -> None:
        self.directory, self.settings, self.tls, self.port = directory, settings, tls, port
        self.process: subprocess.Popen[bytes] | None = None
        self.log = directory / "injector.log"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "sidecar", "injector", "serve", "--settings", str(self.settings),
            "--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key),
            "--address", f"127.0.0.1:{self.port}",
            "--shutdown-delay", "0",  # no Service endpoints to wait for: the tests stop it at once
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while self._get("/readyz") != 200:
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "injector did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            self.process = None

    def _get(self, path: str) -> int | str:
        context = ssl.create_default_context(cadata=self.tls.ca_pem.decode())
        try:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{self.port}{path}", context=context, timeout=2
            ) as r:
                return r.status if path != "/metrics" else r.read().decode()
        except OSError:
            return 0

    def decisions(self, decision: str, reason: str, *, dry_run: bool = False) -> float:
        """The count of one decision and reason, of pods created (or of dry runs: dry_run=True). It
        was the first series found of either, so a dry run counted before a test read that count."""
        text = str(self._get("/metrics"))
        for line in text.splitlines():
            wanted = (f'decision="{decision}"', f'reason="{reason}"', f'dry_run="{str(dry_run).lower()}"')
            if line.startswith("sidecar_injector_decisions_total{") and all(w in line for w in wanted):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log.read_text().splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))
        return lines


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def installed(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Injector]:
    """The chart installed with its webhook pointing at an injector on loopback, which is running."""
    directory = tmp_path_factory.mktemp("injector")
    tls = make_tls(directory / "tls")
    port = free_port()
    for namespace in (SYSTEM, APPS):
        cluster.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    helm(
        "install", RELEASE, str(CHART), "--namespace", SYSTEM, "--kubeconfig", str(cluster.kubeconfig),
        "--set", f"webhook.url=https://127.0.0.1:{port}/inject",
        "--set", f"webhook.caBundle={base64.b64encode(tls.ca_pem).decode()}",
        "--set", "webhook.timeoutSeconds=5",
        "--set", f"sidecarNamespaces={{{APPS}}}",
        "--set", "sidecar.tokenSecret.name=sidecar-token",
        "--set", "config.settings.auth.token.env=SIDECAR_TOKEN",
    )  # fmt: skip
    settings_map = cluster.get(
        f"/api/v1/namespaces/{SYSTEM}/configmaps/{RELEASE}-orchestrator-sidecar-injector"
    )
    settings = directory / "injector.yaml"
    settings.write_text(settings_map["data"]["injector.yaml"])
    injector = Injector(directory, settings, tls, port)
    injector.start()
    yield injector
    injector.stop()


def pod(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1"}], **spec},
    }


def names(containers: list[dict[str, Any]] | None) -> list[str]:
    return [c["name"] for c in containers or []]


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_helm_installed_the_release(cluster: Cluster, installed: Injector) -> None:
    hook = cluster.get(
        f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{RELEASE}-orchestrator-sidecar"
    )
    webhook = hook["webhooks"][0]
    assert webhook["name"] == WEBHOOK
    assert webhook["clientConfig"]["url"] == f"https://127.0.0.1:{installed.port}/inject"
    assert (webhook["sideEffects"], webhook["failurePolicy"], webhook["reinvocationPolicy"]) == (
        "None",
        "Ignore",
        "IfNeeded",
    )
    config = cluster.get(f"/api/v1/namespaces/{APPS}/configmaps/{RELEASE}-orchestrator-sidecar-config")
    assert yaml.safe_load(config["data"]["sidecar.yaml"])["policy"]["default_route"] == "echo"
    status = helm("status", RELEASE, "--namespace", SYSTEM, "--kubeconfig", str(cluster.kubeconfig))
    assert "STATUS: deployed" in status.stdout


def test_an_annotated_pod_is_stored_with_the_native_sidecar(cluster: Cluster, installed: Injector) -> None:
    before = installed.decisions("injected", "injected")
    cluster.create(f"/api/v1/namespaces/{APPS}/pods", pod("annotated", ASKED))
    stored = cluster.get(f"/api/v1/namespaces/{APPS}/pods/annotated")
    spec = stored["spec"]
    assert names(spec["initContainers"]) == ["orchestrator-sidecar"]
    sidecar = spec["initContainers"][0]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == "ghcr.io/orchestrator/sidecar:0.1.0"
    assert sidecar["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert env(sidecar)["SIDECAR_TOKEN"] == {"secretKeyRef": {"name": "sidecar-token", "key": "token"}}
    app = spec["containers"][0]
    assert env(app)["ORCHESTRATOR_SIDECAR_ADDRESS"] == "unix:///var/run/orchestrator-sidecar/sidecar.sock"
    assert {"name": "orchestrator-sidecar-socket", "mountPath": "/var/run/orchestrator-sidecar"} in app[
        "volumeMounts"
    ]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert (
        volumes["orchestrator-sidecar-config"]["configMap"]["name"]
        == f"{RELEASE}-orchestrator-sidecar-config"
    )
    assert stored["metadata"]["annotations"]["orchestrator.sidecar/status"] == "injected"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert installed.decisions("injected", "injected") == before + 1
    line = [r for r in installed.log_lines() if r.get("message") == "injection decision"][-1]
    assert (line["decision"], line["pod"], line["namespace"]) == ("injected", "annotated", APPS)


def test_a_pod_without_the_annotation_is_left_alone(cluster: Cluster, installed: Injector) -> None:
    cluster.create(f"/api/v1/namespaces/{APPS}/pods", pod("plain"))
    spec = cluster.get(f"/api/v1/namespaces/{APPS}/pods/plain")["spec"]
    assert names(spec["containers"]) == ["app"] and not spec.get("initContainers")
    assert installed.decisions("skipped", "not_requested") >= 1


def test_annotations_select_classic_tcp_and_resources(cluster: Cluster, installed: Injector) -> None:
    annotations = {
        **ASKED,
        "orchestrator.sidecar/mode": "classic",
        "orchestrator.sidecar/transport": "tcp",
        "orchestrator.sidecar/cpu-limit": "250m",
    }
    cluster.create(f"/api/v1/namespaces/{APPS}/pods", pod("classic", annotations))
    spec = cluster.get(f"/api/v1/namespaces/{APPS}/pods/classic")["spec"]
    assert names(spec["containers"]) == ["app", "orchestrator-sidecar"]
    sidecar = spec["containers"][1]
    assert sidecar["resources"]["limits"]["cpu"] == "250m"
    assert sidecar["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert env(spec["containers"][0])["ORCHESTRATOR_SIDECAR_ADDRESS"] == "127.0.0.1:50051"


def test_a_bad_annotation_value_is_refused_by_the_api_server(cluster: Cluster, installed: Injector) -> None:
    status, answer = cluster.request(
        "POST",
        f"/api/v1/namespaces/{APPS}/pods",
        pod("bad", {**ASKED, "orchestrator.sidecar/transport": "udp"}),
    )
    assert status == 400, answer
    assert "orchestrator.sidecar/transport: 'udp' is not one of unix, tcp" in answer["message"]
    assert cluster.request("GET", f"/api/v1/namespaces/{APPS}/pods/bad")[0] == 404


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        ({"orchestrator.sidecar/memory-request": "512Mi"}, "orchestrator.sidecar/memory-request: 512Mi"),
        ({"orchestrator.sidecar/cpu-limit": "10m"}, "orchestrator.sidecar/cpu-limit: 10m"),
        (
            {"orchestrator.sidecar/cpu-request": "2", "orchestrator.sidecar/cpu-limit": "1500m"},
            "orchestrator.sidecar/cpu-request: 2",
        ),
    ],
)
def test_a_resource_annotation_that_puts_a_request_above_its_limit_is_refused_by_name(
    cluster: Cluster, installed: Injector, annotations: dict[str, str], named: str
) -> None:
    """Injected, the pod was refused by the API server's validation for a field the application
    never wrote (spec.initContainers[0].resources.requests: must be less than or equal to memory
    limit of 256Mi), and the injector counted it injected."""
    status, answer = cluster.request(
        "POST", f"/api/v1/namespaces/{APPS}/pods", pod("over-limit", {**ASKED, **annotations})
    )
    assert status == 400, answer
    assert named in answer["message"] and "above" in answer["message"], answer["message"]
    assert installed.decisions("rejected", "invalid_annotation") >= 1


def test_a_resource_annotation_within_the_limits_is_admitted(cluster: Cluster, installed: Injector) -> None:
    annotations = {
        **ASKED,
        "orchestrator.sidecar/memory-request": "0.25Gi",
        "orchestrator.sidecar/cpu-limit": "1e3",
    }
    status, answer = cluster.request(
        "POST", f"/api/v1/namespaces/{APPS}/pods?dryRun=All", pod("within", annotations)
    )
    assert status == 201, answer
    resources = answer["spec"]["initContainers"][0]["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == "256Mi"  # 0.25Gi, canonical


def test_a_config_annotation_no_configmap_can_be_named_is_refused(
    cluster: Cluster, installed: Injector
) -> None:
    """The API server takes `team..config` in a pod's configMap volume, but no ConfigMap can be named
    so: the pod was stored and waited for the volume forever."""
    status, answer = cluster.request(
        "POST",
        f"/api/v1/namespaces/{APPS}/pods?dryRun=All",
        pod("bad-config", {**ASKED, "orchestrator.sidecar/config": "team..config"}),
    )
    assert status == 400, answer
    assert "'team..config' is not a ConfigMap name" in answer["message"]
    config_map = {"metadata": {"name": "team..config"}}
    assert cluster.request("POST", f"/api/v1/namespaces/{APPS}/configmaps?dryRun=All", config_map)[0] == 422


def test_a_container_with_the_sidecars_name_is_refused(cluster: Cluster, installed: Injector) -> None:
    clash = pod("clash", ASKED)
    clash["spec"]["containers"].append({"name": "orchestrator-sidecar", "image": "other:1"})
    status, answer = cluster.request("POST", f"/api/v1/namespaces/{APPS}/pods", clash)
    assert status == 400 and "already has a container named 'orchestrator-sidecar'" in answer["message"]


def test_a_windows_pod_asking_for_the_sidecar_is_refused_with_the_reason(
    cluster: Cluster, installed: Injector
) -> None:
    """Injected, the API server refused it for the sidecar's Linux securityContext (runAsUser,
    capabilities, seccomp...), a message about fields the application never set."""
    status, answer = cluster.request(
        "POST", f"/api/v1/namespaces/{APPS}/pods", pod("windows", ASKED, os={"name": "windows"})
    )
    assert status == 400, answer
    assert "spec.os.name is windows: the sidecar runs on Linux nodes only" in answer["message"]
    assert installed.decisions("rejected", "windows_pod") >= 1


def test_a_pod_outside_the_sidecar_namespaces_is_left_alone(cluster: Cluster, installed: Injector) -> None:
    """The sidecar's ConfigMap (and the token Secret) exist in the sidecarNamespaces only: injected
    in another namespace, a pod would wait forever for a volume that is not there."""
    cluster.create("/api/v1/namespaces", {"metadata": {"name": "elsewhere"}})
    cluster.create("/api/v1/namespaces/elsewhere/pods", pod("asks-elsewhere", ASKED))
    spec = cluster.get("/api/v1/namespaces/elsewhere/pods/asks-elsewhere")["spec"]
    assert names(spec["containers"]) == ["app"] and not spec.get("initContainers")
    status, _ = cluster.request(
        "GET", f"/api/v1/namespaces/elsewhere/configmaps/{RELEASE}-orchestrator-sidecar-config"
    )
    assert status == 404  # what the injected pod would have mounted


def test_a_namespace_selected_by_label_without_the_config_refuses_pods_by_name(
    cluster: Cluster, installed: Injector, tmp_path: Path
) -> None:
    """Namespaces chosen by a label (webhook.namespaceSelector) rather than listed in
    sidecarNamespaces have no copy of the sidecar's ConfigMap: an annotated pod there was injected
    with a volume of a ConfigMap its namespace does not have, and stayed ContainerCreating forever
    (a Deployment's pods all of them). It is refused, saying what to do; with a ConfigMap of its own
    namespace named by the config annotation it is injected."""
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", "labelled-system")
    for name, labels in (("labelled-system", {}), ("team-a", {"sidecar": "enabled"})):
        cluster.create("/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}})
    port = free_port()
    helm(
        "install", "labelled", str(CHART), *kube,
        "--set", f"webhook.url=https://127.0.0.1:{port}/inject",
        "--set", f"webhook.caBundle={base64.b64encode(installed.tls.ca_pem).decode()}",
        "--set", "webhook.namespaceSelector.matchLabels.sidecar=enabled",
    )  # fmt: skip
    settings = chart_settings(
        tmp_path,
        "--set",
        "webhook.namespaceSelector.matchLabels.sidecar=enabled",
        release="labelled",
        namespace="labelled-system",
    )
    assert settings is not None
    injector = Injector(tmp_path, settings, installed.tls, port)
    injector.start()
    try:
        status, answer = cluster.request("POST", "/api/v1/namespaces/team-a/pods", pod("asks", ASKED))
        assert status == 400, answer
        assert "namespace team-a has no labelled-orchestrator-sidecar-config ConfigMap" in answer["message"]
        assert injector.decisions("rejected", "no_config") == 1
        cluster.create("/api/v1/namespaces/team-a/configmaps", {"metadata": {"name": "team-config"}})
        own_config = pod("own-config", {**ASKED, "orchestrator.sidecar/config": "team-config"})
        stored = cluster.create("/api/v1/namespaces/team-a/pods", own_config)
        assert names(stored["spec"]["initContainers"]) == ["orchestrator-sidecar"]
    finally:
        injector.stop()
        helm("uninstall", "labelled", *kube)


def test_a_pod_labelled_false_never_reaches_the_webhook(cluster: Cluster, installed: Injector) -> None:
    before = sum(
        installed.decisions(d, r) for d, r in (("skipped", "disabled"), ("skipped", "not_requested"))
    )
    opted_out = pod("opted-out", ASKED)
    opted_out["metadata"]["labels"] = {"orchestrator.sidecar/inject": "false"}
    cluster.create(f"/api/v1/namespaces/{APPS}/pods", opted_out)
    assert not cluster.get(f"/api/v1/namespaces/{APPS}/pods/opted-out")["spec"].get("initContainers")
    after = sum(installed.decisions(d, r) for d, r in (("skipped", "disabled"), ("skipped", "not_requested")))
    assert after == before and installed.decisions("injected", "injected") >= 1


def test_a_deployments_pods_get_the_sidecar(cluster: Cluster, installed: Injector) -> None:
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": ASKED},
                "spec": {"containers": [{"name": "web", "image": "registry.example/web:1"}]},
            },
        },
    }
    cluster.create(f"/apis/apps/v1/namespaces/{APPS}/deployments", deployment)
    pods: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while len(pods) < 2 and time.monotonic() < deadline:
        pods = cluster.get(f"/api/v1/namespaces/{APPS}/pods?labelSelector=app%3Dweb")["items"]
        time.sleep(0.2)
    assert len(pods) == 2, "the controller-manager did not create the Deployment's pods"
    for p in pods:
        assert p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
        assert names(p["spec"]["initContainers"]) == ["orchestrator-sidecar"]
        assert "ORCHESTRATOR_SIDECAR_ADDRESS" in env(p["spec"]["containers"][0])


def test_offline_injected_workloads_pass_the_api_servers_validation(
    cluster: Cluster, installed: Injector, tmp_path: Path
) -> None:
    manifests = tmp_path / "workloads.yaml"
    template = {
        "metadata": {"labels": {"app": "batch"}},
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "main", "image": "registry.example/job:1"}],
        },
    }
    selector = {"matchLabels": {"app": "batch"}}
    always = {**template, "spec": {"containers": template["spec"]["containers"]}}  # restartPolicy Always
    docs = [
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job"},
         "spec": {"template": template}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cron"},
         "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
         "spec": {"serviceName": "db", "selector": selector, "template": always}},
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
         "spec": {"selector": selector, "template": always}},
    ]  # fmt: skip
    manifests.write_text(yaml.safe_dump_all(docs))
    command = [sys.executable, "-m", "sidecar", "inject", "-f", str(manifests)]
    out = subprocess.run(
        [*command, "--settings", str(installed.settings)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    paths = {
        "Job": "/apis/batch/v1",
        "CronJob": "/apis/batch/v1",
        "StatefulSet": "/apis/apps/v1",
        "DaemonSet": "/apis/apps/v1",
    }
    for doc in yaml.safe_load_all(out.stdout):
        plural = doc["kind"].lower() + "s"
        status, answer = cluster.request(
            "POST", f"{paths[doc['kind']]}/namespaces/{APPS}/{plural}?dryRun=All", doc
        )
        assert status == 201, answer
        stored = (
            answer["spec"]["jobTemplate"]["spec"]["template"]
            if doc["kind"] == "CronJob"
            else answer["spec"]["template"]
        )
        assert names(stored["spec"]["initContainers"]) == ["orchestrator-sidecar"], doc["kind"]
        assert stored["spec"]["initContainers"][0]["restartPolicy"] == "Always"


def test_an_offline_template_with_empty_metadata_is_injected_and_admitted(
    cluster: Cluster, installed: Injector, tmp_path: Path
) -> None:
    """`metadata:` with nothing under it (null), which kubectl and the API server take for a Job's
    template, crashed `sidecar inject` with a traceback (AttributeError) and wrote nothing."""
    job = """apiVersion: batch/v1
kind: Job
metadata:
  name: empty-metadata
spec:
  template:
    metadata:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: registry.example/job:1
"""
    path = tmp_path / "job.yaml"
    path.write_text(job)
    command = [
        sys.executable,
        "-m",
        "sidecar",
        "inject",
        "-f",
        str(path),
        "--settings",
        str(installed.settings),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    status, answer = cluster.request(
        "POST", f"/apis/batch/v1/namespaces/{APPS}/jobs?dryRun=All", yaml_text=result.stdout
    )
    assert status == 201, answer
    template = answer["spec"]["template"]
    assert names(template["spec"]["initContainers"]) == ["orchestrator-sidecar"]
    assert template["metadata"]["annotations"]["orchestrator.sidecar/status"] == "injected"


def test_offline_injected_yaml_keeps_values_a_yaml_1_1_reader_would_retype(
    cluster: Cluster, installed: Injector, tmp_path: Path
) -> None:
    """The output is posted as YAML, which the API server reads like kubectl (sigs.k8s.io/yaml, YAML
    1.1): written bare, "y" was a boolean and the pod was refused (an env value must be a string)."""
    values = {"FLAG": "y", "SCALE": "1e3", "RATE": "1.5e3", "MODE": "off"}
    manifest = pod("yaml-values", ASKED)
    manifest["spec"]["containers"][0]["env"] = [{"name": k, "value": v} for k, v in values.items()]
    path = tmp_path / "pod.yaml"
    path.write_text(yaml.safe_dump(manifest))
    command = [
        sys.executable,
        "-m",
        "sidecar",
        "inject",
        "-f",
        str(path),
        "--settings",
        str(installed.settings),
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    status, answer = cluster.request("POST", f"/api/v1/namespaces/{APPS}/pods?dryRun=All", yaml_text=out)
    assert status == 201, answer
    stored = env(answer["spec"]["containers"][0])
    assert {k: stored[k] for k in values} == values


def chart_settings(
    directory: Path, *values: str, release: str = RELEASE, namespace: str = SYSTEM
) -> Path | None:
    """The injector settings the chart renders with these values (None: the chart refuses them)."""
    rendered = helm("template", release, str(CHART), "--namespace", namespace, *values, check=False)
    if rendered.returncode != 0:
        return None
    for doc in yaml.safe_load_all(rendered.stdout):
        if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-injector"):
            path = directory / "injector.yaml"
            path.write_text(doc["data"]["injector.yaml"])
            return path
    raise AssertionError("no injector settings rendered")


def inject_offline(manifest: dict[str, Any], settings: Path, directory: Path) -> str:
    path = directory / "manifest.yaml"
    path.write_text(yaml.safe_dump(manifest))
    command = [sys.executable, "-m", "sidecar", "inject", "-f", str(path), "--settings", str(settings)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout


def test_resources_written_as_numbers_reach_the_injected_sidecar(
    cluster: Cluster, installed: Injector, tmp_path: Path
) -> None:
    """`cpu: 1` and `memory: 536870912` are quantities the schema (and Kubernetes) accept, but the
    injector refused such settings ("Input should be a valid string") and exited at start: a
    crash-looping injector, every pod admitted without the sidecar."""
    settings = chart_settings(
        tmp_path,
        "--set",
        "sidecar.resources.requests.cpu=1",
        "--set",
        "sidecar.resources.limits.memory=536870912",
    )
    assert settings is not None
    out = inject_offline(pod("numbers", ASKED), settings, tmp_path)
    status, answer = cluster.request("POST", f"/api/v1/namespaces/{APPS}/pods?dryRun=All", yaml_text=out)
    assert status == 201, answer
    resources = answer["spec"]["initContainers"][0]["resources"]
    assert (resources["requests"]["cpu"], resources["limits"]["memory"]) == ("1", "536870912")


def test_an_ephemeral_storage_budget_reaches_the_injected_sidecar(
    cluster: Cluster, installed: Injector, tmp_path: Path
) -> None:
    """The schema offers sidecar.resources ephemeral-storage (the ledger's SQLite file lives in an
    emptyDir), but the injector refused such settings at start (Extra inputs are not permitted): a
    crash-looping injector, every pod admitted without the sidecar."""
    values = ("--set", "sidecar.resources.requests.ephemeral-storage=1Gi")
    settings = chart_settings(tmp_path, *values, "--set", "sidecar.resources.limits.ephemeral-storage=2Gi")
    assert settings is not None
    out = inject_offline(pod("storage", ASKED), settings, tmp_path)
    status, answer = cluster.request("POST", f"/api/v1/namespaces/{APPS}/pods?dryRun=All", yaml_text=out)
    assert status == 201, answer
    resources = answer["spec"]["initContainers"][0]["resources"]
    assert (resources["requests"]["ephemeral-storage"], resources["limits"]["ephemeral-storage"]) == (
        "1Gi",
        "2Gi",
    )
    over = chart_settings(tmp_path, *values, "--set", "sidecar.resources.limits.ephemeral-storage=512Mi")
    assert over is None  # a request above its limit is refused at render time, as cpu and memory are


@pytest.mark.parametrize(
    "socket_dir",
    ["/etc/orchestrator-sidecar", "/var/lib/orchestrator-sidecar/", "/run/orchestrator/", "/tmp/s"],
)
def test_every_socket_dir_the_chart_accepts_gives_pods_the_api_server_admits(
    cluster: Cluster, installed: Injector, tmp_path: Path, socket_dir: str
) -> None:
    """A socketDir equal to the sidecar's config or state mount passed the chart, and the API server
    refused every injected pod: `volumeMounts[1].mountPath: must be unique`."""
    settings = chart_settings(tmp_path, "--set", f"sidecar.socketDir={socket_dir}")
    if settings is None:
        return  # refused at install, with the reason (test_chart)
    out = inject_offline(pod("socket-dir", ASKED), settings, tmp_path)
    status, answer = cluster.request("POST", f"/api/v1/namespaces/{APPS}/pods?dryRun=All", yaml_text=out)
    assert status == 201, answer


def test_with_the_webhook_down_failure_policy_ignore_admits_the_pod_uninjected(
    cluster: Cluster, installed: Injector
) -> None:
    before = cluster.metric("apiserver_admission_webhook_fail_open_count", name=WEBHOOK)
    installed.stop()
    try:
        cluster.create(f"/api/v1/namespaces/{APPS}/pods", pod("while-down", ASKED))
    finally:
        installed.start()
    spec = cluster.get(f"/api/v1/namespaces/{APPS}/pods/while-down")["spec"]
    assert names(spec["containers"]) == ["app"] and not spec.get("initContainers")
    assert cluster.metric("apiserver_admission_webhook_fail_open_count", name=WEBHOOK) == before + 1
    cluster.create(f"/api/v1/namespaces/{APPS}/pods", pod("after-restart", ASKED))
    assert cluster.get(f"/api/v1/namespaces/{APPS}/pods/after-restart")["spec"]["initContainers"]


def test_the_generated_certificate_survives_an_upgrade(cluster: Cluster, installed: Injector) -> None:
    """An in-cluster injector release (no url): its generated CA is looked up, not regenerated."""
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", "certs")
    cluster.create("/api/v1/namespaces", {"metadata": {"name": "certs"}})
    never = (
        "webhook.namespaceSelector.matchLabels.never=match"  # its webhook must not catch other tests' pods
    )
    helm("install", "certs", str(CHART), *kube, "--set", never)
    path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/certs-orchestrator-sidecar"
    first_bundle = cluster.get(path)["webhooks"][0]["clientConfig"]["caBundle"]
    first_secret = cluster.get("/api/v1/namespaces/certs/secrets/certs-orchestrator-sidecar-injector-tls")[
        "data"
    ]
    assert first_bundle == first_secret["ca.crt"]
    helm("upgrade", "certs", str(CHART), *kube, "--set", never, "--set", "injector.replicas=3")
    assert cluster.get(path)["webhooks"][0]["clientConfig"]["caBundle"] == first_bundle
    assert (
        cluster.get("/api/v1/namespaces/certs/secrets/certs-orchestrator-sidecar-injector-tls")["data"]
        == first_secret
    )
    deployment = cluster.get("/apis/apps/v1/namespaces/certs/deployments/certs-orchestrator-sidecar-injector")
    assert deployment["spec"]["replicas"] == 3
    helm("uninstall", "certs", *kube)


@pytest.mark.parametrize("namespace", ["kube-system", "guarded"])
def test_a_custom_namespace_selector_still_keeps_the_webhook_out_of_the_system_and_its_own_namespace(
    cluster: Cluster, installed: Injector, namespace: str
) -> None:
    """An opt-out selector (every namespace not labelled disabled) with failurePolicy Fail sent
    kube-system's pods to the webhook too: with the injector down, CoreDNS, kube-proxy or a CNI
    pod could not be created, nor the injector's own pods in its namespace under a custom
    objectSelector, so the cluster could not bring the injector back."""
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", "guarded")
    status, _ = cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": "guarded"}})
    assert status in (201, 409)
    helm(
        "install", "guarded", str(CHART), *kube,
        "--set", f"webhook.url=https://127.0.0.1:{free_port()}/inject",  # nothing listens: injector down
        "--set", f"webhook.caBundle={base64.b64encode(installed.tls.ca_pem).decode()}",
        "--set", "webhook.failurePolicy=Fail",
        "--set", "webhook.namespaceSelector.matchExpressions[0].key=sidecar-injection",
        "--set", "webhook.namespaceSelector.matchExpressions[0].operator=NotIn",
        "--set", "webhook.namespaceSelector.matchExpressions[0].values={disabled}",
        "--set", "webhook.objectSelector.matchLabels.tier=app",
    )  # fmt: skip
    try:
        created = pod("system-pod", ASKED)
        created["metadata"]["labels"] = {"tier": "app"}
        status, answer = cluster.request("POST", f"/api/v1/namespaces/{namespace}/pods?dryRun=All", created)
        assert status == 201, answer.get("message")
    finally:
        helm("uninstall", "guarded", *kube)


@pytest.mark.parametrize("release", ["v1.2", "9lives"])
def test_release_names_helm_accepts_install_an_injector_service(
    cluster: Cluster, installed: Injector, release: str
) -> None:
    """A release name with a dot or a leading digit made a Service name the API server refuses
    (a DNS-1035 label), and `helm install` failed halfway."""
    namespace = "names-" + release.replace(".", "-")
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", namespace)
    cluster.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    never = "webhook.namespaceSelector.matchLabels.never=match"
    helm("install", release, str(CHART), *kube, "--set", never)
    path = (
        f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{release}-orchestrator-sidecar"
    )
    service = cluster.get(path)["webhooks"][0]["clientConfig"]["service"]["name"]
    assert cluster.get(f"/api/v1/namespaces/{namespace}/services/{service}")["metadata"]["name"] == service
    helm("uninstall", release, *kube)


def test_names_that_yaml_reads_as_numbers_or_booleans_install(cluster: Cluster, installed: Injector) -> None:
    """A release named 2024, a namespace named 1e3 or on, a PriorityClass named 1000: valid names
    all, but written bare in the manifests YAML read them as a number or a boolean, and helm install
    failed (cannot unmarshal number into Go struct field ObjectMeta.metadata.namespace of type
    string)."""
    for namespace in ("1e3", "on"):
        cluster.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", "1e3")
    helm(
        "install", "2024", str(CHART), *kube,
        "--set", "webhook.namespaceSelector.matchLabels.never=match",
        "--set-string", "sidecarNamespaces[0]=on",
        "--set-string", "injector.priorityClassName=1000",
        "--set-string", "imagePullSecrets[0]=1e3",
        "--set-string", "fullnameOverride=2024",
    )  # fmt: skip
    try:
        config = cluster.get("/api/v1/namespaces/on/configmaps/2024-config")
        assert config["metadata"]["labels"]["app.kubernetes.io/instance"] == "2024"
        deployment = cluster.get("/apis/apps/v1/namespaces/1e3/deployments/i2024-injector")
        spec = deployment["spec"]["template"]["spec"]
        assert (spec["priorityClassName"], spec["imagePullSecrets"]) == ("1000", [{"name": "1e3"}])
    finally:
        helm("uninstall", "2024", *kube)


def test_helm_3_installs_and_uninstalls_the_chart(cluster: Cluster, installed: Injector) -> None:
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", "helm3")
    cluster.create("/api/v1/namespaces", {"metadata": {"name": "helm3"}})
    never = "webhook.namespaceSelector.matchLabels.never=match"
    helm("install", "h3", str(CHART), *kube, "--set", never, binary="helm3")
    assert "STATUS: deployed" in helm("status", "h3", *kube, binary="helm3").stdout
    path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/h3-orchestrator-sidecar"
    assert cluster.get(path)["webhooks"][0]["clientConfig"]["service"]["namespace"] == "helm3"
    helm("uninstall", "h3", *kube, binary="helm3")
    assert cluster.request("GET", path)[0] == 404


def test_fail_closed_for_the_pods_that_asked_and_open_for_every_other(
    cluster: Cluster, installed: Injector, tmp_path: Path
) -> None:
    """Under failurePolicy Fail every pod the webhook's selectors let through is refused while no
    injector answers, those that never asked for the sidecar too. Selecting by the inject label (the
    recipe in docs/kubernetes.md) limits Fail to the pods that asked: the rest never reach the
    webhook."""
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", "strict-system")
    for name in ("strict-system", "strict-apps"):
        cluster.create("/api/v1/namespaces", {"metadata": {"name": name}})
    port = free_port()  # no injector there yet: it is down
    recipe = (
        "--set", "webhook.failurePolicy=Fail",
        "--set-string", "webhook.objectSelector.matchLabels.orchestrator\\.sidecar/inject=true",
        "--set", "sidecar.injectByDefault=true",
        "--set", "sidecarNamespaces={strict-apps}",
    )  # fmt: skip
    helm(
        "install", "strict", str(CHART), *kube, *recipe,
        "--set", f"webhook.url=https://127.0.0.1:{port}/inject",
        "--set", f"webhook.caBundle={base64.b64encode(installed.tls.ca_pem).decode()}",
    )  # fmt: skip
    try:
        plain = cluster.create("/api/v1/namespaces/strict-apps/pods", pod("plain"))
        assert not plain["spec"].get("initContainers")  # admitted: it never reached the webhook
        asked = pod("asked")
        asked["metadata"]["labels"] = {"orchestrator.sidecar/inject": "true"}
        status, answer = cluster.request("POST", "/api/v1/namespaces/strict-apps/pods", asked)
        assert status >= 400 and "failed calling webhook" in answer["message"], answer  # refused: Fail
        settings = chart_settings(tmp_path, *recipe, release="strict", namespace="strict-system")
        assert settings is not None
        injector = Injector(tmp_path, settings, installed.tls, port)
        injector.start()
        try:
            stored = cluster.create("/api/v1/namespaces/strict-apps/pods", asked)
            assert names(stored["spec"]["initContainers"]) == ["orchestrator-sidecar"]  # the label alone
        finally:
            injector.stop()
    finally:
        helm("uninstall", "strict", *kube)


def test_a_pod_with_pod_level_resources_is_admitted_with_the_sidecars_added(
    cluster: Cluster, installed: Injector
) -> None:
    """Pod-level resources (beta and on in Kubernetes 1.34): a pod budgeted for its application alone
    was refused once injected ("must be greater than or equal to aggregate container requests")."""
    budgeted = pod("budgeted", ASKED)
    budgeted["spec"]["resources"] = {
        "requests": {"cpu": "20m", "memory": "64Mi"},
        "limits": {"memory": "128Mi"},
    }
    stored = cluster.create(f"/api/v1/namespaces/{APPS}/pods", budgeted)
    assert names(stored["spec"]["initContainers"]) == ["orchestrator-sidecar"]
    assert stored["spec"]["resources"] == {
        "requests": {"cpu": "70m", "memory": "160Mi"},
        "limits": {"memory": "384Mi"},
    }
