"""YAML text -> Python data, for every configuration file (the main file, SIDECAR__ override values,
persona files, canonical answer files), refusing what PyYAML lets by.

- A key given twice in one mapping is an error: PyYAML keeps the last one silently, so a second
  `settings:` block dropped the first one's `auth`, and a second deployment of one name replaced the
  first. Keys a merge (`<<: *anchor`) brings in may still be overridden, as YAML intends.
- A problem is named by its place (line, column) and what it is, never by quoting the text there: a
  URL on the offending line may carry a password.
- Nesting past Python's recursion limit is a problem, not a RecursionError.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node

_MERGE_TAG = "tag:yaml.org,2002:merge"
NESTED_TOO_DEEPLY = "nested too deeply"


class YamlProblem(ValueError):
    """Why a text is not acceptable YAML; the message quotes none of the text."""


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                if _hashable(key) and key in seen:
                    raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                if _hashable(key):
                    seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def parse_yaml(text: str) -> Any:
    """The data of `text`, or YamlProblem."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
    except yaml.YAMLError as exc:
        raise YamlProblem(_where_and_what(exc)) from None
    except RecursionError:  # PyYAML parses nested collections recursively
        raise YamlProblem(NESTED_TOO_DEEPLY) from None


def _where_and_what(exc: yaml.YAMLError) -> str:
    parts = []
    for name in ("context", "problem"):
        text, place = getattr(exc, name, None), getattr(exc, f"{name}_mark", None)
        if text:
            parts.append(f"{text} (line {place.line + 1}, column {place.column + 1})" if place else text)
    return ": ".join(parts) or "syntax error"


def _hashable(key: object) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True
