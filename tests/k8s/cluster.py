"""A real Kubernetes API server on loopback: kine (the etcd API over SQLite) and kube-apiserver, both
built from the Go module proxy by scripts/k8s_tools.sh, started on free ports by the tests.

No kubelet runs, so pods stay Pending: what is tested is admission (the mutating webhook),
defaulting and validation. `kube-controller-manager` (deployment and replicaset controllers only)
turns Deployments into Pods.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.k8s.tools import tool
from tests.support.kms import free_port, stop

START_TIMEOUT_SECONDS = 90.0
TOKEN = "admin-token-for-tests"


@dataclass
class Cluster:
    url: str
    kubeconfig: Path
    log: Path

    def request(
        self, method: str, path: str, body: object = None, *, yaml_text: str = "", content_type: str = ""
    ) -> tuple[int, Any]:
        """One API call with the admin token; returns (status, decoded JSON or text). `yaml_text` is
        sent as is (application/yaml), as kubectl would, instead of `body` as JSON; `content_type`
        names another type for the JSON body (a patch's)."""
        data = yaml_text.encode() if yaml_text else json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {TOKEN}")
        req.add_header(
            "Content-Type", content_type or ("application/yaml" if yaml_text else "application/json")
        )
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the server's own self-signed certificate
        try:
            with urllib.request.urlopen(req, timeout=30, context=context) as resp:
                return resp.status, _decode(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _decode(exc.read())

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.request("POST", path, body)
        assert status == 201, f"POST {path}: {status} {answer}"
        return dict(answer)

    def get(self, path: str) -> dict[str, Any]:
        status, answer = self.request("GET", path)
        assert status == 200, f"GET {path}: {status} {answer}"
        return dict(answer)

    def metric(self, metric: str, **labels: str) -> float:
        """The API server's own Prometheus metric (summed over the series matching `labels`)."""
        status, text = self.request("GET", "/metrics")
        assert status == 200
        total = 0.0
        for line in str(text).splitlines():
            if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _wait(ready: Any, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready within {START_TIMEOUT_SECONDS:g}s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _start(command: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def _service_account_key(directory: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = directory / "sa.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def _kubeconfig(directory: Path, url: str) -> Path:
    path = directory / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": {"server": url, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "admin", "user": {"token": TOKEN}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
                "current-context": "test",
            }
        )
    )
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def start_cluster(directory: Path) -> Iterator[Cluster]:
    """kine, kube-apiserver and (when built) kube-controller-manager; all stopped on exit."""
    kine, apiserver, manager = tool("kine"), tool("kube-apiserver"), tool("kube-controller-manager")
    directory.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        kine_port = free_port()
        kine_log = directory / "kine.log"
        endpoint = f"sqlite://{directory}/state.db?_journal=WAL&cache=shared"
        processes.append(
            _start(
                [
                    str(kine),
                    "--listen-address",
                    f"127.0.0.1:{kine_port}",
                    "--endpoint",
                    endpoint,
                    # kine serves metrics on :8080 unless told otherwise; 0 turns them off, so a
                    # busy 8080 on the machine cannot stop the test cluster
                    "--metrics-bind-address",
                    "0",
                ],
                kine_log,
            )
        )
        _wait(lambda: _port_open(kine_port), processes[-1], kine_log, "kine")
        cluster = _start_apiserver(apiserver, directory, kine_port, processes)
        manager = (
            tool("kube-controller-manager")
            if (apiserver.parent / "kube-controller-manager").exists()
            else None
        )
        if manager is not None:
            log = directory / "kube-controller-manager.log"
            processes.append(
                _start(
                    [
                        str(manager),
                        f"--kubeconfig={cluster.kubeconfig}",
                        "--controllers=deployment,replicaset",
                        "--leader-elect=false",
                        "--use-service-account-credentials=false",
                        f"--secure-port={free_port()}",
                        "--bind-address=127.0.0.1",
                    ],
                    log,
                )
            )
        yield cluster
    finally:
        for process in reversed(processes):
            stop(process)


def _start_apiserver(
    binary: Path, directory: Path, kine_port: int, processes: list[subprocess.Popen[bytes]]
) -> Cluster:
    port = free_port()
    sa_key = _service_account_key(directory)
    tokens = directory / "tokens.csv"
    tokens.write_text(f"{TOKEN},admin,admin-uid,system:masters\n")
    log = directory / "kube-apiserver.log"
    processes.append(
        _start(
            [
                str(binary),
                f"--etcd-servers=http://127.0.0.1:{kine_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={directory / 'certs'}",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--disable-admission-plugins=ServiceAccount",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
            ],
            log,
        )
    )
    url = f"https://127.0.0.1:{port}"
    cluster = Cluster(url=url, kubeconfig=_kubeconfig(directory, url), log=log)

    def ready() -> bool:
        try:
            status, body = cluster.request("GET", "/readyz")
        except OSError:
            return False
        return status == 200 and str(body).strip() == "ok"

    _wait(ready, processes[-1], log, "kube-apiserver")
    return cluster
