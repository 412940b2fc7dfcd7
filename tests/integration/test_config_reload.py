"""A served sidecar's configuration as an operator handles it: a SIGHUP with a file that no longer
passes the check keeps the policy in force and says why on stderr, which is JSON logs, one object a
line."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import echo_policy, free_port
from tests.integration.test_cli import SIDECAR, run
from tests.support.prometheus import quiet_telemetry

pytestmark = pytest.mark.integration
PASSWORD = "pw-CANARY-31f0a9"


def test_sighup_with_a_bad_file_keeps_serving_and_logs_why_as_json(tmp_path: Path) -> None:
    """The reload's problems were written to stderr as plain multi-line text between the JSON log
    lines (a log collector parsing one JSON object a line got garbage), and the JSON line itself
    only said "errors above"."""
    port = free_port()
    path = tmp_path / "sidecar.yaml"
    settings = {"listen": {"address": f"127.0.0.1:{port}"}, "telemetry": quiet_telemetry(tmp_path)}
    path.write_text(yaml.safe_dump({"settings": settings, "policy": echo_policy()}))
    server = subprocess.Popen([*SIDECAR, "serve", "--config", str(path)], stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    try:
        assert "sidecar serving" in server.stderr.readline()
        path.write_text(yaml.safe_dump({"settings": settings, "policy": {"default_route": 5, "bogus": 1}}))
        server.send_signal(signal.SIGHUP)
        refused = json.loads(server.stderr.readline())
        url = f"postgresql://u:{PASSWORD}@db/usage"
        path.write_bytes(f"policy: {{default_route: echo}}\nledger: '{url}'\nx: \xff\n".encode("latin-1"))
        server.send_signal(signal.SIGHUP)
        not_utf8 = json.loads(server.stderr.readline())
        chat = run("chat", "hello", "--target", f"127.0.0.1:{port}")
        assert chat.returncode == 0, chat.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=15)
    assert server.returncode == 0, rest
    assert refused["level"] == "ERROR" and refused["message"].startswith("policy not reloaded")
    assert refused["source"] == f"SIGHUP {path}"
    assert "policy.default_route: Input should be a valid string" in refused["problems"]
    assert "policy.bogus: Extra inputs are not permitted" in refused["problems"]
    assert not_utf8["problems"] == "not UTF-8 text: line 3, column 4"
    for line in rest.splitlines():  # every line of stderr is one JSON object
        json.loads(line)
    assert PASSWORD not in rest
