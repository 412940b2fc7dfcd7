"""The Kubernetes tools the chart tests run: helm, kine and kube-apiserver, built by `make k8s-tools`
(scripts/k8s_tools.sh) into .cache/k8s. A missing one fails the test in CI and skips it elsewhere."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.kms import component_missing

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".cache" / "k8s"
CHART = ROOT / "charts" / "orchestrator-sidecar"


def tool(name: str) -> Path:
    path = TOOLS / name
    if not path.exists():
        component_missing(f"{path} not found: run `make k8s-tools` (scripts/k8s_tools.sh builds it)")
    return path


def helm(
    *args: str, env: dict[str, str] | None = None, check: bool = True, binary: str = "helm"
) -> subprocess.CompletedProcess[str]:
    """Run helm with its caches under .cache (never the user's) and return the finished process."""
    base = {
        "HELM_CACHE_HOME": str(TOOLS / "helm-home" / "cache"),
        "HELM_CONFIG_HOME": str(TOOLS / "helm-home" / "config"),
        "HELM_DATA_HOME": str(TOOLS / "helm-home" / "data"),
        "HOME": str(TOOLS / "helm-home"),  # client-go's discovery cache (~/.kube/cache)
        "PATH": "/usr/bin:/bin",
        **(env or {}),
    }
    result = subprocess.run([str(tool(binary)), *args], capture_output=True, text=True, timeout=120, env=base)
    if check and result.returncode != 0:
        raise AssertionError(
            f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}{result.stdout}"
        )
    return result


def template(
    *args: str, release: str = "demo", namespace: str = "apps", binary: str = "helm"
) -> list[dict[str, Any]]:
    """`helm template` of the chart (helm 4, or `binary="helm3"`): the rendered objects."""
    out = helm("template", release, str(CHART), "--namespace", namespace, *args, binary=binary).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(objects: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(matches) == 1, f"{len(matches)} {kind} objects named *{name_suffix}"
    return matches[0]


def ipv6_loopback() -> bool:
    """Whether this machine has ::1 (a container may run without IPv6): the IPv6 half of the
    every-address checks needs it; their IPv4 half runs everywhere."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True
