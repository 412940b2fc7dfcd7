"""A served sidecar's configuration as an operator handles it: what `sidecar serve` cannot build
from a file that passes the check fails at start with one line naming the setting (never a
traceback); a SIGHUP with a file that no longer passes the check keeps the policy in force and says
why on stderr, which is JSON logs, one object a line."""

from __future__ import annotations

import json
import os
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


@pytest.mark.parametrize("kek", ["absent", "not-a-kek"])
def test_serve_with_a_kek_file_it_cannot_use_fails_at_start_naming_the_setting(
    tmp_path: Path, kek: str
) -> None:
    """check-config passes (the file is read when the backend is built); serve died with a
    FileNotFoundError or ValueError traceback."""
    path = tmp_path / kek
    if kek == "not-a-kek":
        path.write_text("not base64 of 32 bytes\n")
    keys = {"backend": "local", "local": {"kek_file": str(path)}, "store_path": str(tmp_path / "keys.db")}
    settings = {"listen": {"address": "127.0.0.1:0"}, "telemetry": quiet_telemetry(tmp_path), "keys": keys}
    config = tmp_path / "sidecar.yaml"
    config.write_text(yaml.safe_dump({"settings": settings, "policy": echo_policy()}))
    assert run("check-config", str(config)).returncode == 0
    result = run("serve", "--config", str(config))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert f"sidecar: cannot serve: settings.keys.local.kek_file: {path}: " in result.stderr, result.stderr


def test_sighup_without_a_file_is_logged_and_never_kills_the_sidecar(tmp_path: Path) -> None:
    """Serving the embedded default (no --config) no SIGHUP handler was installed, so SIGHUP's
    default action killed the process: no log line, no drain of the calls in flight."""
    port = free_port()
    env = {
        **os.environ,
        "SIDECAR__SETTINGS__LISTEN__ADDRESS": f"127.0.0.1:{port}",
        "SIDECAR__SETTINGS__TELEMETRY__METRICS__ENABLED": "false",
        "SIDECAR__SETTINGS__TELEMETRY__LEDGER__BACKEND": "none",
    }
    server = subprocess.Popen([*SIDECAR, "serve"], stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    assert server.stderr is not None
    try:
        while "sidecar serving" not in (line := server.stderr.readline()):
            assert line, "the sidecar exited before serving"
        server.send_signal(signal.SIGHUP)
        ignored = json.loads(server.stderr.readline())
        chat = run("chat", "hello", "--target", f"127.0.0.1:{port}", "--model", "echo")
        assert chat.returncode == 0, chat.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        _, rest = server.communicate(timeout=15)
    assert server.returncode == 0, rest
    assert ignored["message"] == "SIGHUP: nothing to reload, the sidecar serves the embedded default"
