"""MkDocs hooks (mkdocs.yml `hooks:`): the generated reference pages, built with the site.

`reference/configuration.md` comes from the pydantic models, `reference/api.md` from the proto
comments through a buf descriptor set, `reference/cli.md` from the `sidecar` argument parser; none
is ever written to docs/, so none can drift.
"""

from __future__ import annotations

from pathlib import Path

import api_reference  # the hook's own folder is importable while mkdocs loads it
import cli_reference
import config_reference
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "tools" / "node_modules" / ".bin" / "buf"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    if not BUF.is_file():
        raise PluginError(f"buf is not installed at {BUF}: run `make setup` (the API reference needs it)")
    descriptors = api_reference.build_descriptor_set(BUF, ROOT / "proto")
    files.append(File.generated(config, "reference/api.md", content=api_reference.render(descriptors)))
    files.append(File.generated(config, "reference/configuration.md", content=config_reference.render()))
    files.append(File.generated(config, "reference/cli.md", content=cli_reference.render()))
    return files
