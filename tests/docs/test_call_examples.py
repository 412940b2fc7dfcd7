"""The call examples of the documentation, run as written against a real `sidecar serve` process.

The examples say `127.0.0.1:50051`, the address `make run` serves; here the sidecar listens on a
free port, so that address (and `sidecar chat`'s default target) is pointed at it, nothing else is
changed. Shell examples run from the repository root (`.venv/bin/sidecar`, `buf` from
`tools/node_modules`, both installed by `make setup`); Python examples run with the client of
`clients/python` on the path and its address in `$ORCHESTRATOR_SIDECAR_ADDRESS`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, Block, all_blocks
from tests.support.kms import component_missing, free_port, stop

DOC_ADDRESS = "127.0.0.1:50051"
BUF = ROOT / "tools" / "node_modules" / ".bin" / "buf"
START_TIMEOUT_SECONDS = 30.0
BLOCKS = all_blocks()
EXAMPLES = [b for b in BLOCKS if b.mark == "example"]
NAMED_CONFIGS = {b.options["name"]: b for b in BLOCKS if b.mark == "config" and "name" in b.options}
_EXPECTED = re.compile(r"^\s*print\(.*\)\s+#\s*(?P<out>.+?)\s*$")


class Served:
    """`sidecar serve` (the embedded default, or a config file) on a free port, in its own folder."""

    def __init__(self, workdir: Path, config: Path | None) -> None:
        self.target = f"127.0.0.1:{free_port()}"
        self.log = workdir / "sidecar.log"
        env = {
            **os.environ,
            "SIDECAR__SETTINGS__LISTEN__ADDRESS": self.target,
            "SIDECAR__SETTINGS__TELEMETRY__METRICS__ADDRESS": "127.0.0.1:0",
            "SIDECAR__SETTINGS__TELEMETRY__LEDGER__SQLITE_PATH": str(workdir / "usage.db"),
        }
        command = [sys.executable, "-m", "sidecar", "serve"] + (["--config", str(config)] if config else [])
        with self.log.open("wb") as out:  # from the repository root: configs name examples/ relatively
            self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while "sidecar serving" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                stop(self.process)
                pytest.fail(f"sidecar did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.02)

    def close(self) -> None:
        stop(self.process)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """One sidecar per configuration the examples run against, started when first needed."""
    started: dict[str, Served] = {}
    yield started
    for served in started.values():
        served.close()


def server_for(block: Block, servers: dict[str, Served], tmp: Path) -> Served:
    name = block.options.get("against", "")
    if name not in servers:
        config = None
        if name:
            assert name in NAMED_CONFIGS, f"{block.where}: no `<!-- config: full name={name} -->` block"
            config = tmp / f"{name}.yaml"
            config.write_text(NAMED_CONFIGS[name].text)
        servers[name] = Served(tmp, config)
    return servers[name]


def commands(text: str) -> list[str]:
    """A shell block's commands: continuation lines joined, comment lines dropped."""
    joined = re.sub(r"\\\n\s*", "", text)
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def pointed_at(command: str, target: str) -> str:
    command = command.replace(DOC_ADDRESS, target)
    return re.sub(r"\bsidecar (chat|embed) ", rf"sidecar \1 --target {target} ", command)


def test_the_documentation_has_call_examples() -> None:
    kinds = {b.kind_word for b in EXAMPLES}
    assert kinds == {"shell", "python"}, kinds
    shell = " ".join(b.text for b in EXAMPLES if b.kind_word == "shell")
    assert "sidecar chat" in shell and "buf curl" in shell


@pytest.mark.parametrize("block", EXAMPLES, ids=[b.where for b in EXAMPLES])
def test_call_example_runs(
    block: Block, servers: dict[str, Served], tmp_path_factory: pytest.TempPathFactory
) -> None:
    served = server_for(block, servers, tmp_path_factory.mktemp("sidecar"))
    if block.kind_word == "shell":
        run_shell(block, served.target)
    else:
        run_python(block, served.target)


def run_shell(block: Block, target: str) -> None:
    for command in commands(block.text):
        if "buf curl" in command and not BUF.is_file():
            component_missing(f"buf is not installed at {BUF} (make setup installs it)")
        result = subprocess.run(
            ["bash", "-c", pointed_at(command, target)], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{block.where}: `{command}`\n{result.stderr}{result.stdout}"
        assert result.stdout.strip(), f"{block.where}: `{command}` printed nothing"


def run_python(block: Block, target: str) -> None:
    env = {
        **os.environ,
        "ORCHESTRATOR_SIDECAR_ADDRESS": target,
        "PYTHONPATH": str(ROOT / "clients" / "python" / "src"),
    }
    env.pop("ORCHESTRATOR_SIDECAR_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-c", block.text], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"{block.where}:\n{result.stderr}{result.stdout}"
    for line in block.text.splitlines():  # `print(...)  # what it prints` is checked
        if expected := _EXPECTED.match(line):
            assert expected["out"] in result.stdout, (
                f"{block.where}: expected {expected['out']!r}:\n{result.stdout}"
            )


def test_examples_are_pointed_at_the_test_sidecar_only() -> None:
    command = '.venv/bin/sidecar chat --stream "hi"   # a comment'
    assert (
        pointed_at(command, "127.0.0.1:7")
        == '.venv/bin/sidecar chat --target 127.0.0.1:7 --stream "hi"   # a comment'
    )
    assert pointed_at(f"buf curl http://{DOC_ADDRESS}/x", "127.0.0.1:7") == "buf curl http://127.0.0.1:7/x"
    assert commands("a \\\n  b\n# c\nd\n") == ["a b", "d"]
