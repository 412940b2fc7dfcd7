"""Every YAML configuration snippet of the documentation passes `sidecar check-config`."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.config.load import embedded_default
from tests.docs.blocks import ROOT, Block, all_blocks

YAML_BLOCKS = [b for b in all_blocks() if b.lang == "yaml"]
CONFIGS = [b for b in YAML_BLOCKS if b.mark == "config"]
_ENV_REF = re.compile(r"\benv:\s*([A-Za-z_][A-Za-z0-9_]*)")


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def example_secret(name: str) -> str:
    """A value for the variable `name`; a webhook signing secret has a format of its own (whsec_ and
    the base64 of 24 to 64 bytes): the name's bytes, padded to 32."""
    if name.endswith("WEBHOOK_SECRET"):
        return "whsec_" + base64.b64encode(name.encode().ljust(32, b"-")[:64]).decode()
    return f"doc-example-{name}"


def check_config(path: Path, text: str) -> subprocess.CompletedProcess[str]:
    """The real CLI, from the repository root, with every secret reference the snippet makes set."""
    # each its own value, as a real deployment's secrets are (two credentials may not share a token)
    environ = {"PATH": "/usr/bin:/bin", **{name: example_secret(name) for name in _ENV_REF.findall(text)}}
    return subprocess.run(
        [sys.executable, "-m", "sidecar", "check-config", str(path)],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_yaml_block_is_marked() -> None:
    unmarked = [b.where for b in YAML_BLOCKS if b.mark not in ("config", "yaml")]
    assert not unmarked, (
        f"YAML blocks without a `<!-- config: ... -->` or `<!-- yaml: ... -->` mark: {unmarked}"
    )
    unknown = [b.where for b in CONFIGS if b.kind_word not in ("full", "fragment", "persona")]
    assert not unknown, f"config marks other than full, fragment or persona: {unknown}"


def test_the_documentation_has_config_snippets() -> None:
    kinds = {b.kind_word for b in CONFIGS}
    assert {"full", "fragment", "persona"} <= kinds, kinds
    assert len(CONFIGS) >= 10


def _config_file(block: Block, tmp_path: Path) -> Path:
    snippet = yaml.safe_load(block.text)
    assert isinstance(snippet, dict), f"{block.where}: not a YAML mapping"
    if block.kind_word == "full":
        config = snippet
    elif block.kind_word == "fragment":
        config = merged(embedded_default({}), snippet)
    else:  # a persona file, loaded from a persona directory of a config that names it
        personas = tmp_path / "personas"
        personas.mkdir()
        (personas / "persona.yaml").write_text(block.text)
        extra = {"policy": {"personas": {"directory": str(personas)}}}
        config = merged(embedded_default({}), extra)
        for route in snippet.get("default_route", "") and [snippet["default_route"]]:
            config["policy"]["routes"].setdefault(route, {"deployments": ["echo"]})
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize("block", CONFIGS, ids=[b.where for b in CONFIGS])
def test_config_snippet_passes_check_config(block: Block, tmp_path: Path) -> None:
    result = check_config(_config_file(block, tmp_path), block.text)
    assert result.returncode == 0, f"{block.where} ({block.kind}):\n{result.stderr}{result.stdout}"
    assert ": OK (" in result.stdout


def test_a_broken_snippet_fails_the_check(tmp_path: Path) -> None:
    """The check can fail: an unknown key in a fragment is reported, naming the key."""
    block = Block(
        ROOT / "docs" / "x.md", 1, "yaml", "config", "fragment", "settings: {listen: {adress: x}}\n"
    )
    result = check_config(_config_file(block, tmp_path), block.text)
    assert result.returncode == 1
    assert "adress" in result.stderr
