"""What a real API server's own admission does to injected pods and to everything the chart renders:
Pod Security "restricted", a LimitRange's defaults (applied to the sidecar the webhook added too), and the
validation of every object the chart renders with every value set (tests/k8s/values-everything.yaml)."""

from __future__ import annotations

import base64
import copy
import http.server
import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.k8s.cluster import Cluster, start_cluster
from tests.k8s.test_cluster import ASKED, Injector, chart_settings, names, pod
from tests.k8s.test_webhook_certificate import install_cert_manager_crds
from tests.k8s.tls import make_tls
from tests.k8s.tools import CHART, helm, template
from tests.support.kms import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SYSTEM, RESTRICTED, LIMITED = "policies-system", "restricted-apps", "limited-apps"
EVERYTHING = Path(__file__).with_name("values-everything.yaml")
# A container Pod Security "restricted" admits (the pod's own part; the injector adds the sidecar's)
LOCKED_DOWN = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with start_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def injector(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Injector]:
    """The chart installed for RESTRICTED (Pod Security enforced) and LIMITED, its injector running."""
    directory = tmp_path_factory.mktemp("injector")
    tls, port = make_tls(directory / "tls"), free_port()
    enforce = {"pod-security.kubernetes.io/enforce": "restricted"}
    for name, labels in ((SYSTEM, enforce), (RESTRICTED, enforce), (LIMITED, {})):
        cluster.create("/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}})
    values = (
        "--set", f"webhook.url=https://127.0.0.1:{port}/inject",
        "--set", f"webhook.caBundle={base64.b64encode(tls.ca_pem).decode()}",
        "--set", f"sidecarNamespaces={{{RESTRICTED},{LIMITED}}}",
    )  # fmt: skip
    kube = ("--kubeconfig", str(cluster.kubeconfig), "--namespace", SYSTEM)
    helm("install", "policies", str(CHART), *kube, *values)
    settings = chart_settings(directory, *values, release="policies", namespace=SYSTEM)
    assert settings is not None
    running = Injector(directory, settings, tls, port)
    running.start()
    yield running
    running.stop()
    helm("uninstall", "policies", *kube)


def locked_down(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    p = pod(name, annotations)
    p["spec"]["containers"][0]["securityContext"] = copy.deepcopy(LOCKED_DOWN)
    return p


@pytest.mark.parametrize("mode", ["native", "classic"])
def test_an_injected_pod_passes_pod_security_restricted(
    cluster: Cluster, injector: Injector, mode: str
) -> None:
    """The namespace enforces "restricted" after the webhook has added the sidecar: what it adds
    (securityContext, volumes, ports, probes) must pass too, or every injected pod there is refused."""
    path = f"/api/v1/namespaces/{RESTRICTED}/pods?dryRun=All"
    annotations = {**ASKED, "orchestrator.sidecar/mode": mode}
    status, answer = cluster.request("POST", path, locked_down(f"strict-{mode}", annotations))
    assert status == 201, answer.get("message")
    spec = answer["spec"]
    injected = spec["initContainers"] if mode == "native" else spec["containers"][1:]
    assert names(injected) == ["orchestrator-sidecar"]
    status, answer = cluster.request("POST", path, pod(f"loose-{mode}", annotations))  # the control
    assert status == 403 and "violates PodSecurity" in answer["message"], answer


def test_the_injectors_own_pods_pass_pod_security_restricted(cluster: Cluster, injector: Injector) -> None:
    """A release namespace that enforces "restricted" (as platform namespaces often do) must still
    let the injector's ReplicaSet create its pods."""
    [deployment] = [o for o in template(release="policies", namespace=SYSTEM) if o["kind"] == "Deployment"]
    created = {"apiVersion": "v1", "kind": "Pod", **deployment["spec"]["template"]}
    created["metadata"] = {**created["metadata"], "name": "injector-pod"}
    status, answer = cluster.request("POST", f"/api/v1/namespaces/{SYSTEM}/pods?dryRun=All", created)
    assert status == 201, answer.get("message")


def test_a_limit_ranges_defaults_reach_the_injected_sidecar(cluster: Cluster, injector: Injector) -> None:
    """A namespace's LimitRange defaults (what lets a ResourceQuota on limits.cpu admit containers
    that state no CPU limit, as the sidecar does not) are applied to the sidecar the webhook added
    too, not only to the containers the pod was created with."""
    limits = {
        "metadata": {"name": "cpu"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "default": {"cpu": "500m"}}]},
    }
    cluster.create(f"/api/v1/namespaces/{LIMITED}/limitranges", limits)
    status, answer = cluster.request(
        "POST", f"/api/v1/namespaces/{LIMITED}/pods?dryRun=All", pod("ranged", ASKED)
    )
    assert status == 201, answer.get("message")
    [sidecar] = answer["spec"]["initContainers"]
    assert sidecar["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}  # the namespace's cpu
    assert sidecar["resources"]["requests"] == {"cpu": "50m", "memory": "96Mi"}  # the chart's own
    assert "orchestrator-sidecar" in answer["metadata"]["annotations"]["kubernetes.io/limit-ranger"]


API = {  # kind: (API path prefix, plural) of what the chart renders, monitoring CRs aside
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "Certificate": ("/apis/cert-manager.io/v1", "certificates"),
    "Issuer": ("/apis/cert-manager.io/v1", "issuers"),
}
MONITORING = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}  # the prometheus-operator's CRDs


