"""The pieces an injected pod gets, as Kubernetes JSON: the sidecar container, its volumes, and the
environment and socket mount of the application containers.

The sidecar listens for gRPC on loopback (and on a Unix socket in a shared emptyDir); the kubelet
probes it over HTTP on the pod-reachable health port (`/livez`, `/readyz`, also `/metrics`).
"""

from __future__ import annotations

from typing import Any

from sidecar.injector.annotations import PodOptions
from sidecar.injector.settings import CONFIG_DIR as CONFIG_DIR  # where the sidecar's config and state
from sidecar.injector.settings import STATE_DIR as STATE_DIR  # are mounted (re-exported)
from sidecar.injector.settings import InjectorSettings, quantity_text, quantity_value

Json = dict[str, Any]

SOCKET_VOLUME = "orchestrator-sidecar-socket"
CONFIG_VOLUME = "orchestrator-sidecar-config"
STATE_VOLUME = "orchestrator-sidecar-state"
VOLUMES = (SOCKET_VOLUME, CONFIG_VOLUME, STATE_VOLUME)
SOCKET_NAME = "sidecar.sock"
HEALTH_PORT_NAME = "sidecar-health"
STARTUP_SECONDS = 60  # how long the sidecar may take to become ready before the kubelet restarts it


def socket_path(settings: InjectorSettings) -> str:
    return f"{settings.socket_dir.rstrip('/')}/{SOCKET_NAME}"


def app_address(settings: InjectorSettings, options: PodOptions) -> str:
    """What the application dials: the Unix socket, or the loopback TCP port."""
    if options.transport == "unix":
        return f"unix://{socket_path(settings)}"
    return f"127.0.0.1:{settings.grpc_port}"


def sidecar_container(settings: InjectorSettings, options: PodOptions) -> Json:
    container: Json = {
        "name": settings.container_name,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "args": ["serve", "--config", f"{CONFIG_DIR}/{settings.config_key}"],
        "workingDir": STATE_DIR,
        "env": _sidecar_env(settings, options),
        "ports": [{"name": HEALTH_PORT_NAME, "containerPort": settings.health_port, "protocol": "TCP"}],
        "resources": _resources(options),
        "securityContext": security_context(settings.run_as_user),
        "volumeMounts": [
            {"name": SOCKET_VOLUME, "mountPath": settings.socket_dir},
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": STATE_VOLUME, "mountPath": STATE_DIR},
        ],
        **_probes(settings),
    }
    if settings.provider_secrets:
        container["envFrom"] = [{"secretRef": {"name": name}} for name in settings.provider_secrets]
    if options.mode == "native":
        container["restartPolicy"] = "Always"  # a native sidecar: starts first, stops last
    elif settings.pre_stop_seconds:
        # classic: SIGTERM reaches every container at once; keep serving while the application drains
        container["lifecycle"] = {"preStop": {"exec": {"command": ["sleep", str(settings.pre_stop_seconds)]}}}
    return container


def _sidecar_env(settings: InjectorSettings, options: PodOptions) -> list[Json]:
    env: list[Json] = [
        {"name": "SIDECAR__SETTINGS__LISTEN__ADDRESS", "value": f"127.0.0.1:{settings.grpc_port}"},
        # the probes' port: served even when the config turns metrics off (`enabled: false`), or
        # the startup probe would never pass and the kubelet would restart the sidecar forever
        {"name": "SIDECAR__SETTINGS__TELEMETRY__METRICS__ENABLED", "value": "true"},
        {
            "name": "SIDECAR__SETTINGS__TELEMETRY__METRICS__ADDRESS",
            # every address, IPv6 and IPv4: on an IPv6 cluster the kubelet probes the pod's IPv6 one
            # (quoted: the sidecar reads the value as YAML, where a bare [ opens a list)
            "value": f"'[::]:{settings.health_port}'",
        },
        {"name": "SIDECAR__SETTINGS__LOG_LEVEL", "value": options.log_level},
        {"name": "SIDECAR__SETTINGS__SHUTDOWN_GRACE_SECONDS", "value": str(settings.drain_seconds)},
    ]
    if options.transport == "unix":
        env.append({"name": "SIDECAR__SETTINGS__LISTEN__UNIX_SOCKET", "value": socket_path(settings)})
    if settings.token_secret is not None:
        env.append({"name": "SIDECAR_TOKEN", "valueFrom": _secret_ref(settings)})
    return env


