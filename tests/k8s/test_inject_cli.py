"""`sidecar inject -f`: the webhook's mutation on manifests (every workload kind, multi-document YAML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.cli import main

TEMPLATE = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}}
WORKLOADS: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": TEMPLATE["spec"]},
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": TEMPLATE},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "s"},
        "spec": {"template": TEMPLATE},
    },
    {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "ds"},
        "spec": {"template": TEMPLATE},
    },
    {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": TEMPLATE}},
    {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": TEMPLATE}}},
    },
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}},
]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "Pod":
        return dict(doc["spec"])
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(doc["spec"]["template"]["spec"])


def test_every_workload_kind_in_a_multi_document_file_is_injected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump_all(WORKLOADS))
    assert main(["inject", "-f", str(path), "--image", "registry.example/sidecar:2"]) == 0
    captured = capsys.readouterr()
    docs = list(yaml.safe_load_all(captured.out))
    assert [d["kind"] for d in docs] == [w["kind"] for w in WORKLOADS]
    for doc in docs[:-1]:
        spec = pod_spec(doc)
        assert spec["initContainers"][0]["name"] == "orchestrator-sidecar", doc["kind"]
        assert spec["initContainers"][0]["image"] == "registry.example/sidecar:2"
    assert docs[-1] == WORKLOADS[-1]  # not a workload: unchanged
    assert "document 2 Deployment/d: injected" in captured.err


def test_running_it_twice_changes_nothing_and_opted_out_templates_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    opted_out = {**WORKLOADS[1], "metadata": {"name": "keep"}}
    opted_out["spec"] = {
        "template": {**TEMPLATE, "metadata": {"annotations": {"orchestrator.sidecar/inject": "false"}}}
    }
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump_all([WORKLOADS[1], opted_out]))
    once = tmp_path / "once.yaml"
    assert main(["inject", "-f", str(path), "-o", str(once), "--mode", "classic"]) == 0
    first = list(yaml.safe_load_all(once.read_text()))
    assert [c["name"] for c in pod_spec(first[0])["containers"]] == ["app", "orchestrator-sidecar"]
    assert first[1] == opted_out
    twice = tmp_path / "twice.yaml"
    assert main(["inject", "-f", str(once), "-o", str(twice)]) == 0
    assert list(yaml.safe_load_all(twice.read_text())) == first
    assert "already_injected" in capsys.readouterr().err


def test_a_list_and_a_settings_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "injector.yaml"
    settings.write_text(yaml.safe_dump({"image": "r/s:3", "config_map": "team-config", "transport": "tcp"}))
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": WORKLOADS[:2]}))
    assert main(["inject", "-f", str(path), "--settings", str(settings)]) == 0
    items = yaml.safe_load(capsys.readouterr().out)["items"]
    for item in items:
        spec = pod_spec(item)
        env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
        assert env["ORCHESTRATOR_SIDECAR_ADDRESS"] == "127.0.0.1:50051"
        config = next(v for v in spec["volumes"] if v["name"] == "orchestrator-sidecar-config")
        assert config["configMap"]["name"] == "team-config"


TURBO = {**TEMPLATE, "metadata": {"annotations": {"orchestrator.sidecar/mode": "turbo"}}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [unclosed", "not YAML"),
        (
            yaml.safe_dump({**WORKLOADS[1], "spec": {"template": TURBO}}),
            "document 1 Deployment/d: annotation orchestrator.sidecar/mode: 'turbo' is not one of",
        ),
        (yaml.safe_dump({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {}}), "no pod template at"),
        (  # a quoted number: a traceback (TypeError) before
            yaml.safe_dump(
                {
                    **WORKLOADS[1],
                    "spec": {
                        "template": {
                            **TEMPLATE,
                            "spec": {**TEMPLATE["spec"], "terminationGracePeriodSeconds": "30"},
                        }
                    },
                }
            ),
            "document 1 Deployment/d: spec.terminationGracePeriodSeconds is not an integer",
        ),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path, out = tmp_path / "bad.yaml", tmp_path / "out.yaml"
    path.write_text(text)
    assert main(["inject", "-f", str(path), "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_bad_settings_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "injector.yaml"
    settings.write_text("image: x\nconfig_map: c\nmode: turbo\n")
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(WORKLOADS[0]))
    assert main(["inject", "-f", str(path), "--settings", str(settings)]) == 2
    assert "mode" in capsys.readouterr().err


def test_a_bad_override_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump(WORKLOADS[0]))
    assert main(["inject", "-f", str(path), "--config-map", "Not_A_Name"]) == 2
    assert "config_map" in capsys.readouterr().err


AMBIGUOUS = [
    "y",
    "n",
    "on",
    "off",
    "yes",
    "NO",
    "1e3",
    "1.5e3",
    "-2E-5",
    "0o17",
    "0x1F",
    "1_000",
    "1:20",
    ".inf",
]


def test_strings_another_yaml_reader_would_retype_are_quoted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PyYAML wrote y and 1e3 bare; kubectl and the API server (YAML 1.1) read them as a boolean and
    a number, and refused the manifest (tests/k8s/test_cluster.py posts it)."""
    env = [{"name": f"V{i}", "value": v} for i, v in enumerate(AMBIGUOUS)]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "app", "image": "app:1", "env": env}]}}  # fmt: skip
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"flag": "y"}}
    path = tmp_path / "app.yaml"
    path.write_text(yaml.safe_dump_all([pod, config]))
    assert main(["inject", "-f", str(path)]) == 0
    out = capsys.readouterr().out
    for value in AMBIGUOUS:
        assert f"value: '{value}'" in out
    assert "flag: 'y'" in out  # documents passed through are written the same way
    docs = list(yaml.safe_load_all(out))
    assert docs[0]["spec"]["containers"][0]["env"][: len(env)] == env and docs[1] == config
