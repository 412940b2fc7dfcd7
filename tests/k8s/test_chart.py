"""The chart, rendered and checked: helm lint, helm template with several value sets, the schema,
`sidecar check-config` on the rendered config, and `promtool check rules` on the rendered alerts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.injector.settings import InjectorSettings, load_settings
from tests.k8s.tools import CHART, find, helm, template
from tests.support.prometheus import binary


def sets(*pairs: str) -> list[str]:
    """`--set` arguments; a pair starting with `string:` is passed with `--set-string`."""
    out: list[str] = []
    for pair in pairs:
        out += (
            ["--set-string", pair.removeprefix("string:")] if pair.startswith("string:") else ["--set", pair]
        )
    return out


def _expression(selector: str, operator: str, *more: str) -> list[str]:
    """--set arguments for webhook.<selector>.matchExpressions[0] with this operator."""
    at = f"webhook.{selector}.matchExpressions[0]"
    return sets(f"{at}.key=team", f"{at}.operator={operator}", *(f"{at}.{m}" for m in more))


EVERYTHING = Path(__file__).with_name("values-everything.yaml")
ROLE = "string:serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/llm"
VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    "cert-manager": sets("certManager.enabled=true"),
    "cert-manager-issuer": sets(
        "certManager.enabled=true",
        "certManager.issuerRef.name=corp-ca",
        "certManager.issuerRef.kind=ClusterIssuer",
    ),
    "classic-tcp-token": sets(
        "sidecar.mode=classic",
        "sidecar.transport=tcp",
        "sidecar.tokenSecret.name=sidecar-token",
        "config.settings.auth.token.env=SIDECAR_TOKEN",
        "sidecar.providerSecrets={llm-keys}",
    ),
    "monitoring": sets(
        "metrics.serviceMonitor.enabled=true",
        "metrics.podMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "serviceAccount.create=true",
        ROLE,
    ),
    "everything": ["-f", str(EVERYTHING)],
    "external-injector": sets(
        "webhook.url=https://127.0.0.1:8443/inject",
        "webhook.caBundle=Zm9v",
        "webhook.failurePolicy=Fail",
        "injector.podDisruptionBudget.enabled=false",
    ),
}
LONG_RELEASE = "a-release-name-as-long-as-helm-allows-" + "x" * 15  # 53 characters


def test_helm_lint_is_clean_also_strict() -> None:
    for args in ([], ["--strict"]):
        result = helm("lint", str(CHART), *args)
        assert "0 chart(s) failed" in result.stdout
        assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_value_set_renders_labelled_objects_with_short_names(name: str) -> None:
    objects = template(*VALUE_SETS[name], release=LONG_RELEASE)
    assert objects
    for o in objects:
        metadata = o["metadata"]
        assert len(metadata["name"]) <= 63, metadata["name"]
        labels = metadata["labels"]
        for key in ("name", "instance", "version", "component", "managed-by"):
            assert f"app.kubernetes.io/{key}" in labels, (o["kind"], key)
        assert all(len(v) <= 63 for v in labels.values())


def test_the_injector_runs_locked_down_with_probes_and_a_disruption_budget() -> None:
    objects = template()
    deployment = find(objects, "Deployment", "-injector")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:2] == ["injector", "serve"]
    # after SIGTERM it keeps answering reviews while the Service's endpoints drop the pod
    assert "--shutdown-delay=5" in container["args"] and pod["terminationGracePeriodSeconds"] == 35
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe", "startupProbe")} == {
        "/livez",
        "/readyz",
    }
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    # an upgrade's rollout never has fewer ready injectors than replicas
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pdb = find(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    service = find(objects, "Service")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_webhook_configuration() -> None:
    objects = template()
    webhook = find(objects, "MutatingWebhookConfiguration")["webhooks"][0]
    assert webhook["sideEffects"] == "None" and webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["failurePolicy"] == "Ignore" and webhook["reinvocationPolicy"] == "IfNeeded"
    assert webhook["timeoutSeconds"] == 5
    assert webhook["rules"][0]["resources"] == ["pods"] and webhook["rules"][0]["operations"] == ["CREATE"]
    excluded = webhook["namespaceSelector"]["matchExpressions"][0]
    assert excluded["operator"] == "NotIn" and {"kube-system", "apps"} <= set(excluded["values"])
    assert webhook["objectSelector"]["matchExpressions"][0]["values"] == ["false"]
    secret = find(objects, "Secret", "-injector-tls")
    assert webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert webhook["clientConfig"]["service"]["path"] == "/inject"


def test_with_sidecar_namespaces_the_webhook_selects_those_namespaces_only() -> None:
    objects = template("--set", "sidecarNamespaces={shop,web,apps}")  # apps: the release's own
    selector = find(objects, "MutatingWebhookConfiguration")["webhooks"][0]["namespaceSelector"]
    assert selector == {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shop", "web"]}
        ]
    }


def test_cert_manager_replaces_the_generated_certificate() -> None:
    objects = template(*VALUE_SETS["cert-manager"])
    assert not [o for o in objects if o["kind"] == "Secret"]
    certificate = find(objects, "Certificate", "-injector")  # the serving one (its CA: -injector-ca)
    assert certificate["spec"]["issuerRef"]["kind"] == "Issuer"
    assert "apps-injector" not in certificate["spec"]["secretName"]
    mwc = find(objects, "MutatingWebhookConfiguration")
    assert (
        mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        == f"apps/{certificate['metadata']['name']}"
    )
    assert "caBundle" not in mwc["webhooks"][0]["clientConfig"]
    objects = template(*VALUE_SETS["cert-manager-issuer"])
    assert find(objects, "Certificate")["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}
    assert not [o for o in objects if o["kind"] == "Issuer"]


def test_the_injector_settings_are_valid_and_reference_secrets_only() -> None:
    objects = template(*VALUE_SETS["classic-tcp-token"])
    settings_map = find(objects, "ConfigMap", "-injector")
    settings = InjectorSettings.model_validate(yaml.safe_load(settings_map["data"]["injector.yaml"]))
    assert settings.mode == "classic" and settings.transport == "tcp"
    assert settings.token_secret is not None and settings.token_secret.name == "sidecar-token"
    assert settings.provider_secrets == ("llm-keys",)
    assert settings.config_map == find(objects, "ConfigMap", "-config")["metadata"]["name"]


def test_an_external_injector_gets_the_url_and_no_in_cluster_deployment() -> None:
    objects = template(*VALUE_SETS["external-injector"])
    assert not [o for o in objects if o["kind"] in ("Deployment", "Service", "Secret", "PodDisruptionBudget")]
    webhook = find(objects, "MutatingWebhookConfiguration")["webhooks"][0]
    assert webhook["clientConfig"] == {"url": "https://127.0.0.1:8443/inject", "caBundle": "Zm9v"}
    assert webhook["failurePolicy"] == "Fail"


def test_monitoring_objects_and_workload_identity() -> None:
    objects = template(*VALUE_SETS["monitoring"])
    assert find(objects, "ServiceMonitor")["spec"]["endpoints"][0]["scheme"] == "https"
    assert find(objects, "PodMonitor")["spec"]["podMetricsEndpoints"][0]["port"] == "sidecar-health"
    account = find(objects, "ServiceAccount")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/llm"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "sidecar.mode=sidecar"], "/sidecar/mode"),
        (["--set", "sidecar.transport=udp"], "/sidecar/transport"),
        (["--set", "webhook.failurePolicy=Maybe"], "/webhook/failurePolicy"),
        (["--set", "webhook.timeoutSeconds=60"], "/webhook/timeoutSeconds"),
        (["--set", "sidecar.resources.limits.memory=lots"], "/sidecar/resources/limits/memory"),
        (["--set", "injector.replicas=0"], "/injector/replicas"),
        (["--set", "unknownValue=1"], "unknownValue"),
        (["--set", "webhook.url=http://plain"], "/webhook/url"),
        (["--set", "sidecar.providerSecrets={Not_A_Name}"], "/sidecar/providerSecrets/0"),
        (["--set", "sidecar.socketDir=/" + "d" * 94], "/sidecar/socketDir"),  # + /sidecar.sock > 107 bytes
        (["--set", "fullnameOverride=Orchestrator"], "/fullnameOverride"),  # no object may be named so
        (["--set", "nameOverride=LLM"], "/nameOverride"),
        (["--set", "image.digest=sha256:abc"], "/image/digest"),  # the kubelet cannot pull it
        (["--set", "image.digest=" + "a" * 64], "/image/digest"),  # no algorithm
        # the tag in the repository rendered ghcr.io/o/sidecar:1.0:0.1.0 (InvalidImageName), for the
        # injector and every injected sidecar; a capital or a space is no image reference either
        (["--set", "image.repository=ghcr.io/o/sidecar:1.0"], "/image/repository"),
        (["--set", "image.repository=ghcr.io/o/sidecar@sha256:" + "a" * 64], "/image/repository"),
        (["--set", "image.repository=GHCR.io/Org/Sidecar"], "/image/repository"),
        (["--set-string", "image.repository=ghcr.io/o/sidecar "], "/image/repository"),
        (["--set-string", "image.tag=1.2.3 "], "/image/tag"),  # the API server refuses the pods
        (["--set", "image.tag=v1/2"], "/image/tag"),
        (["--set", "image.tag=1"], "/image/tag"),  # a number: quote it
        # the API server refused the webhook configuration (values: Required value), the last object
        # helm applies: the install failed halfway, the injector running and no webhook calling it
        # the API server refused the injector's Deployment (not a DNS subdomain), helm install halfway
        (["--set", "injector.priorityClassName=Critical"], "/injector/priorityClassName"),
        # careless types and empty strings, each named
        (["--set", "injector.replicas=two"], "/injector/replicas"),
        (["--set", "sidecar.injectByDefault=yes"], "/sidecar/injectByDefault"),
        (["--set", "sidecarNamespaces=shop"], "/sidecarNamespaces"),
        (["--set", "webhook.timeoutSeconds=5s"], "/webhook/timeoutSeconds"),
        (["--set", "sidecar.tokenSecret=sidecar-token"], "/sidecar/tokenSecret"),
        (["--set", "config="], "/config"),
        (["--set-string", "sidecar.grpcPort=50051"], "/sidecar/grpcPort"),
        (["--set-string", "sidecar.logLevel="], "/sidecar/logLevel"),
        (["--set-string", "image.repository="], "/image/repository"),
        (["--set-string", "sidecar.socketDir="], "/sidecar/socketDir"),
        (["--set-string", "sidecar.addressEnv="], "/sidecar/addressEnv"),
        (["--set-string", "injector.podDisruptionBudget.minAvailable="], "/injector/podDisruptionBudget"),
        (["--set-string", "certManager.duration="], "/certManager/duration"),
        (_expression("namespaceSelector", "In"), "/webhook/namespaceSelector/matchExpressions/0"),
        (
            [
                *_expression("objectSelector", "NotIn"),
                *("--set-json", "webhook.objectSelector.matchExpressions[0].values=[]"),
            ],
            "/webhook/objectSelector/matchExpressions/0",
        ),
        (_expression("objectSelector", "Exists", "values={a}"), "/webhook/objectSelector/matchExpressions/0"),
    ],
)
@pytest.mark.parametrize("binary", ["helm", "helm3"])
def test_the_schema_refuses_bad_values(args: list[str], message: str, binary: str) -> None:
    """Both majors read the schema and name the value at fault (helm 3 assumes Kubernetes 1.20
    offline, hence the version)."""
    version = ("--kube-version", "v1.34.0")
    result = helm("template", "demo", str(CHART), *version, *args, check=False, binary=binary)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_the_schema_constrains_every_value() -> None:
    """Every leaf of values.yaml has a schema entry with a type, enum, pattern or const."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(value: Any, node: dict[str, Any], path: str) -> None:
        if isinstance(value, dict) and "properties" in node:
            assert node.get("additionalProperties") is False, f"{path or '(root)'} accepts unknown keys"
        if isinstance(value, dict) and "properties" in node and path != "config":
            for key, child in value.items():
                assert key in node["properties"], f"{path}.{key} has no schema"
                walk(child, node["properties"][key], f"{path}.{key}".lstrip("."))
        else:
            assert any(k in node for k in ("type", "enum", "pattern", "const", "anyOf")), path

    walk(values, schema, "")