def _secret_ref(settings: InjectorSettings) -> Json:
    assert settings.token_secret is not None
    return {"secretKeyRef": {"name": settings.token_secret.name, "key": settings.token_secret.key}}


def _probes(settings: InjectorSettings) -> Json:
    def probe(path: str, **timing: int) -> Json:
        return {"httpGet": {"path": path, "port": HEALTH_PORT_NAME}, "timeoutSeconds": 2, **timing}

    return {
        "startupProbe": probe("/readyz", periodSeconds=1, failureThreshold=STARTUP_SECONDS),
        "livenessProbe": probe("/livez", periodSeconds=10, failureThreshold=3),
        "readinessProbe": probe("/readyz", periodSeconds=5, failureThreshold=2),
    }


def _resources(options: PodOptions) -> Json:
    resources: Json = {}
    if options.requests:
        resources["requests"] = dict(options.requests)
    if options.limits:
        resources["limits"] = dict(options.limits)
    return resources


def pod_resources(current: object, options: PodOptions) -> object:
    """Pod-level resources (`spec.resources`, Kubernetes 1.32+) grown by the sidecar's own: the API
    server refuses a pod whose containers together request more than the pod does, so a pod sized
    for its application alone was refused once the sidecar was added. Each resource the pod states
    grows by the sidecar's request (or, for a limit, its limit, else its request); a value that is no
    quantity is left for the API server to refuse."""
    if not isinstance(current, dict):
        return current
    requests, limits = dict(options.requests), dict(options.limits)
    out = dict(current)
    for field, extra in (("requests", requests), ("limits", {**requests, **limits})):
        stated = current.get(field)
        if isinstance(stated, dict):
            out[field] = {r: _plus(v, extra.get(r)) for r, v in stated.items()}
    return out


def _plus(stated: object, extra: str | None) -> object:
    if extra is None:
        return stated
    try:
        return quantity_text(quantity_value(str(stated)) + quantity_value(extra))
    except ValueError:
        return stated


def security_context(run_as_user: int) -> Json:
    """Non-root, read-only root filesystem, no privilege escalation, no capabilities."""
    return {
        "runAsNonRoot": True,
        "runAsUser": run_as_user,
        "runAsGroup": run_as_user,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def volumes(options: PodOptions) -> list[Json]:
    return [
        {"name": SOCKET_VOLUME, "emptyDir": {}},
        {"name": CONFIG_VOLUME, "configMap": {"name": options.config_map}},
        {"name": STATE_VOLUME, "emptyDir": {}},
    ]


def app_env(settings: InjectorSettings, options: PodOptions) -> list[Json]:
    """The variables the clients read: the sidecar's address and, if one is set, the shared token."""
    env: list[Json] = [{"name": settings.address_env, "value": app_address(settings, options)}]
    if settings.token_secret is not None:
        env.append({"name": settings.token_env, "valueFrom": _secret_ref(settings)})
    return env


def app_mounts(settings: InjectorSettings, options: PodOptions) -> list[Json]:
    if options.transport != "unix":
        return []
    return [{"name": SOCKET_VOLUME, "mountPath": settings.socket_dir}]


def termination_grace(settings: InjectorSettings, options: PodOptions, current: int | None) -> int:
    """At least the pod's own grace (30 s by default) and enough for the sidecar's drain to finish."""
    needed = settings.drain_seconds + 5
    if options.mode == "classic":
        needed += settings.pre_stop_seconds
    return max(30 if current is None else current, needed)
