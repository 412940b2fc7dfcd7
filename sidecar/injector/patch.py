"""RFC 6902 JSON Patch between a pod before and after injection, with the `jsonpatch` library."""

from __future__ import annotations

import base64
import json
from typing import Any, cast

import jsonpatch

Json = dict[str, Any]


def make_patch(before: Json, after: Json) -> list[Json]:
    """The operations that turn `before` into `after`."""
    operations: list[Json] = jsonpatch.make_patch(before, after).patch
    return operations


def apply_patch(document: Json, operations: list[Json]) -> Json:
    """A copy of `document` with the operations applied; raises ValueError if one does not apply."""
    try:
        return cast(Json, jsonpatch.apply_patch(document, operations, in_place=False))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ValueError(f"patch does not apply: {exc}") from exc


def encode(operations: list[Json]) -> str:
    """The patch as an AdmissionResponse carries it: base64 of its JSON."""
    return base64.b64encode(json.dumps(operations, separators=(",", ":")).encode()).decode()
