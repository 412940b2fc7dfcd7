"""A schema's `$ref`s resolved within the schema itself, at the edge (nothing is ever fetched).

`check_schema` only says a `$ref` is a string; jsonschema resolves it when an answer reaches it, and
one that points at nothing (`#/$defs/missing`, another document's URL) raised there, after the call
had run. `dangling_ref` finds such a reference first: each `$ref` is looked up from the base URI of
the subschema holding it (a nested `$id` moves it, as the specification says), in a registry holding
the schema and every subschema with an `$id` or an anchor, and nothing else.

    dangling_ref({"properties": {"a": {"$ref": "#/$defs/gone"}}})   # "#/$defs/gone"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROOT_URI = "urn:orchestrator:schema"  # the base URI of a schema without an $id of its own
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})  # values, not subschemas


def dangling_ref(schema: Mapping[str, Any]) -> str | None:
    """The first `$ref` of `schema` that resolves to nothing within it (or an `$id` that is no URI,
    `http://[`), or None."""
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    root = DRAFT202012.create_resource(schema)
    base = root.id() or ROOT_URI
    try:
        resolver = Registry().with_resource(base, root).crawl().resolver(base)
    except ValueError:  # urllib's word for a URI it cannot join (an $id somewhere)
        return base
    pending: list[tuple[Any, Any]] = [(schema, resolver)]
    while pending:
        node, scope = pending.pop()
        if isinstance(node, list):
            pending.extend((item, scope) for item in node)
            continue
        if not isinstance(node, Mapping):
            continue
        if node is not schema and isinstance(node.get("$id"), str):
            try:
                scope = scope.in_subresource(DRAFT202012.create_resource(node))
            except ValueError:
                return str(node["$id"])
        if isinstance(ref := node.get("$ref"), str) and not _resolves(scope, ref):
            return ref
        pending.extend((value, scope) for key, value in node.items() if key not in _DATA_KEYWORDS)
    return None


def _resolves(scope: Any, ref: str) -> bool:
    from referencing.exceptions import Unresolvable

    try:
        scope.lookup(ref)
    except (Unresolvable, ValueError):
        return False
    return True
