"""The injector's pod mutation, JSON Patch and annotation handling, on pods as the API server sends them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sidecar.injector.annotations import STATUS
from sidecar.injector.mutate import decide
from sidecar.injector.patch import apply_patch, make_patch
from sidecar.injector.settings import InjectorSettings

SETTINGS = InjectorSettings(
    image="registry.example/sidecar:1",
    config_map="orchestrator-sidecar",
    token_secret={"name": "sidecar-token", "key": "token"},
    provider_secrets=("llm-keys",),
)


def pod(annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "apps", "annotations": annotations or {}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}], **spec},
    }


ASKED = {"orchestrator.sidecar/inject": "true"}
ONE = [{"name": "a"}]


def injected(p: dict[str, Any], settings: InjectorSettings = SETTINGS) -> dict[str, Any]:
    decision = decide(p, settings)
    assert decision.kind == "injected", decision
    assert decision.pod is not None
    return decision.pod


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_native_sidecar_is_the_first_init_container_with_restart_policy_always() -> None:
    out = injected(pod(ASKED, initContainers=[{"name": "migrate", "image": "m:1"}]))
    init = out["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["orchestrator-sidecar", "migrate"]
    sidecar = init[0]
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["image"] == "registry.example/sidecar:1"
    assert sidecar["args"] == ["serve", "--config", "/etc/orchestrator-sidecar/sidecar.yaml"]
    assert sidecar["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "sidecar-health"}
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sidecar["ports"] == [{"name": "sidecar-health", "containerPort": 9464, "protocol": "TCP"}]
    assert sidecar["envFrom"] == [{"secretRef": {"name": "llm-keys"}}]
    e = env(sidecar)
    assert e["SIDECAR__SETTINGS__TELEMETRY__METRICS__ADDRESS"] == "'[::]:9464'"  # YAML-quoted
    assert e["SIDECAR__SETTINGS__LISTEN__ADDRESS"] == "127.0.0.1:50051"
    assert e["SIDECAR__SETTINGS__LISTEN__UNIX_SOCKET"] == "/var/run/orchestrator-sidecar/sidecar.sock"
    assert e["SIDECAR_TOKEN"] == {"secretKeyRef": {"name": "sidecar-token", "key": "token"}}
    sc = sidecar["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert [c["name"] for c in out["spec"]["containers"]] == ["app"]
    assert out["metadata"]["annotations"][STATUS] == "injected"
    assert out["metadata"]["annotations"]["prometheus.io/port"] == "9464"


def test_app_containers_get_the_address_token_and_socket_volume() -> None:
    out = injected(pod(ASKED))
    app = out["spec"]["containers"][0]
    e = env(app)
    assert e["ORCHESTRATOR_SIDECAR_ADDRESS"] == "unix:///var/run/orchestrator-sidecar/sidecar.sock"
    assert e["ORCHESTRATOR_SIDECAR_TOKEN"] == {"secretKeyRef": {"name": "sidecar-token", "key": "token"}}
    assert app["volumeMounts"] == [
        {"name": "orchestrator-sidecar-socket", "mountPath": "/var/run/orchestrator-sidecar"}
    ]
    volumes = {v["name"]: v for v in out["spec"]["volumes"]}
    assert volumes["orchestrator-sidecar-socket"] == {"name": "orchestrator-sidecar-socket", "emptyDir": {}}
    assert volumes["orchestrator-sidecar-config"]["configMap"] == {"name": "orchestrator-sidecar"}


def test_regular_init_containers_of_a_native_sidecar_get_the_address_and_socket_too() -> None:
    """The kubelet starts the init containers after the native sidecar is ready, so one of them (a
    warm-up, a migration that calls a model) can reach it; it was given neither the address nor the
    socket. Another native sidecar is left alone, and a classic sidecar (started after every init
    container) gives them nothing."""
    inits = [
        {"name": "mesh", "image": "p:1", "restartPolicy": "Always"},
        {"name": "warm-up", "image": "w:1", "env": [{"name": "ORCHESTRATOR_SIDECAR_ADDRESS", "value": "x"}]},
    ]
    out = injected(pod(ASKED, initContainers=inits))
    mesh, _, warm = out["spec"]["initContainers"]
    assert env(warm) == {  # what it already set is kept
        "ORCHESTRATOR_SIDECAR_ADDRESS": "x",
        "ORCHESTRATOR_SIDECAR_TOKEN": {"secretKeyRef": {"name": "sidecar-token", "key": "token"}},
    }
    assert warm["volumeMounts"] == [
        {"name": "orchestrator-sidecar-socket", "mountPath": "/var/run/orchestrator-sidecar"}
    ]
    assert "env" not in mesh and "volumeMounts" not in mesh
    classic = injected(pod({**ASKED, "orchestrator.sidecar/mode": "classic"}, initContainers=inits))
    assert classic["spec"]["initContainers"] == inits
    taken = [
        {
            "name": "w",
            "image": "w:1",
            "volumeMounts": [{"name": "r", "mountPath": "/var/run/orchestrator-sidecar"}],
        }
    ]
    decision = decide(pod(ASKED, initContainers=taken, volumes=[{"name": "r", "emptyDir": {}}]), SETTINGS)
    assert (
        decision.kind == "rejected" and "spec.initContainers[0].volumeMounts mounts 'r'" in decision.message
    )


def test_the_native_sidecar_starts_after_a_service_meshs_proxy() -> None:
    """Istio (and Linkerd) put their init container and their native proxy first; prepended before
    them, the sidecar started before the pod's network did: its probes and outbound calls were
    redirected to a proxy not yet running (under the Istio CNI plugin its startup probe never passed
    and the pod never started). It goes after the native sidecars the pod has, before the regular
    init containers that follow them, which alone are given its address."""
    mesh = [
        {"name": "istio-init", "image": "proxyv2:1"},
        {"name": "istio-proxy", "image": "proxyv2:1", "restartPolicy": "Always"},
        {"name": "migrate", "image": "m:1"},
    ]
    out = injected(pod(ASKED, initContainers=copy.deepcopy(mesh)))
    init = out["spec"]["initContainers"]
    assert [c["name"] for c in init] == ["istio-init", "istio-proxy", "orchestrator-sidecar", "migrate"]
    assert init[:2] == mesh[:2]  # the mesh's containers untouched
    assert "ORCHESTRATOR_SIDECAR_ADDRESS" in env(init[3])
    # a mesh init container mounting something where the socket goes is none of the sidecar's business
    mesh[0]["volumeMounts"] = [{"name": "r", "mountPath": "/var/run/orchestrator-sidecar"}]
    beside = pod(ASKED, initContainers=mesh, volumes=[{"name": "r", "emptyDir": {}}])
    assert decide(beside, SETTINGS).kind == "injected"


def test_annotations_choose_tcp_classic_config_log_level_and_resources() -> None:
    out = injected(
        pod(
            {
                **ASKED,
                "orchestrator.sidecar/transport": "tcp",
                "orchestrator.sidecar/mode": "classic",
                "orchestrator.sidecar/config": "team-a-sidecar",
                "orchestrator.sidecar/log-level": "debug",
                "orchestrator.sidecar/cpu-limit": "500m",
                "orchestrator.sidecar/memory-request": "200Mi",
            }
        )
    )
    assert "initContainers" not in out["spec"]
    app, sidecar = out["spec"]["containers"]
    assert sidecar["name"] == "orchestrator-sidecar" and "restartPolicy" not in sidecar
    assert sidecar["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert env(app)["ORCHESTRATOR_SIDECAR_ADDRESS"] == "127.0.0.1:50051"
    assert "volumeMounts" not in app  # no socket to share over TCP
    assert "SIDECAR__SETTINGS__LISTEN__UNIX_SOCKET" not in env(sidecar)
    assert env(sidecar)["SIDECAR__SETTINGS__LOG_LEVEL"] == "DEBUG"
    assert sidecar["resources"] == {
        "requests": {"cpu": "50m", "memory": "200Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    config = next(v for v in out["spec"]["volumes"] if v["name"] == "orchestrator-sidecar-config")
    assert config["configMap"]["name"] == "team-a-sidecar"
    assert out["spec"]["terminationGracePeriodSeconds"] == 30


def test_termination_grace_covers_the_drain() -> None:
    settings = SETTINGS.model_copy(update={"drain_seconds": 60})
    out = injected(pod(ASKED, terminationGracePeriodSeconds=10), settings)
    assert out["spec"]["terminationGracePeriodSeconds"] == 65
    assert env(out["spec"]["initContainers"][0])["SIDECAR__SETTINGS__SHUTDOWN_GRACE_SECONDS"] == "60"
    out = injected(pod(ASKED, terminationGracePeriodSeconds=120), settings)
    assert out["spec"]["terminationGracePeriodSeconds"] == 120


def test_what_the_application_already_sets_is_kept() -> None:
    p = pod(ASKED, volumes=[{"name": "data", "emptyDir": {}}])
    p["spec"]["containers"][0]["env"] = [{"name": "ORCHESTRATOR_SIDECAR_ADDRESS", "value": "own"}]
    p["metadata"]["annotations"]["prometheus.io/port"] = "8080"
    out = injected(p)
    assert env(out["spec"]["containers"][0])["ORCHESTRATOR_SIDECAR_ADDRESS"] == "own"
    assert out["metadata"]["annotations"]["prometheus.io/port"] == "8080"
    assert "prometheus.io/scrape" not in out["metadata"]["annotations"]
    assert out["spec"]["volumes"][0] == {"name": "data", "emptyDir": {}}


def test_input_is_not_modified_and_the_patch_reproduces_the_result() -> None:
    p = pod(ASKED)
    before = copy.deepcopy(p)
    out = injected(p)
    assert p == before
    assert apply_patch(p, make_patch(p, out)) == out


def test_an_injected_pod_is_left_alone() -> None:
    out = injected(pod(ASKED))
    again = decide(out, SETTINGS)
    assert (again.kind, again.reason) == ("skipped", "already_injected")


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [({}, "not_requested"), ({"orchestrator.sidecar/inject": "false"}, "disabled")],
)
def test_pods_that_do_not_ask_are_skipped(annotations: dict[str, str], reason: str) -> None:
    decision = decide(pod(annotations), SETTINGS)
    assert (decision.kind, decision.reason, decision.pod) == ("skipped", reason, None)


def test_inject_by_default_injects_unannotated_pods() -> None:
    injected(pod(), SETTINGS.model_copy(update={"inject_by_default": True}))


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        (
            {"orchestrator.sidecar/inject": "yes"},
            "inject: 'yes' is not one of true, false",
        ),
        ({**ASKED, "orchestrator.sidecar/transport": "udp"}, "'udp' is not one of unix, tcp"),
        ({**ASKED, "orchestrator.sidecar/mode": "sidecar"}, "'sidecar' is not one of native, classic"),
        ({**ASKED, "orchestrator.sidecar/log-level": "loud"}, "'LOUD' is not one of DEBUG, INFO"),
        (
            {**ASKED, "orchestrator.sidecar/cpu-limit": "lots"},
            "'lots' is not a Kubernetes quantity",
        ),
        ({**ASKED, "orchestrator.sidecar/config": "Bad_Name"}, "is not a ConfigMap name"),
        # no ConfigMap can have these names, but the API server takes them in a volume: stuck pods
        ({**ASKED, "orchestrator.sidecar/config": "team..config"}, "is not a ConfigMap name"),
        ({**ASKED, "orchestrator.sidecar/config": "team.-config"}, "is not a ConfigMap name"),
        (
            {**ASKED, "orchestrator.sidecar/trasport": "tcp"},
            "trasport: unknown annotation",
        ),
    ],
)
def test_unknown_annotations_and_values_are_rejected_by_name(annotations: dict[str, str], named: str) -> None:
    decision = decide(pod(annotations), SETTINGS)
    assert (decision.kind, decision.reason, decision.pod) == ("rejected", "invalid_annotation", None)
    assert named in decision.message


def test_a_container_with_the_sidecars_name_is_a_conflict() -> None:
    p = pod(ASKED)
    p["spec"]["containers"].append({"name": "orchestrator-sidecar", "image": "other"})
    decision = decide(p, SETTINGS)
    assert (decision.kind, decision.reason, decision.pod) == ("rejected", "name_conflict", None)
    assert "spec.containers already has a container named 'orchestrator-sidecar'" in decision.message
    clash = pod(ASKED, volumes=[{"name": "orchestrator-sidecar-socket", "emptyDir": {}}])
    assert decide(clash, SETTINGS).reason == "name_conflict"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ([], "not a JSON object"),
        ({"metadata": "x", "spec": {}}, "metadata is not an object"),
        ({"metadata": {"annotations": {"a": 1}}, "spec": {}}, "metadata.annotations"),
        ({"metadata": {}}, "spec is missing"),
        ({"spec": {"containers": []}}, "spec.containers is missing or empty"),
        ({"spec": {"containers": [{"image": "x"}]}}, "spec.containers[0] is not a container with a name"),
        ({"spec": {"containers": [{"name": "a", "env": {}}]}}, "spec.containers[0].env is not a list"),
        ({"spec": {"containers": [{"name": "a", "env": ["x"]}]}}, "spec.containers[0].env is not a list"),
        (
            {"spec": {"containers": [{"name": "a"}], "initContainers": {}}},
            "spec.initContainers is not a list",
        ),
        (
            {"metadata": {"annotations": ASKED}, "spec": {"containers": [{"name": "a"}], "volumes": 3}},
            "volumes",
        ),
        (
            {
                "metadata": {"annotations": ASKED},
                "spec": {"containers": [{"name": "a", "env": [{"name": []}]}]},
            },
            "spec.containers[0].env[0].name is not a string",
        ),
        (
            {
                "metadata": {"annotations": ASKED},
                "spec": {"containers": [{"name": "a", "volumeMounts": [{"name": "v", "mountPath": {}}]}]},
            },
            "spec.containers[0].volumeMounts[0].mountPath is not a string",
        ),
        (
            {
                "metadata": {"annotations": ASKED},
                "spec": {"containers": [{"name": "a"}], "terminationGracePeriodSeconds": "30"},
            },
            "spec.terminationGracePeriodSeconds is not an integer",
        ),
    ],
)
def test_malformed_pods_are_rejected_naming_the_field(bad: object, field: str) -> None:
    decision = decide(bad, SETTINGS)
    assert (decision.kind, decision.pod) == ("rejected", None)
    assert field in decision.message


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"os": {"name": "windows"}}, "spec.os.name is windows"),
        ({"nodeSelector": {"kubernetes.io/os": "windows"}}, "spec.nodeSelector[kubernetes.io/os] is windows"),
    ],
)
def test_a_windows_pod_is_refused_when_asked_and_skipped_by_default(spec: dict[str, Any], field: str) -> None:
    """The sidecar's Linux securityContext makes the API server refuse a Windows pod whole, and its
    image does not run there: a pod asking for it is told why, one injected by default is left alone."""
    asked = decide(pod(ASKED, **spec), SETTINGS)
    assert (asked.kind, asked.reason, asked.pod) == ("rejected", "windows_pod", None)
    assert field in asked.message
    by_default = decide(pod(**spec), SETTINGS.model_copy(update={"inject_by_default": True}))
    assert (by_default.kind, by_default.reason, by_default.pod) == ("skipped", "windows_pod", None)
    linux = pod(ASKED, os={"name": "linux"}, nodeSelector={"kubernetes.io/os": "linux"})
    assert decide(linux, SETTINGS).kind == "injected"


def test_an_application_mount_where_the_socket_goes_is_a_conflict() -> None:
    """Kept as it was, the application would be told `unix:///var/run/orchestrator-sidecar/...` and
    see its own volume there, never the sidecar's socket."""
    taken = [
        {
            "name": "app",
            "image": "app:1",
            "volumeMounts": [{"name": "run", "mountPath": "/var/run/orchestrator-sidecar/"}],
        }
    ]
    p = pod(ASKED, containers=taken, volumes=[{"name": "run", "emptyDir": {}}])
    decision = decide(p, SETTINGS)
    assert (decision.kind, decision.reason, decision.pod) == ("rejected", "name_conflict", None)
    assert (
        "spec.containers[0].volumeMounts mounts 'run' at /var/run/orchestrator-sidecar/" in decision.message
    )
    over_tcp = copy.deepcopy(p)
    over_tcp["metadata"]["annotations"]["orchestrator.sidecar/transport"] = "tcp"
    assert decide(over_tcp, SETTINGS).kind == "injected"
    beside = copy.deepcopy(p)
    beside["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] = "/var/run"  # a parent: nested is fine
    assert decide(beside, SETTINGS).kind == "injected"


@pytest.mark.parametrize("restart", ["Never", "OnFailure"])
def test_a_pod_that_runs_to_completion_gets_no_classic_sidecar(restart: str) -> None:
    """A classic sidecar is a regular container that never exits: a Job's pod would run forever."""
    classic = {**ASKED, "orchestrator.sidecar/mode": "classic"}
    asked = decide(pod(classic, restartPolicy=restart), SETTINGS)
    assert (asked.kind, asked.reason, asked.pod) == ("rejected", "runs_to_completion", None)
    assert f"spec.restartPolicy is {restart}" in asked.message
    by_default = SETTINGS.model_copy(update={"inject_by_default": True, "mode": "classic"})
    skipped = decide(pod(restartPolicy=restart), by_default)
    assert (skipped.kind, skipped.reason) == ("skipped", "runs_to_completion")
    native = injected(pod(ASKED, restartPolicy=restart))  # native sidecars stop with the pod
    assert native["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    assert decide(pod(classic, restartPolicy="Always"), SETTINGS).kind == "injected"


def test_a_host_network_pod_gets_no_sidecar() -> None:
    """On the node's network the sidecar's 127.0.0.1 gRPC port is the node's loopback: every process
    and hostNetwork pod on the node could call it with this pod's provider credentials."""
    asked = decide(pod(ASKED, hostNetwork=True), SETTINGS)
    assert (asked.kind, asked.reason, asked.pod) == ("rejected", "host_network", None)
    assert "spec.hostNetwork is true" in asked.message
    by_default = decide(pod(hostNetwork=True), SETTINGS.model_copy(update={"inject_by_default": True}))
    assert (by_default.kind, by_default.reason) == ("skipped", "host_network")
    assert decide(pod(ASKED, hostNetwork=False), SETTINGS).kind == "injected"


@pytest.mark.parametrize(("port", "named"), [(9464, "health port"), (50051, "gRPC port")])
def test_a_container_declaring_a_port_of_the_sidecar_is_a_conflict(port: int, named: str) -> None:
    """The native sidecar starts first and holds the port: the application could not bind its own
    (9464 is OpenTelemetry's Prometheus exporter default)."""
    app = {"name": "app", "image": "app:1", "ports": [{"name": "metrics", "containerPort": port}]}
    decision = decide(pod(ASKED, containers=[app]), SETTINGS)
    assert (decision.kind, decision.reason, decision.pod) == ("rejected", "name_conflict", None)
    assert f"spec.containers[0] declares containerPort {port}, the sidecar's {named}" in decision.message
    moved = SETTINGS.model_copy(update={"health_port": 9465, "grpc_port": 50052})
    assert decide(pod(ASKED, containers=[app]), moved).kind == "injected"


def test_a_socket_dir_too_long_for_a_unix_socket_path_is_refused() -> None:
    from pydantic import ValidationError

    InjectorSettings(image="i", config_map="c", socket_dir="/" + "d" * 93)  # 107 bytes with /sidecar.sock
    with pytest.raises(ValidationError, match="socket_dir"):
        InjectorSettings(image="i", config_map="c", socket_dir="/" + "d" * 94)


@pytest.mark.parametrize(
    "socket_dir",
    [
        "/etc/orchestrator-sidecar",
        "/var/lib/orchestrator-sidecar/",
        "/etc/orchestrator-sidecar/s",
        "/var",
        "/",
    ],
)
def test_a_socket_dir_over_the_sidecars_own_mounts_is_refused(socket_dir: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="overlaps the sidecar's own"):
        InjectorSettings(image="i", config_map="c", socket_dir=socket_dir)
    InjectorSettings(image="i", config_map="c", socket_dir="/var/run/orchestrator/")


def test_the_same_port_for_grpc_and_health_is_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="grpc_port and health_port are both 9464"):
        InjectorSettings(image="i", config_map="c", grpc_port=9464)


@pytest.mark.parametrize(
    ("annotations", "named"),
    [
        ({"orchestrator.sidecar/memory-request": "257Mi"}, "orchestrator.sidecar/memory-request"),
        ({"orchestrator.sidecar/memory-limit": "0.09Gi"}, "orchestrator.sidecar/memory-limit"),
        ({"orchestrator.sidecar/cpu-request": "1", "orchestrator.sidecar/cpu-limit": "999m"}, "cpu-request"),
    ],
)
def test_a_request_above_its_limit_is_refused_naming_the_annotation(
    annotations: dict[str, str], named: str
) -> None:
    decision = decide(pod({**ASKED, **annotations}), SETTINGS)
    assert (decision.kind, decision.reason) == ("rejected", "invalid_annotation")
    assert named in decision.message and "above its limit" in decision.message


@pytest.mark.parametrize(
    "annotations",
    [
        {"orchestrator.sidecar/memory-request": "256Mi"},  # equal to the chart's limit
        {"orchestrator.sidecar/memory-request": "0.25Gi"},
        {"orchestrator.sidecar/cpu-request": "1.1k", "orchestrator.sidecar/cpu-limit": "1100"},
        {"orchestrator.sidecar/cpu-request": "300m", "orchestrator.sidecar/cpu-limit": "0.3"},
        {"orchestrator.sidecar/cpu-request": "1e-2", "orchestrator.sidecar/cpu-limit": "10m"},
    ],
)
def test_requests_up_to_their_limits_are_injected(annotations: dict[str, str]) -> None:
    assert decide(pod({**ASKED, **annotations}), SETTINGS).kind == "injected"


def test_settings_with_a_request_above_its_limit_are_refused() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="the memory request is above its limit"):
        InjectorSettings(
            image="i",
            config_map="c",
            resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}},
        )