@pytest.mark.parametrize("values", [["-f", str(EVERYTHING)], ["--set", "certManager.enabled=true"], []])
def test_every_object_the_chart_renders_is_accepted_by_the_api_server(
    cluster: Cluster, values: list[str]
) -> None:
    """Linted and rendered is not valid: the API server's validation of each object (server-side dry
    run), with every value of the chart set (values-everything.yaml)."""
    install_cert_manager_crds(cluster)
    for namespace in ("everything", "shop", "web"):
        cluster.request("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
    objects = template(*values, release="all", namespace="everything")
    assert {o["kind"] for o in objects} - MONITORING - set(API) <= {"MutatingWebhookConfiguration"}
    for o in objects:
        if o["kind"] in MONITORING:
            continue
        if o["kind"] == "MutatingWebhookConfiguration":
            path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
        else:
            prefix, plural = API[o["kind"]]
            path = f"{prefix}/namespaces/{o['metadata']['namespace']}/{plural}"
        status, answer = cluster.request("POST", path + "?dryRun=All", o)
        assert status == 201, (o["kind"], o["metadata"]["name"], answer.get("message"))


class _LabelWebhook(http.server.BaseHTTPRequestHandler):
    """Another mutating webhook, called after the injector: it labels every pod."""

    calls = 0

    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        labels = review["request"]["object"]["metadata"].get("labels")
        op = {"op": "add", "path": "/metadata/labels/other-webhook", "value": "was-here"}
        if labels is None:
            op = {"op": "add", "path": "/metadata/labels", "value": {"other-webhook": "was-here"}}
        response = {
            "uid": review["request"]["uid"],
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps([op]).encode()).decode(),
        }
        body = json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_reinvoked_after_another_webhook_the_injector_leaves_the_pod_as_it_is(
    cluster: Cluster, injector: Injector
) -> None:
    """reinvocationPolicy IfNeeded: a webhook called after the injector changed the pod, so the API
    server called the injector again, with the injected pod: it is left as it is (one sidecar, the
    other webhook's change kept)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LabelWebhook)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(injector.tls.cert, injector.tls.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "zz-other-webhook"},  # called after policies-orchestrator-sidecar
        "webhooks": [
            {
                "name": "label.other.example",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "reinvocationPolicy": "Never",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{server.server_address[1]}/mutate",
                    "caBundle": base64.b64encode(injector.tls.ca_pem).decode(),
                },
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": LIMITED}},
            }
        ],
    }
    path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
    cluster.create(path, webhook)
    try:
        before = injector.decisions("skipped", "already_injected")
        deadline = time.monotonic() + 30
        while True:  # the API server picks the new configuration up within a moment
            stored = cluster.create(
                f"/api/v1/namespaces/{LIMITED}/pods", pod(f"twice-{_LabelWebhook.calls}", ASKED)
            )
            if stored["metadata"].get("labels", {}).get("other-webhook") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert stored["metadata"]["labels"]["other-webhook"] == "was-here"
        assert names(stored["spec"]["initContainers"]) == ["orchestrator-sidecar"]
        assert injector.decisions("skipped", "already_injected") == before + 1
    finally:
        cluster.request("DELETE", f"{path}/zz-other-webhook")
        server.shutdown()
        server.server_close()