def test_the_rendered_config_passes_check_config(tmp_path: Path) -> None:
    for args in ([], VALUE_SETS["classic-tcp-token"]):
        config = find(template(*args), "ConfigMap", "-config")["data"]["sidecar.yaml"]
        path = tmp_path / "sidecar.yaml"
        path.write_text(config)
        result = subprocess.run(
            [sys.executable, "-m", "sidecar", "check-config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "SIDECAR_TOKEN": "from-the-token-secret"},  # as the injector sets it
        )
        assert result.returncode == 0, result.stderr
        assert "OK" in result.stdout


def test_a_config_value_with_an_error_fails_check_config(tmp_path: Path) -> None:
    config = find(template("--set", "config.policy.default_route=nowhere"), "ConfigMap", "-config")
    path = tmp_path / "sidecar.yaml"
    path.write_text(config["data"]["sidecar.yaml"])
    result = subprocess.run(
        [sys.executable, "-m", "sidecar", "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "nowhere" in result.stderr


def test_the_alert_rules_pass_promtool(tmp_path: Path) -> None:
    rule = find(template(*VALUE_SETS["monitoring"]), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {r["alert"] for r in rule["spec"]["groups"][0]["rules"]}
    assert {
        "OrchestratorSidecarBreakerOpen",
        "OrchestratorSidecarProviderAuthFailed",
        "OrchestratorSidecarKeyBackendFailure",
        "OrchestratorSidecarUserKeysRejected",
        "OrchestratorSidecarInternalErrors",
        "OrchestratorSidecarQuotaStoreDown",
        "OrchestratorSidecarLedgerDrops",
        "OrchestratorSidecarInjectionFailedOpen",
        "OrchestratorSidecarCallsShed",
        "OrchestratorSidecarVaultTokenRenewalFailing",
    } <= alerts


DOCS = CHART.parents[1] / "docs"


def test_every_alert_links_a_runbook_page_that_exists_when_the_site_is_given() -> None:
    """At 3 a.m. the alert is the first thing read: with the documentation site's address, each one
    carries runbook_url to a page of the site's runbooks (built from docs/runbooks) that names the
    alert; without the address, none."""
    base = "https://docs.example/orchestrator/"
    rule = find(
        template(*VALUE_SETS["monitoring"], "--set", f"metrics.prometheusRule.runbookBaseUrl={base}"),
        "PrometheusRule",
    )
    for r in rule["spec"]["groups"][0]["rules"]:
        url = r["annotations"]["runbook_url"]
        assert url.startswith("https://docs.example/orchestrator/runbooks/") and url.endswith(".html"), url
        page = DOCS / "runbooks" / url.rsplit("/", 1)[1].replace(".html", ".md")
        assert page.is_file(), (r["alert"], url)
        assert r["alert"] in page.read_text(), f"{page.name} does not say what to do about {r['alert']}"
    plain = find(template(*VALUE_SETS["monitoring"]), "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert not [r["alert"] for r in plain if "runbook_url" in r["annotations"]]


def _errors(reason: str, code: str, per_minute: int) -> dict[str, str]:
    labels = f'namespace="ns",pod="p",route="chat",code="{code}",reason="{reason}"'
    return {"series": f"sidecar_errors_total{{{labels}}}", "values": f"0+{per_minute}x30"}


def _renewals(outcome: str) -> str:
    return f'sidecar_key_token_renewals_total{{namespace="ns",pod="p",outcome="{outcome}"}}'


def _fires(alert: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {"eval_time": "20m", "alertname": alert, "exp_alerts": [{"exp_labels": x} for x in labels]}


def test_the_error_alerts_tell_provider_auth_key_backend_and_user_keys_apart(tmp_path: Path) -> None:
    """`promtool test rules` on the rendered rules: each error reason fires its own alert only."""
    spec = find(template(*VALUE_SETS["monitoring"]), "PrometheusRule")["spec"]
    for rule in spec["groups"][0]["rules"]:
        rule.pop("annotations", None)  # the expectations below are about which alert fires, by label
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    where = {"namespace": "ns", "pod": "p"}
    series = [
        _errors("PROVIDER_AUTH_FAILED", "INTERNAL", 3),
        _errors("KEY_BACKEND_UNAVAILABLE", "UNAVAILABLE", 2),
        _errors("USER_KEY_REJECTED", "PERMISSION_DENIED", 1),
        {"series": 'sidecar_requests_total{namespace="ns",pod="p",route="chat"}', "values": "0+10x30"},
    ]
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    _fires(
                        "OrchestratorSidecarProviderAuthFailed",
                        {**where, "route": "chat", "severity": "critical"},
                    ),
                    _fires(
                        "OrchestratorSidecarKeyBackendFailure",
                        {**where, "reason": "KEY_BACKEND_UNAVAILABLE", "severity": "critical"},
                    ),
                    _fires("OrchestratorSidecarUserKeysRejected"),  # 1 of 10 calls per minute: below half
                    _fires("OrchestratorSidecarInternalErrors"),  # INTERNAL only for the provider key
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    _errors("USER_KEY_REJECTED", "PERMISSION_DENIED", 9),
                    _errors("INTERNAL", "INTERNAL", 1),
                    {
                        "series": 'sidecar_requests_total{namespace="ns",pod="p",route="chat"}',
                        "values": "0+10x30",
                    },
                ],
                "alert_rule_test": [
                    _fires(
                        "OrchestratorSidecarUserKeysRejected", {**where, "route": "chat", "severity": "info"}
                    ),
                    _fires(
                        "OrchestratorSidecarInternalErrors",
                        {**where, "route": "chat", "reason": "INTERNAL", "severity": "warning"},
                    ),
                    _fires("OrchestratorSidecarProviderAuthFailed"),
                    _fires("OrchestratorSidecarKeyBackendFailure"),
                ],
            },
            {  # a caller's made-up inline envelopes: its own errors, never the key backend's page
                "interval": "1m",
                "input_series": [
                    _errors("KEY_RECORD_CORRUPT", "FAILED_PRECONDITION", 5),
                    _errors("KEY_FAILURE_LIMIT_REACHED", "RESOURCE_EXHAUSTED", 20),
                    {
                        "series": 'sidecar_requests_total{namespace="ns",pod="p",route="chat"}',
                        "values": "0+30x30",
                    },
                ],
                "alert_rule_test": [
                    _fires("OrchestratorSidecarKeyBackendFailure"),
                    _fires("OrchestratorSidecarInternalErrors"),
                ],
            },
            {  # the backend refusing the sidecar: critical
                "interval": "1m",
                "input_series": [_errors("KEY_UNAVAILABLE", "INTERNAL", 1)],
                "alert_rule_test": [
                    _fires(
                        "OrchestratorSidecarKeyBackendFailure",
                        {**where, "reason": "KEY_UNAVAILABLE", "severity": "critical"},
                    ),
                    _fires("OrchestratorSidecarInternalErrors"),
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'sidecar_admission_shed_total{namespace="ns",pod="p",priority="low"}',
                        "values": "0+2x30",
                    },
                    {
                        "series": 'sidecar_admission_shed_total{namespace="ns",pod="p",priority="critical"}',
                        "values": "0x30",
                    },
                ],
                "alert_rule_test": [
                    _fires(
                        "OrchestratorSidecarCallsShed", {**where, "priority": "low", "severity": "warning"}
                    ),
                ],
            },
            {
                "interval": "1m",
                "input_series": [
                    {  # one failed renewal, at 0 before it (the series exist from the start)
                        "series": _renewals("failed"),
                        "values": "0x18 1x10",
                    },
                    {"series": _renewals("renewed"), "values": "0+1x30"},
                ],
                "alert_rule_test": [
                    _fires("OrchestratorSidecarVaultTokenRenewalFailing", {**where, "severity": "warning"}),
                ],
            },
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    result = subprocess.run(
        [binary("promtool"), "test", "rules", "tests.yaml"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_is_shipped_as_a_configmap() -> None:
    dashboard = find(template(), "ConfigMap", "-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["orchestrator-sidecar.json"])
    assert board["uid"] == "orchestrator-sidecar"
    assert len([p for p in board["panels"] if p["type"] == "timeseries"]) >= 10


# helm 3 built by `go install` assumes Kubernetes 1.20 offline (its release builds set it by ldflags).
KUBE_VERSION = ("--kube-version", "v1.34.0")


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_3_lints_and_renders_the_same_objects(name: str) -> None:
    result = helm("lint", "--strict", str(CHART), *KUBE_VERSION, *VALUE_SETS[name], binary="helm3")
    assert "0 chart(s) failed" in result.stdout and "[WARNING]" not in result.stdout

    def rendered(binary: str) -> list[tuple[str, str, str]]:
        objects = template(*KUBE_VERSION, *VALUE_SETS[name], binary=binary)
        return sorted((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects)

    assert rendered("helm3") == rendered("helm")


@pytest.mark.parametrize(
    ("args", "fails"),
    [
        (["--set", "injector.replicas=1"], True),  # minAvailable 1 of 1
        (["--set", "injector.podDisruptionBudget.minAvailable=100%"], True),
        (["--set", "injector.replicas=3", "--set", "injector.podDisruptionBudget.minAvailable=67%"], True),
        (["--set", "injector.replicas=3", "--set", "injector.podDisruptionBudget.minAvailable=66%"], False),
        (["--set", "injector.replicas=3", "--set", "injector.podDisruptionBudget.minAvailable=2"], False),
        (["--set", "injector.replicas=1", "--set", "injector.podDisruptionBudget.enabled=false"], False),
    ],
)
def test_a_disruption_budget_that_no_eviction_satisfies_is_refused(args: list[str], fails: bool) -> None:
    """Rendered, it hung every `kubectl drain` (and the autoscaler's scale-down) of a node running an
    injector pod."""
    result = helm("template", "demo", str(CHART), *args, check=False)
    assert (result.returncode != 0) == fails, result.stderr
    if fails:
        assert "lets no injector pod be evicted" in result.stderr


@pytest.mark.parametrize(
    ("args", "fails"),
    [
        (["--kube-version", "v1.28.9"], True),
        (["--kube-version", "v1.28.9", "--set", "sidecar.mode=classic"], False),
        (["--kube-version", "v1.29.0"], False),
    ],
)
def test_native_mode_on_a_cluster_older_than_1_29_is_refused(args: list[str], fails: bool) -> None:
    """The chart allows Kubernetes 1.25+, but before 1.29 an init container's restartPolicy is
    dropped: the native sidecar would be a plain init container that never exits, every injected
    pod stuck initializing."""
    result = helm("template", "demo", str(CHART), *args, check=False)
    assert (result.returncode != 0) == fails, result.stderr
    if fails:
        assert "needs Kubernetes 1.29 or later" in result.stderr and "sidecar.mode=classic" in result.stderr


@pytest.mark.parametrize(
    "socket_dir",
    [
        "/etc/orchestrator-sidecar",  # the sidecar's config mount: a duplicate mountPath
        "/var/lib/orchestrator-sidecar/",  # its state mount (the working directory)
        "/var/lib/orchestrator-sidecar/sock",  # inside it
        "/etc",  # above the config mount: the emptyDir would hide the image's /etc
        "/",
        "/etc/x/..",  # /etc
    ],
)
def test_a_socket_dir_over_the_sidecars_own_mounts_is_refused(socket_dir: str) -> None:
    """Rendered, the API server refused every injected pod (`spec.initContainers[0].volumeMounts[1]
    .mountPath: must be unique`), or the socket's emptyDir hid the sidecar's config or its /etc."""
    result = helm("template", "demo", str(CHART), "--set", f"sidecar.socketDir={socket_dir}", check=False)
    assert result.returncode != 0, f"{socket_dir} rendered"
    assert "sidecar.socketDir" in result.stderr and "overlaps the sidecar's own" in result.stderr


def test_the_same_port_for_grpc_and_health_is_refused() -> None:
    """Rendered, every injected sidecar exited at start (`cannot serve /metrics on 0.0.0.0:9464:
    Address already in use`, its gRPC listener holding the port), so no injected pod became ready."""
    result = helm("template", "demo", str(CHART), "--set", "sidecar.grpcPort=9464", check=False)
    assert result.returncode != 0
    assert "sidecar.grpcPort and sidecar.healthPort are both 9464" in result.stderr
    assert helm("template", "demo", str(CHART), "--set", "sidecar.grpcPort=9465", check=False).returncode == 0


def test_a_system_namespace_in_sidecar_namespaces_is_refused() -> None:
    result = helm(
        "template", "demo", str(CHART), "--set", "sidecarNamespaces={shop,kube-system}", check=False
    )
    assert result.returncode != 0 and "sidecarNamespaces holds kube-system" in result.stderr


@pytest.mark.parametrize(
    ("args", "fails"),
    [
        (["--set", "sidecar.resources.requests.memory=512Mi"], True),  # the default limit is 256Mi
        (["--set", "sidecar.resources.limits.cpu=10m"], True),  # the default request is 50m
        (["--set", "sidecar.resources.requests.memory=268435457"], True),  # 256Mi + 1 byte
        (["--set", "sidecar.resources.requests.memory=0.25Gi"], False),
        (
            ["--set", "sidecar.resources.requests.cpu=300m", "--set", "sidecar.resources.limits.cpu=0.3"],
            False,
        ),
        (
            ["--set", "sidecar.resources.requests.cpu=1.1k", "--set", "sidecar.resources.limits.cpu=1100"],
            False,
        ),
    ],
)
def test_a_sidecar_request_above_its_limit_is_refused(args: list[str], fails: bool) -> None:
    """Rendered, the API server refused every injected pod (resources.requests: must be less than
    or equal to memory limit)."""
    result = helm("template", "demo", str(CHART), *args, check=False)
    assert (result.returncode != 0) == fails, result.stderr
    if fails:
        assert "the API server would refuse every injected pod" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "commonLabels.app\\.kubernetes\\.io/component=platform"],
            "commonLabels may not set app.kubernetes.io/component",
        ),
        (
            ["--set", "commonLabels.app\\.kubernetes\\.io/name=llm"],
            "commonLabels may not set app.kubernetes.io/name",
        ),
        (["--set", "commonLabels.team=platform team"], "/commonLabels/team"),  # not a label value
        (["--set", "commonLabels.team=" + "x" * 64], "/commonLabels/team"),
        (["--set", "commonLabels.Bad\\ Key=x"], "invalid propertyName 'Bad Key'"),
    ],
)
def test_common_labels_that_would_break_the_objects_are_refused(args: list[str], message: str) -> None:
    """Rendered, a commonLabel of the chart's own replaced its value in the injector's pod template
    (the YAML's later key wins), and the API server refused the Deployment (`selector` does not
    match template `labels`), the install failing halfway; a label value with a space or past 63
    characters was refused by the API server the same way."""
    result = helm("template", "demo", str(CHART), *args, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert helm("template", "demo", str(CHART), "--set", "commonLabels.team=platform").returncode == 0


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("certManager.duration=90d", False),
        ("certManager.renewBefore=2w", False),
        ("certManager.duration=1y", False),
        ("certManager.duration=2160h", True),
        ("certManager.renewBefore=360h30m", True),
    ],
)
def test_cert_manager_durations_are_go_durations(value: str, ok: bool) -> None:
    """cert-manager reads spec.duration and spec.renewBefore as a metav1.Duration (Go's
    time.ParseDuration: `time: unknown unit "d" in duration "90d"`); the schema took Prometheus's
    units (d, w, y) for them and rendered a Certificate cert-manager refuses."""
    result = helm(
        "template", "demo", str(CHART), "--set", "certManager.enabled=true", "--set", value, check=False
    )
    assert (result.returncode == 0) == ok, result.stderr
    if not ok:
        assert "/certManager/" + value.split(".")[1].split("=")[0] in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "sidecar.injectByDefault=null"],  # Helm drops a key set to null: the schema saw nothing
        ["--set", "sidecar.prometheusAnnotations=null"],
        ["--set", "sidecar.providerSecrets=null"],
        ["--set", "sidecar.resources.limits.memory=0"],  # 0 read as "no limit" by the render-time check
        ["--set", "securityContext.runAsUser=2147483648"],  # the API server refuses the Deployment
    ],
)
def test_values_that_rendered_an_injector_unable_to_start_are_refused(
    args: list[str], tmp_path: Path
) -> None:
    """Rendered, the injector refused its own settings at start (inject_by_default: Input should be
    a valid boolean; the memory request is above its limit), a crash loop in which every pod was
    admitted without the sidecar; the last made a Deployment the API server cannot decode."""
    result = helm("template", "demo", str(CHART), *args, check=False)
    if result.returncode == 0:
        settings = tmp_path / "injector.yaml"
        settings.write_text(find(template(*args), "ConfigMap", "-injector")["data"]["injector.yaml"])
        load_settings(settings)  # raises: the test fails naming what the injector refused
        runs_as = find(template(*args), "Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert runs_as["securityContext"]["runAsUser"] <= 2147483647
    assert result.returncode != 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (  # every injected sidecar exited at start: SIDECAR_TOKEN is not set or empty
            ["--set", "config.settings.auth.token.env=SIDECAR_TOKEN"],
            "config.settings.auth.token reads SIDECAR_TOKEN, which only sidecar.tokenSecret sets",
        ),
        (  # the applications were handed a token that the sidecar never checked
            ["--set", "sidecar.tokenSecret.name=sidecar-token"],
            "sidecar.tokenSecret is set but config.settings.auth.token is not",
        ),
    ],
)
def test_a_token_secret_and_the_configs_token_go_together(args: list[str], message: str) -> None:
    result = helm("template", "demo", str(CHART), *args, check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    both = [
        *args,
        "--set",
        "sidecar.tokenSecret.name=sidecar-token",
        "--set",
        "config.settings.auth.token.env=SIDECAR_TOKEN",
    ]
    assert helm("template", "demo", str(CHART), *both, check=False).returncode == 0


DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_an_image_pinned_by_digest_runs_exactly_that_image_in_the_injector_and_every_sidecar(
    tmp_path: Path,
) -> None:
    """A tag can be pushed again; a digest cannot. Both the injector and the sidecars it adds run
    repository:tag@digest (the tag only names it)."""
    objects = template("--set", f"image.digest={DIGEST}", "--set", "image.tag=1.2.3")
    injector = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert injector["image"] == f"ghcr.io/orchestrator/sidecar:1.2.3@{DIGEST}"
    settings = tmp_path / "injector.yaml"
    settings.write_text(find(objects, "ConfigMap", "-injector")["data"]["injector.yaml"])
    assert load_settings(settings).image == f"ghcr.io/orchestrator/sidecar:1.2.3@{DIGEST}"
    unpinned = find(template(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "@" not in unpinned["image"]


def _spread(*args: str) -> Any:
    return find(template(*args), "Deployment")["spec"]["template"]["spec"].get("topologySpreadConstraints")


def test_injector_replicas_are_spread_over_nodes_unless_told_otherwise() -> None:
    """Two replicas on one node go together with it; under failurePolicy Ignore every pod created
    meanwhile is admitted without the sidecar. The default spreads them where the scheduler can."""
    (spread,) = _spread()
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # never a reason not to schedule one
    assert spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == "injector"
    one = ("--set", "injector.replicas=1", "--set", "injector.podDisruptionBudget.enabled=false")
    assert _spread(*one) is None
    affinity = "injector.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    assert _spread("--set-json", f'{affinity}={{"nodeSelectorTerms":[{{"matchExpressions":[]}}]}}') is None
    zones = '[{"maxSkew":1,"topologyKey":"topology.kubernetes.io/zone","whenUnsatisfiable":"DoNotSchedule"}]'
    assert _spread("--set-json", f"injector.topologySpreadConstraints={zones}") == json.loads(zones)


@pytest.mark.parametrize(
    ("args", "requests", "limits"),
    [
        (["--set", "sidecar.resources.limits=null"], {"cpu": "50m", "memory": "96Mi"}, {}),
        (
            ["--set", "sidecar.resources.limits=null", "--set", "sidecar.resources.requests.memory=512Mi"],
            {"cpu": "50m", "memory": "512Mi"},
            {},
        ),
        (["--set", "sidecar.resources.requests=null"], {}, {"memory": "256Mi"}),
    ],
)
def test_sidecar_resources_set_to_null_mean_none_not_the_injectors_defaults(
    args: list[str], requests: dict[str, str], limits: dict[str, str], tmp_path: Path
) -> None:
    """`limits: null` (Helm drops the key) rendered settings without `limits`, which the injector
    filled with its own default (a 256Mi memory limit): the sidecars got a limit nobody set, and with
    a request above 256Mi the injector refused its settings at start (the memory request is above its
    limit), a crash loop in which every pod was admitted without the sidecar."""
    settings = tmp_path / "injector.yaml"
    settings.write_text(find(template(*args), "ConfigMap", "-injector")["data"]["injector.yaml"])
    loaded = load_settings(settings)
    assert (loaded.resources.requests.given(), loaded.resources.limits.given()) == (requests, limits)


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "image.repository=registry.example:5000/team/side_car", "--set", "image.tag=1.2.3-rc.1"],
        ["--set", "image.repository=localhost/sidecar", "--set-string", "image.tag=2"],
    ],
)
def test_image_references_of_every_shape_render(args: list[str]) -> None:
    injector = find(template(*args), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert injector["image"].split("/")[-1].count(":") == 1


def test_one_variable_for_the_address_and_the_token_is_refused() -> None:
    """Rendered, each application container got the variable twice (address, then the token from
    the Secret); the later one wins, so the client dialled the token as the sidecar's address."""
    same = ("--set", "sidecar.addressEnv=SIDECAR", "--set", "sidecar.tokenEnv=SIDECAR")
    result = helm("template", "demo", str(CHART), *same, check=False)
    assert result.returncode != 0
    assert "sidecar.addressEnv and sidecar.tokenEnv are both SIDECAR" in result.stderr
    with pytest.raises(ValueError, match="address_env and token_env are both SIDECAR"):
        InjectorSettings(image="i", config_map="c", address_env="SIDECAR", token_env="SIDECAR")


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a values tree by dotted path (an empty map or list is a leaf)."""
    if isinstance(value, dict) and value:
        return {
            k: v
            for key, child in value.items()
            for k, v in _leaves(child, f"{path}.{key}".lstrip(".")).items()
        }
    return {path: value}


def test_the_everything_value_set_changes_every_documented_value() -> None:
    """So that linting and rendering it (with both majors) and the API server's validation of what it
    renders (test_cluster) exercise every value the chart documents."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    everything = yaml.safe_load(EVERYTHING.read_text())
    set_here = _leaves(everything)
    left_out = {"fullnameOverride", "webhook.url", "webhook.caBundle"}
    # left on, so that what they turn on is rendered (classic mode: the classic-tcp-token value set)
    kept_on = {
        "sidecar.mode",
        "injector.enabled",
        "injector.podDisruptionBudget.enabled",
        "metrics.dashboard.enabled",
    }
    for path, default in _leaves(defaults).items():
        if path in left_out or path.startswith("config."):
            continue
        prefix = path + "."
        assert path in set_here or any(k.startswith(prefix) for k in set_here), f"{path} is not set"
        if path in set_here and path not in kept_on:
            assert set_here[path] != default, f"{path} is left at its default"