def test_a_template_whose_metadata_is_null_is_injected() -> None:
    template = {"metadata": None, "spec": {"containers": [{"name": "app", "image": "app:1"}]}}
    settings = SETTINGS.model_copy(update={"inject_by_default": True})
    out = injected(template, settings)
    assert out["metadata"]["annotations"][STATUS] == "injected"
    assert apply_patch(template, make_patch(template, out)) == out


def test_a_namespace_without_the_config_is_refused_or_skipped() -> None:
    """The chart's ConfigMap is in its namespaces only; a pod elsewhere would wait for it forever."""
    settings = SETTINGS.model_copy(update={"config_namespaces": ("orchestrator-system", "shop")})
    refused = decide(pod(ASKED), settings, "team-a")
    assert (refused.kind, refused.reason) == ("rejected", "no_config")
    assert "namespace team-a has no orchestrator-sidecar ConfigMap" in refused.message
    by_default = settings.model_copy(update={"inject_by_default": True})
    assert (decide(pod(), by_default, "team-a").kind, decide(pod(), by_default, "team-a").reason) == (
        "skipped",
        "no_config",
    )
    assert decide(pod(ASKED), settings, "shop").kind == "injected"
    assert decide(pod(ASKED), settings, "").kind == "injected"  # offline, the namespace not known
    own = {**ASKED, "orchestrator.sidecar/config": "team-config"}
    assert decide(pod(own), settings, "team-a").kind == "injected"
    assert decide(pod(ASKED), SETTINGS, "team-a").kind == "injected"  # no list: every namespace


