"""README.md stays a front page whose links and commands are true."""

from __future__ import annotations

import re

from tests.docs.blocks import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_is_a_front_page() -> None:
    assert len(README.splitlines()) <= 250


def test_every_relative_link_of_the_readme_resolves() -> None:
    """mkdocs checks the site's links; the README is read on the forge, so its own are checked here."""
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    relative = [link.split("#", 1)[0] for link in links if not re.match(r"[a-z]+:", link)]
    assert len(relative) > 20
    missing = [link for link in relative if link and not (ROOT / link).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_quickstart_commands_are_makefile_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"(?:^|`)make ([a-z][\w-]*)", README, flags=re.MULTILINE))
    assert {"run", "test", "docs"} <= targets
    for target in targets:
        assert re.search(rf"^{target}:", makefile, flags=re.MULTILINE), f"no Makefile target {target}"
