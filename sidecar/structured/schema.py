"""JSON Schema checks with the `jsonschema` library (draft 2020-12).

`schema_problem` says why a document is not a usable schema (for a request's tool parameters and
response_format); `answer_problem` says why an answer's text does not validate against one.
Schemas are bounded in size and depth before the library sees them, and their regular expressions
are matched within a time budget (sidecar/structured/patterns.py); their `$ref`s must resolve
within the schema (sidecar/structured/refs.py). An answer's whole check is bounded in CPU time and
never fetches anything (sidecar/structured/bounds.py).

The library (with `referencing` and `rpds`, about 4 MB of RSS) is imported on the first call that
carries a schema, not at start: a sidecar whose callers never send tools or a response format does
not hold it. That first call pays the import once (about 70 ms on the benchmark machine).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sidecar.structured import running
from sidecar.structured.bounds import CheckBudget, CheckTooSlow, no_fetch_registry, timed_validator
from sidecar.structured.patterns import (
    MATCH_BUDGET_SECONDS,
    PatternBudget,
    UncheckablePattern,
    bounded_validator,
    unbounded_combination,
    uncompilable,
)
from sidecar.structured.refs import dangling_ref, ref_cycle

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

MAX_SCHEMA_BYTES = 64 * 1024
MAX_DEPTH = 32


def canonical(value: Any) -> str:
    """Canonical JSON text: sorted keys, no spaces (cache keys and fingerprints stay stable)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def integral(value: Any) -> Any:
    """protobuf Struct numbers are doubles: 3.0 back to 3, so `"maxItems": 3` stays an integer."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, Mapping):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, Mapping):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _validator() -> type[Draft202012Validator]:
    from jsonschema import Draft202012Validator  # on first use: see the module docstring

    return Draft202012Validator


def schema_problem(schema: Any, *, object_root: bool = False) -> str | None:
    """None when `schema` is a valid JSON Schema within bounds, else what is wrong with it."""
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, Mapping):
        return "a JSON Schema object"
    if len(canonical(schema)) > MAX_SCHEMA_BYTES:
        return f"a JSON Schema of at most {MAX_SCHEMA_BYTES} bytes"
    if _depth(schema) > MAX_DEPTH:
        return f"a JSON Schema nested at most {MAX_DEPTH} deep"
    if unbounded_combination(schema):
        return "a JSON Schema without unevaluatedProperties beside patternProperties"
    try:
        _validator().check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message[:200]}"
    except (RecursionError, OverflowError) as exc:  # `re` compiling a pattern raises these, not re.error
        return f"not a valid JSON Schema: a pattern that cannot be compiled ({exc})"
    if (ref := dangling_ref(schema)) is not None:
        return f"a JSON Schema whose $refs point within it: {ref[:100]!r} points at nothing"
    if (ref := ref_cycle(schema)) is not None:
        return (
            f"a JSON Schema that never applies itself to the same value: {ref[:100]!r} leads back to itself"
        )
    if (bad := uncompilable(schema)) is not None:
        return f"a JSON Schema whose patterns the sidecar can run: {bad}"
    if object_root and schema.get("type", "object") != "object":
        return 'a JSON Schema with "type": "object"'
    return None


def _not_json(constant: str) -> Any:
    """NaN, Infinity and -Infinity: Python's json module reads them, no caller's JSON parser does."""
    raise ValueError(f"{constant} is not JSON")


def answer_problem(text: str, schema: Mapping[str, Any] | None) -> str | None:
    """None when `text` is JSON (an object when there is no schema) valid against `schema`."""
    from referencing.exceptions import Unresolvable

    try:
        value = json.loads(text, parse_constant=_not_json)
    except ValueError:
        return "the answer is not JSON"
    except RecursionError:  # the model's (or a hostile upstream's) text, nested past the parser's stack
        return "the answer is JSON nested too deeply to check"
    if schema is None:
        return None if isinstance(value, dict) else "the answer is not a JSON object"
    bounded: Any = bounded_validator(_validator())
    validator = timed_validator(bounded)(schema, registry=no_fetch_registry())
    try:
        with running.check(PatternBudget(MATCH_BUDGET_SECONDS), CheckBudget()):
            error = next(iter(validator.iter_errors(value)), None)
    except (UncheckablePattern, CheckTooSlow) as exc:
        return str(exc)
    except Unresolvable as exc:  # refused at the edge (refs.py): the answer fails, never the call
        return f"the schema has a $ref that points at nothing ({type(exc).__name__})"
    except RecursionError:  # a recursive schema following an answer nested past the validator's stack
        return "the answer is JSON nested too deeply to check"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message[:200]}"
