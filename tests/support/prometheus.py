"""A real Prometheus (Debian's `prometheus`) scraping a sidecar, and `promtool check metrics`.

`start_prometheus(tmp, target)` writes a config scraping `target` (host:port of /metrics) every
200 ms, starts `prometheus` on a free port with its TSDB under `tmp`, waits until it is ready and
yields its base URL; the process is stopped afterwards. `query(base, promql)` runs an instant query
through the HTTP API. In CI a missing binary fails the test; on a developer's machine it skips.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kms import component_missing, free_port, stop

START_TIMEOUT_SECONDS = 30.0


def binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").is_file() else None)
    if found:
        return found
    component_missing(f"{name} not found: apt-get install prometheus (make system-deps does)")


def quiet_telemetry(tmp: Path) -> dict[str, Any]:
    """Telemetry settings for a test server: /metrics on a free port, the ledger in `tmp`."""
    return {"metrics": {"address": "127.0.0.1:0"}, "ledger": {"sqlite_path": str(tmp / "usage.db")}}


@contextlib.contextmanager
def start_prometheus(tmp: Path, target: str, rules: Path | None = None) -> Iterator[str]:
    """`rules`: a rule file Prometheus evaluates every 200 ms too (its alerts in `ALERTS`)."""
    config = tmp / "prometheus.yml"
    settings: dict[str, Any] = {
        "global": {"scrape_interval": "200ms", "scrape_timeout": "200ms", "evaluation_interval": "200ms"},
        "scrape_configs": [{"job_name": "sidecar", "static_configs": [{"targets": [target]}]}],
    }
    if rules is not None:
        settings["rule_files"] = [str(rules)]
    config.write_text(json.dumps(settings))
    port = free_port()
    log = tmp / "prometheus.log"
    command = [
        binary("prometheus"),
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _ready(base):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"prometheus did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield base
    finally:
        stop(process)


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def query(base: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