def test_quantities_written_as_numbers_are_taken() -> None:
    from pydantic import ValidationError

    settings = InjectorSettings(
        image="i", config_map="c", resources={"requests": {"cpu": 0.5, "memory": 100_000_000}, "limits": {}}
    )
    assert settings.resources.requests.given() == {"cpu": "0.5", "memory": "100000000"}
    for bad in (-1, True, float("inf")):
        with pytest.raises(ValidationError, match=r"resources\.requests\.cpu"):
            InjectorSettings(image="i", config_map="c", resources={"requests": {"cpu": bad}})


def test_pod_level_resources_grow_by_the_sidecars() -> None:
    """A pod with pod-level resources (Kubernetes 1.32+) sized for its application alone was refused
    by the API server once the sidecar was added: the containers together requested more than the
    pod. The pod's budget grows by the sidecar's requests (and its limits, or its requests for a limit
    the sidecar does not set); what the pod does not state stays unstated."""
    budget = {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}
    out = injected(pod(ASKED, resources=budget))  # the sidecar: 50m / 96Mi requested, 256Mi limit
    assert out["spec"]["resources"] == {
        "requests": {"cpu": "70m", "memory": "160Mi"},
        "limits": {"cpu": "1050m", "memory": "384Mi"},
    }
    only_memory = injected(pod(ASKED, resources={"limits": {"memory": "1Gi"}}))
    assert only_memory["spec"]["resources"] == {"limits": {"memory": "1280Mi"}}
    assert "resources" not in injected(pod(ASKED))["spec"]  # no pod-level budget: none is made


