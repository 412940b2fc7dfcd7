"""Pages that include a repository file (`--8<-- "path"`, pymdownx.snippets) show all of what they
promise: an include that names an end line stops there, so a file that grows loses its tail on the
site without any build failing (the Clients page lost the retry table's last row this way)."""

from __future__ import annotations

import re

from tests.docs.blocks import ROOT

INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::(\d*))?(?::(\d+))?"', re.MULTILINE)


def test_no_include_cuts_a_file_short() -> None:
    pages = sorted((ROOT / "docs").rglob("*.md"))
    includes = [(page, m) for page in pages for m in INCLUDE.finditer(page.read_text(encoding="utf-8"))]
    assert includes, "no page includes a file"
    cut = []
    for page, m in includes:
        path, end = m.group(1), m.group(3)
        lines = (ROOT / path).read_text(encoding="utf-8").rstrip("\n").count("\n") + 1
        if end is not None and int(end) < lines:
            cut.append(f"{page.relative_to(ROOT)} includes {path} to line {end} of {lines}")
    assert not cut, "; ".join(cut)
