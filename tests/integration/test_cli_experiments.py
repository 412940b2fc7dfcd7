"""`sidecar experiments` as an operator runs it: a served sidecar promotes a variant on SIGHUP (audit
trail in the ledger), then `experiments feedback` and `experiments report` read the same ledger."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port
from tests.integration.test_cli import SIDECAR, run
from tests.support.prometheus import quiet_telemetry

pytestmark = pytest.mark.integration


def config(tmp_path: Path, port: int, **exp: Any) -> dict[str, Any]:
    return {
        "settings": {"listen": {"address": f"127.0.0.1:{port}"}, "telemetry": quiet_telemetry(tmp_path)},
        "policy": {
            "default_route": "chat",
            "deployments": {
                "one": {"provider": "echo", "model": "e1"},
                "two": {"provider": "echo", "model": "e2"},
            },
            "routes": {"chat": {"deployments": ["one", "two"]}},
            "experiments": {
                "tone": {
                    "route": "chat",
                    "control": "a",
                    "variants": {"a": {"deployments": ["one"]}, "b": {"deployments": ["two"]}},
                    "min_samples": 2,
                    **exp,
                }
            },
        },
    }


def test_sighup_promotes_and_the_cli_reads_the_ledger(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, port)))
    server = subprocess.Popen([*SIDECAR, "serve", "--config", str(path)], stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    try:
        assert "sidecar serving" in server.stderr.readline()
        assert "experiment in force" in server.stderr.readline()  # the start, in the audit trail too
        path.write_text(yaml.safe_dump(config(tmp_path, port, promoted="b")))
        server.send_signal(signal.SIGHUP)
        assert "experiment changed" in server.stderr.readline()
        chat = run("chat", "hello", "--target", f"127.0.0.1:{port}")
        assert chat.returncode == 0, chat.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=15)
    assert server.returncode == 0
    with sqlite3.connect(tmp_path / "usage.db") as conn:
        audit = conn.execute("SELECT experiment, change, source FROM experiment_audit").fetchall()
        served = conn.execute("SELECT request_id, variant, model FROM usage_records").fetchall()
    assert audit == [
        ("tone", "in force at start: status running, promoted -, weights a=1,b=1", "start"),
        ("tone", "promoted - -> b", f"SIGHUP {path}"),
    ]
    assert [(variant, model) for _, variant, model in served] == [("b", "e2")]
    request_id = served[0][0]
    stored = run("experiments", "feedback", "--config", str(path), "--tenant", "", "--request-id", request_id,
                 "--score", "0.9")  # fmt: skip
    assert stored.returncode == 2 and "tenant_id" in stored.stderr  # an empty tenant is refused
    with sqlite3.connect(tmp_path / "usage.db") as conn:
        conn.execute("UPDATE usage_records SET tenant = 'acme'")  # the chat CLI sends no tenant
    feedback = ("experiments", "feedback", "--config", str(path), "--tenant", "acme", "--score", "0.9")
    stored = run(*feedback, "--request-id", request_id, "--label", "accuracy")
    assert stored.returncode == 0, stored.stderr
    missing = run(*feedback, "--request-id", "nope")
    assert missing.returncode == 2 and "CALL_NOT_FOUND" in missing.stderr
    report = run("experiments", "report", "tone", "--config", str(path))
    assert report.returncode == 0, report.stderr
    assert "experiment tone (control a" in report.stdout
    assert "b vs a: INSUFFICIENT DATA" in report.stdout
    unknown = run("experiments", "report", "nope", "--config", str(path))
    assert unknown.returncode == 2
