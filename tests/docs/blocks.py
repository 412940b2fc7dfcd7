"""The marked code blocks of the documentation (README.md and docs/), for the tests that run them.

A block is marked by an HTML comment on the line right before its opening fence, invisible on the
rendered page:

- `<!-- config: full -->`: a whole sidecar configuration file;
- `<!-- config: fragment -->`: sections to add to a configuration: checked merged into the embedded
  default that `make run` serves (`sidecar.config.load.embedded_default`);
- `<!-- config: persona -->`: a persona file (checked by loading it from a persona directory);
- `<!-- yaml: WHY -->`: YAML that is not a sidecar configuration (a Helm template, a values file);
- `<!-- example: shell -->` / `<!-- example: python -->`: a call example run against a real sidecar
  serving the embedded default, or, with `against=NAME`, the whole-file config block marked
  `<!-- config: full name=NAME -->`.

Every YAML block must carry a `config:` or `yaml:` mark, so none escapes the check.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^\s*```(\w*)\s*$")
_MARK = re.compile(r"^\s*<!--\s*(config|yaml|example):\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    mark: str  # "config", "yaml", "example" or "" (unmarked)
    kind: str  # what follows the mark's colon
    text: str

    @property
    def kind_word(self) -> str:
        """The mark's first word: full, fragment, persona, shell, python."""
        return self.kind.split(" ", 1)[0]

    @property
    def options(self) -> dict[str, str]:
        """The mark's `key=value` words."""
        return dict(word.split("=", 1) for word in self.kind.split()[1:] if "=" in word)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        lang = opening.group(1)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        mark = _MARK.match(lines[i - 1]) if i > 0 else None
        text = textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n"
        kind, what = (mark.group(1), mark.group(2)) if mark else ("", "")
        found.append(Block(path, i + 1, lang, kind, what, text))
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]
