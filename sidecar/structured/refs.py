"""A schema's `$ref`s resolved within the schema itself (or the JSON Schema metaschemas the check
knows too), at the edge (nothing is ever fetched).

`check_schema` only says a `$ref` is a string; jsonschema resolves it when an answer reaches it, and
one that points at nothing (`#/$defs/missing`, another document's URL) raised there, after the call
had run. `dangling_ref` finds such a reference first: each `$ref` is looked up from the base URI of
the subschema holding it (a nested `$id` moves it, as the specification says), in a registry holding
the schema and every subschema with an `$id` or an anchor, and nothing else.

jsonschema follows a `$ref` without noticing a cycle: one that returns to where it started without
descending into the answer (`{"allOf": [{"$ref": "#"}]}`) recursed until Python's limit, an INTERNAL
after the call had run. `ref_cycle` finds those first; a recursive schema that descends (a tree's
`items: {"$ref": "#"}`) is fine.

    dangling_ref({"properties": {"a": {"$ref": "#/$defs/gone"}}})   # "#/$defs/gone"
    ref_cycle({"allOf": [{"$ref": "#"}]})                            # "#"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ROOT_URI = "urn:orchestrator:schema"  # the base URI of a schema without an $id of its own
_DATA_KEYWORDS = frozenset({"enum", "const", "default", "examples"})  # values, not subschemas
_IN_PLACE_ONE = ("not", "if", "then", "else")  # applied to the same instance, not to a part of it
_IN_PLACE_MANY = ("allOf", "anyOf", "oneOf")


def dangling_ref(schema: Mapping[str, Any]) -> str | None:
    """The first `$ref` or `$dynamicRef` of `schema` that resolves to nothing within it or the JSON
    Schema metaschemas (or an `$id` that is no URI, `http://[`), or None."""
    try:
        nodes = _scoped_nodes(schema)
    except ValueError:  # urllib's word for a URI it cannot join: an $id
        return "an $id that is no URI"
    for node, scope in nodes.values():
        for ref in (node.get("$ref"), node.get("$dynamicRef")):
            if isinstance(ref, str) and not _resolves(scope, ref):
                return ref
    return None


def _resolves(scope: Any, ref: str) -> bool:
    from referencing.exceptions import Unresolvable

    try:
        scope.lookup(ref)
    except (Unresolvable, ValueError):
        return False
    return True


def ref_cycle(schema: Mapping[str, Any]) -> str | None:
    """A `$ref` closing a cycle of subschemas applied to one and the same instance, or None.
    Assumes every `$ref` resolves (`dangling_ref` first)."""
    nodes = _scoped_nodes(schema)
    state: dict[int, bool] = {}  # id(node): False while on the path, True once done
    for start in nodes.values():
        stack: list[tuple[Mapping[str, Any], list[tuple[str | None, Any]]]] = []
        if id(start[0]) not in state:
            stack.append((start[0], _in_place(*start)))
            state[id(start[0])] = False
        while stack:
            node, successors = stack[-1]
            if not successors:
                state[id(node)] = True
                stack.pop()
                continue
            ref, nxt = successors.pop()
            if not isinstance(nxt, Mapping) or id(nxt) not in nodes:
                continue
            seen = state.get(id(nxt))
            if seen is False:
                return ref or "#"
            if seen is None:
                state[id(nxt)] = False
                stack.append((nxt, _in_place(*nodes[id(nxt)])))
    return None


def _in_place(node: Mapping[str, Any], scope: Any) -> list[tuple[str | None, Any]]:
    """The subschemas `node` applies to its own instance, each with the `$ref` that led to it."""
    out: list[tuple[str | None, Any]] = [(None, node.get(k)) for k in _IN_PLACE_ONE]
    out += [(None, s) for k in _IN_PLACE_MANY if isinstance(node.get(k), list) for s in node[k]]
    if isinstance(deps := node.get("dependentSchemas"), Mapping):
        out += [(None, s) for s in deps.values()]
    if isinstance(ref := node.get("$ref"), str):
        out.append((ref, scope.lookup(ref).contents))
    return out


def _scoped_nodes(schema: Mapping[str, Any]) -> dict[int, tuple[Mapping[str, Any], Any]]:
    """Every mapping of `schema` (by id) with the resolver of its base URI."""
    from referencing.jsonschema import DRAFT202012

    from sidecar.structured.bounds import no_fetch_registry

    root = DRAFT202012.create_resource(schema)
    base = root.id() or ROOT_URI
    found: dict[int, tuple[Mapping[str, Any], Any]] = {}
    registry = no_fetch_registry().with_resource(base, root).crawl()  # the metaschemas, as the check
    pending: list[tuple[Any, Any]] = [(schema, registry.resolver(base))]
    while pending:
        node, scope = pending.pop()
        if isinstance(node, list):
            pending.extend((item, scope) for item in node)
        elif isinstance(node, Mapping) and id(node) not in found:
            if node is not schema and isinstance(node.get("$id"), str):
                scope = scope.in_subresource(DRAFT202012.create_resource(node))
            found[id(node)] = (node, scope)
            pending.extend((value, scope) for key, value in node.items() if key not in _DATA_KEYWORDS)
    return found
