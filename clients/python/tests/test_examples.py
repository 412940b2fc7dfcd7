"""examples/python/quickstart.py runs against the contract sidecar and prints what it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "python" / "quickstart.py"


def test_quickstart_example(sidecar: str, contract: dict[str, Any]) -> None:
    env = {**os.environ, "ORCHESTRATOR_SIDECAR_ADDRESS": sidecar}
    env["ORCHESTRATOR_SIDECAR_TOKEN"] = contract["token"]
    run = subprocess.run([sys.executable, str(EXAMPLE)], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("Say hello ") and lines[1] == "Say hello"
    assert lines[2].startswith("typed error: MODEL_NOT_FOUND")
