"""JSON Schema checks with the `jsonschema` library (draft 2020-12).

`schema_problem` says why a document is not a usable schema (for a request's tool parameters and
response_format); `answer_problem` says why an answer's text does not validate against one.
Schemas are bounded in size and depth before the library sees them.

The library (with `referencing` and `rpds`, about 4 MB of RSS) is imported on the first call that
carries a schema, not at start: a sidecar whose callers never send tools or a response format does
not hold it. That first call pays the import once (about 70 ms on the benchmark machine).
"""

from __future__ import annotations

import contextvars
import functools
import json
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

MAX_SCHEMA_BYTES = 64 * 1024
MAX_DEPTH = 32
# What checking one answer against its schema may take, in CPU time of the thread (the event loop's,
# which it holds; time the process is not scheduled does not count): a small answer can take longer
# than the universe has, by a pattern that backtracks (`^(a|aa)+$`) or by `anyOf` branches tried at
# every level of a deep answer (2^depth).
CHECK_SECONDS = 0.25
DEEP = "the answer is JSON nested too deeply to check"


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
    try:
        _validator().check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON Schema: {exc.message[:200]}"
    if (ref := _unresolvable_ref(schema)) is not None:
        return (
            f"a JSON Schema whose every $ref resolves within it ({ref[:80]!r} does not; nothing is fetched)"
        )
    if object_root and schema.get("type", "object") != "object":
        return 'a JSON Schema with "type": "object"'
    return None


_INSTANCE_KEYS = frozenset({"const", "enum", "default", "examples"})  # data, not subschemas


def _registry() -> Any:
    """What references may resolve to besides the schema itself: the JSON Schema metaschemas the
    library bundles. Nothing is fetched (jsonschema's default fetches any URL it does not hold, with
    urllib, no timeout, on the event loop)."""
    from jsonschema_specifications import REGISTRY

    return REGISTRY


def _unresolvable_ref(schema: Mapping[str, Any]) -> str | None:
    """The first `$ref` or `$dynamicRef` that resolves nowhere (a pointer or anchor the schema lacks,
    another document), found as the validator would resolve it; checking an answer against such a
    schema raises, after the provider was asked and paid."""
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    root = DRAFT202012.create_resource(schema)
    pending: list[tuple[Any, Any]] = [(schema, _registry().resolver_with_root(root))]
    while pending:
        value, resolver = pending.pop()
        if isinstance(value, list):
            pending.extend((v, resolver) for v in value)
            continue
        if not isinstance(value, Mapping):
            continue
        if value is not schema and isinstance(value.get("$id"), str):  # a resource of its own: its base
            resolver = resolver.in_subresource(DRAFT202012.create_resource(value))
        for ref in (value.get("$ref"), value.get("$dynamicRef")):
            try:
                if isinstance(ref, str):
                    resolver.lookup(ref)
            except Unresolvable:
                return ref
        pending.extend((v, resolver) for k, v in value.items() if k not in _INSTANCE_KEYS)
    return None


def _not_json(constant: str) -> Any:
    """NaN, Infinity and -Infinity: Python's json module reads them, no caller's JSON parser does."""
    raise ValueError(f"{constant} is not JSON")


def _same_as_json(value: Any) -> Any:
    """A value whose canonical text is equal exactly when JSON Schema calls two values equal: a float
    with an integer value is that integer (1.0 equals 1), true and 1 stay apart (they are)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _same_as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_same_as_json(v) for v in value]
    return value


class _CheckTooSlow(Exception):
    """The answer's check ran out of CHECK_SECONDS."""


class _Budget:
    """One answer's check: when its CPU time is out. Keywords look at the clock every 64th call (it
    costs about a microsecond, more than most keywords); a pattern match is bounded by what is left."""

    __slots__ = ("_calls", "_end")

    def __init__(self) -> None:
        self._end, self._calls = time.thread_time() + CHECK_SECONDS, 0

    def left(self) -> float:
        left = self._end - time.thread_time()
        if left <= 0:
            raise _CheckTooSlow
        return left

    def spend(self) -> None:
        self._calls += 1
        if self._calls % 64 == 0:
            self.left()


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("answer_check", default=None)


def _time_left() -> float:
    budget = _BUDGET.get()
    return CHECK_SECONDS if budget is None else budget.left()


def _search(pattern: str, text: str) -> bool:
    """re.search by the `regex` library (the same syntax), stopped when the check's time is out."""
    import regex

    try:
        return regex.search(pattern, text, timeout=_time_left()) is not None
    except TimeoutError:
        raise _CheckTooSlow from None


def _timed(keyword: Any) -> Any:
    """A keyword's check that first makes sure the answer's check has time left."""

    def check(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if (budget := _BUDGET.get()) is not None:
            budget.spend()
        yield from keyword(validator, value, instance, schema) or ()

    return check


@functools.cache
def _answer_validator() -> type[Draft202012Validator]:
    """Draft 2020-12 with every keyword timed (`_timed`), `pattern` and `patternProperties` matched
    by `_search` (the library's own use re, which cannot be stopped), and `uniqueItems` in linear
    time (the library's compares every pair of items it cannot sort: 18 million comparisons for 6000
    objects, half a minute)."""
    from jsonschema import ValidationError, validators

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if validator.is_type(instance, "string") and not _search(patrn, instance):
            yield ValidationError(f"{instance!r} does not match {patrn!r}")

    def pattern_properties(
        validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
    ) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "object"):
            return
        for patrn, subschema in patterns.items():
            for key, value in instance.items():
                if _search(patrn, key):
                    yield from validator.descend(value, subschema, path=key, schema_path=patrn)

    def unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if unique and validator.is_type(instance, "array"):
            keys = [canonical(_same_as_json(item)) for item in instance]
            if len(set(keys)) < len(keys):
                yield ValidationError(f"{instance!r} has non-unique elements")

    own = {"pattern": pattern, "patternProperties": pattern_properties, "uniqueItems": unique_items}
    base = _validator()
    keywords = {name: _timed(own.get(name, check)) for name, check in base.VALIDATORS.items()}
    return validators.extend(base, keywords)  # type: ignore[no-untyped-call, no-any-return]


def answer_problem(text: str, schema: Mapping[str, Any] | None) -> str | None:
    """None when `text` is JSON (an object when there is no schema) valid against `schema`."""
    try:
        value = json.loads(text, parse_constant=_not_json)
    except ValueError:
        return "the answer is not JSON"
    except RecursionError:  # the model's (or a hostile upstream's) text, nested past the parser's stack
        return DEEP
    if schema is None:
        return None if isinstance(value, dict) else "the answer is not a JSON object"
    started = _BUDGET.set(_Budget())
    try:
        error = next(iter(_answer_validator()(schema, registry=_registry()).iter_errors(value)), None)
    except _CheckTooSlow:
        return f"checking the answer against the schema took longer than {CHECK_SECONDS} s"
    except RecursionError:  # a recursive schema followed down an answer json.loads could still read
        return DEEP
    finally:
        _BUDGET.reset(started)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"at {where}: {error.message[:200]}"
