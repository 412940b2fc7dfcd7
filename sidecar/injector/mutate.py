"""One decision per pod: inject the sidecar, skip it (with a reason), or reject the pod.

`decide` never raises for bad input: a malformed pod, an unknown annotation or value, and a name
already taken by the pod are rejections with a message naming the field. It works on a copy, and the
mutated pod is returned whole or not at all, so a pod is never half patched.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sidecar.injector import containers as c
from sidecar.injector.annotations import (
    CONFIG,
    INJECT,
    INJECTED,
    STATUS,
    AnnotationError,
    PodOptions,
    already_injected,
    parse_options,
)
from sidecar.injector.settings import InjectorSettings

Json = dict[str, Any]
Kind = Literal["injected", "skipped", "rejected", "error"]  # error: only the server's own failures
PROMETHEUS = "prometheus.io/"
WINDOWS_SELECTOR = "kubernetes.io/os"
MIRROR = "kubernetes.io/config.mirror"  # set by the kubelet on a static pod's mirror


@dataclass(frozen=True)
class Decision:
    kind: Kind
    reason: str  # a fixed, low-cardinality identifier: the metric label and the log field
    message: str
    pod: Json | None = None  # the mutated pod, for `injected` only


class PodShapeError(ValueError):
    """The object is not a pod spec the injector can read; the message names the field."""


def decide(pod: object, settings: InjectorSettings, namespace: str = "") -> Decision:
    """`namespace`: the pod's (the review's), or "" when not known (offline manifests)."""
    try:
        annotations = _annotations(pod)
        assert isinstance(pod, dict)  # _annotations checked it
        _containers(pod, "containers", required=True)
        _containers(pod, "initContainers", required=False)
        grace = pod["spec"].get("terminationGracePeriodSeconds")
        if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool)):
            raise PodShapeError("spec.terminationGracePeriodSeconds is not an integer")
    except PodShapeError as exc:
        return Decision("rejected", "invalid_pod", str(exc))
    if already_injected(annotations):
        return Decision("skipped", "already_injected", f"{STATUS} is {INJECTED}")
    if MIRROR in annotations:
        # the kubelet runs a static pod from its file and only mirrors it here: a sidecar added to
        # the mirror would never run (and NodeRestriction refuses a mirror naming a ConfigMap)
        return Decision("skipped", "mirror_pod", f"{MIRROR}: a static pod's mirror")
    try:
        options = parse_options(annotations, settings)
    except AnnotationError as exc:
        return Decision("rejected", "invalid_annotation", str(exc))
    if not options.inject:
        reason = "disabled" if INJECT in annotations else "not_requested"
        return Decision("skipped", reason, f"{INJECT} is not true")
    if unfit := _unfit(pod, options) or _no_config(namespace, settings, options):
        # a pod the sidecar cannot serve: asked for by name, it is refused with the reason;
        # injected by default, it is left without the sidecar
        kind: Kind = "rejected" if INJECT in annotations else "skipped"
        return Decision(kind, *unfit)
    if conflict := (
        _conflict(pod, settings) or _socket_dir_taken(pod, settings, options) or _port_taken(pod, settings)
    ):
        return Decision("rejected", "name_conflict", conflict)
    return Decision("injected", "injected", "sidecar added", inject(pod, settings, options))


def inject(pod: Json, settings: InjectorSettings, options: PodOptions) -> Json:
    """A copy of `pod` with the sidecar, its volumes, the application environment and the status."""
    out = copy.deepcopy(pod)
    metadata = out["metadata"] = out.get("metadata") or {}  # absent, or `metadata:` with nothing under it
    annotations = metadata.get("annotations") or {}
    annotations[STATUS] = INJECTED
    if settings.prometheus_annotations and not any(k.startswith(PROMETHEUS) for k in annotations):
        annotations["prometheus.io/scrape"] = "true"
        annotations["prometheus.io/port"] = str(settings.health_port)
        annotations["prometheus.io/path"] = "/metrics"
    metadata["annotations"] = annotations
    spec = out["spec"]
    sidecar = c.sidecar_container(settings, options)
    wired = _app_containers(spec, options)  # chosen before the sidecar goes in
    if options.mode == "native":
        inits = spec.get("initContainers") or []
        at = _after_native_sidecars(inits)
        spec["initContainers"] = [*inits[:at], sidecar, *inits[at:]]
    else:
        spec["containers"] = [*spec["containers"], sidecar]
    for container in wired:
        _wire_app(container, settings, options)
    spec["volumes"] = [*(spec.get("volumes") or []), *c.volumes(options)]
    if "resources" in spec:  # pod-level resources: the pod's budget grows by the sidecar's
        spec["resources"] = c.pod_resources(spec["resources"], options)
    spec["terminationGracePeriodSeconds"] = c.termination_grace(
        settings, options, spec.get("terminationGracePeriodSeconds")
    )
    return out


def _after_native_sidecars(inits: list[Json]) -> int:
    """Where the native sidecar goes among the init containers: after the last native sidecar the pod
    already has. A service mesh puts its own first (Istio: istio-init or istio-validation, then
    istio-proxy; Linkerd likewise), and the network may not work until that proxy runs: placed before
    it, the sidecar's probes and outbound calls went into a redirect with no proxy behind it yet (under
    the Istio CNI plugin the startup probe never passed, and the pod never started)."""
    natives = [i for i, item in enumerate(inits) if item.get("restartPolicy") == "Always"]
    return natives[-1] + 1 if natives else 0


def _app_containers(spec: Json, options: PodOptions) -> list[Json]:
    """The containers that can reach the sidecar: the application's, and in native mode the regular
    init containers that start after it (the kubelet starts them once the sidecar's startup probe
    passes: a migration or a warm-up step may call a model). Other native sidecars, and the init
    containers before them (a mesh's), are left as they are. A classic sidecar starts after every init
    container, so none of them is given an address it cannot reach."""
    found = list(spec["containers"])
    if options.mode == "native":
        inits = spec.get("initContainers") or []
        found += inits[_after_native_sidecars(inits) :]
    return found


def _wire_app(container: Json, settings: InjectorSettings, options: PodOptions) -> None:
    """Add the address/token variables and the socket mount, keeping what the container already sets."""
    env = container.get("env") or []
    taken = {e.get("name") for e in env}
    container["env"] = [*env, *(e for e in c.app_env(settings, options) if e["name"] not in taken)]
    mounts = container.get("volumeMounts") or []
    paths = {m.get("mountPath") for m in mounts}
    extra = [m for m in c.app_mounts(settings, options) if m["mountPath"] not in paths]
    if extra:
        container["volumeMounts"] = [*mounts, *extra]


def _conflict(pod: Json, settings: InjectorSettings) -> str:
    spec = pod["spec"]
    for field in ("containers", "initContainers"):
        for container in spec.get(field) or []:
            if container.get("name") == settings.container_name:
                return (
                    f"spec.{field} already has a container named {settings.container_name!r} "
                    f"and the pod has no {STATUS}: {INJECTED} annotation"
                )
    volumes = spec.get("volumes")
    if volumes is not None and not isinstance(volumes, list):
        return "spec.volumes is not a list"
    for volume in volumes or []:
        if isinstance(volume, Mapping) and volume.get("name") in c.VOLUMES:
            return f"spec.volumes already has a volume named {volume.get('name')!r}"
    return ""


def _port_taken(pod: Json, settings: InjectorSettings) -> str:
    """A container declaring a port the sidecar listens on (9464 is also OpenTelemetry's Prometheus
    exporter default): the sidecar, which starts first, would hold it and the application could not
    bind its own."""
    ours = {
        settings.health_port: "health port (chart: sidecar.healthPort)",
        settings.grpc_port: "gRPC port (chart: sidecar.grpcPort)",
    }
    for field in ("containers", "initContainers"):
        for i, container in enumerate(pod["spec"].get(field) or []):
            ports = container.get("ports")
            for port in ports if isinstance(ports, list) else []:
                number = port.get("containerPort") if isinstance(port, Mapping) else None
                if isinstance(number, int) and number in ours:
                    return f"spec.{field}[{i}] declares containerPort {number}, the sidecar's {ours[number]}"
    return ""


def _socket_dir_taken(pod: Json, settings: InjectorSettings, options: PodOptions) -> str:
    """An application container that mounts another volume where the socket must appear would be
    given the address of a socket it can never see: refused, naming the mount."""
    if options.transport != "unix":
        return ""
    wanted = settings.socket_dir.rstrip("/")
    wired = {id(w) for w in _app_containers(pod["spec"], options)}
    for field in ("containers", "initContainers"):
        for i, container in enumerate(pod["spec"].get(field) or []):
            if id(container) not in wired:
                continue
            for mount in container.get("volumeMounts") or []:
                path = mount.get("mountPath")
                if (
                    isinstance(path, str)
                    and path.rstrip("/") == wanted
                    and mount.get("name") != c.SOCKET_VOLUME
                ):
                    return (
                        f"spec.{field}[{i}].volumeMounts mounts {mount.get('name')!r} at {path}, "
                        "where the sidecar's socket directory goes (or use transport tcp)"
                    )
    return ""


def _unfit(pod: Json, options: PodOptions) -> tuple[str, str] | None:
    """(reason, message) when the sidecar cannot go into this pod."""
    if windows := _windows(pod):
        # the image is Linux only, and a Windows pod may not carry its Linux securityContext
        # (the API server refuses the whole pod)
        return "windows_pod", f"{windows} is windows: the sidecar runs on Linux nodes only"
    if pod["spec"].get("hostNetwork") is True:
        # loopback is the node's then: its gRPC port would take calls from every process on the
        # node, and its health port (a hostPort) allows one such pod per node
        return "host_network", (
            "spec.hostNetwork is true: the sidecar's loopback gRPC port and its health port would be "
            "the node's, open to every process on it"
        )
    restart = pod["spec"].get("restartPolicy")
    if options.mode == "classic" and restart in ("Never", "OnFailure"):
        # a classic sidecar never exits, so the pod (a Job's) would never complete
        return "runs_to_completion", (
            f"spec.restartPolicy is {restart}: a classic-mode sidecar would keep the pod running "
            "forever; use mode native (Kubernetes 1.29+)"
        )
    return None


def _no_config(namespace: str, settings: InjectorSettings, options: PodOptions) -> tuple[str, str] | None:
    """The chart's config ConfigMap exists only in its namespaces: elsewhere (a namespace the webhook
    selects by label) the pod would wait forever for the volume, unless it names one of its own."""
    known = settings.config_namespaces
    if known is None or not namespace or namespace in known or options.config_map != settings.config_map:
        return None
    return "no_config", (
        f"namespace {namespace} has no {settings.config_map} ConfigMap (the chart creates it in "
        f"sidecarNamespaces only): add the namespace there, or annotate {CONFIG} with a ConfigMap "
        "of this namespace"
    )


def _windows(pod: Json) -> str:
    """The field that puts the pod on Windows nodes (spec.os.name, or the nodeSelector), or ""."""
    spec = pod["spec"]
    os_field = spec.get("os")
    if isinstance(os_field, Mapping) and os_field.get("name") == "windows":
        return "spec.os.name"
    selector = spec.get("nodeSelector")
    if isinstance(selector, Mapping) and selector.get(WINDOWS_SELECTOR) == "windows":
        return f"spec.nodeSelector[{WINDOWS_SELECTOR}]"
    return ""


def _annotations(pod: object) -> Mapping[str, str]:
    if not isinstance(pod, dict):
        raise PodShapeError("object is not a JSON object")
    metadata = pod.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise PodShapeError("metadata is not an object")
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise PodShapeError("metadata.annotations is not a map of strings")
    return annotations


def _containers(pod: Json, field: str, *, required: bool) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        raise PodShapeError("spec is missing or not an object")
    items = spec.get(field)
    if items is None and not required:
        return
    if not isinstance(items, list) or (required and not items):
        raise PodShapeError(f"spec.{field} is {'missing or empty' if required else 'not a list'}")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise PodShapeError(f"spec.{field}[{i}] is not a container with a name")
        for sub, key in (("env", "name"), ("volumeMounts", "mountPath")):
            value = item.get(sub)
            if value is not None and not _objects(value):
                raise PodShapeError(f"spec.{field}[{i}].{sub} is not a list of objects")
            for j, entry in enumerate(value or []):
                if not isinstance(entry.get(key), str | None):
                    raise PodShapeError(f"spec.{field}[{i}].{sub}[{j}].{key} is not a string")


def _objects(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)