def test_pod_level_resources_that_are_no_quantities_are_left_to_the_api_server() -> None:
    odd = {"requests": {"cpu": "lots", "memory": 64}, "limits": "nope"}
    out = injected(pod(ASKED, resources=odd))
    assert out["spec"]["resources"] == {
        "requests": {"cpu": "lots", "memory": str(64 + 96 * 2**20)},
        "limits": "nope",
    }


def test_the_patch_does_not_grow_with_the_pods_lists() -> None:
    """A generic diff of lists shifted every init container the sidecar was put in front of, one
    operation each (30,020 for 10,000), and spent 8.6 s of the injector's one event loop on a 0.56 MiB
    review of 30,000: every other review waited past the API server's timeout (pods admitted without
    the sidecar, or refused under Fail), from a pod anyone allowed to create pods could send. A list
    that changes is replaced whole; objects are compared key by key."""
    many = [{"name": f"step-{i}", "image": "s:1"} for i in range(2000)]
    p = pod(ASKED, initContainers=many, volumes=[{"name": f"v{i}", "emptyDir": {}} for i in range(2000)])
    p["metadata"]["annotations"]["a/b~c"] = "kept"  # a key a JSON pointer must escape
    out = injected(p)
    operations = make_patch(p, out)
    assert apply_patch(p, operations) == out
    assert len(operations) <= 10, [o["path"] for o in operations]
    assert {o["path"] for o in operations} >= {
        "/spec/initContainers",
        "/metadata/annotations/orchestrator.sidecar~1status",
    }
    template = {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}  # no metadata at all
    settings = SETTINGS.model_copy(update={"inject_by_default": True})
    out = injected(template, settings)
    assert apply_patch(template, make_patch(template, out)) == out


@pytest.mark.parametrize("annotations", [ASKED, {}])
def test_a_static_pods_mirror_is_left_as_it_is(annotations: dict[str, str]) -> None:
    """The kubelet runs a static pod from its manifest file and only mirrors it into the API: a
    sidecar added to the mirror never runs, so the API would show a container that does not exist
    (and a node's mirror may not reference ConfigMaps or Secrets: the NodeRestriction plugin refuses
    it, leaving the static pod without a mirror). Skipped, asked for or injected by default."""
    mirror = pod({**annotations, "kubernetes.io/config.mirror": "4c2a1c0f"}, nodeName="node-1")
    decision = decide(mirror, SETTINGS.model_copy(update={"inject_by_default": True}))
    assert (decision.kind, decision.reason, decision.pod) == ("skipped", "mirror_pod", None)
