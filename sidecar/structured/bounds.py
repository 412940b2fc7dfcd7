"""What checking one answer against its schema may cost, beyond its patterns (sidecar/structured/
patterns.py): CPU time, pairwise comparisons, and network.

- **CPU time.** A 40-byte answer 30 arrays deep, against a node that is `anyOf` two node arrays, made
  jsonschema try both branches at every level: 2^30 paths, on the event loop. Every keyword of the
  check counts against CHECK_SECONDS of the thread's CPU time (the event loop's, which it holds;
  time the process is not scheduled does not count), looked at every 64th keyword (a clock read
  costs about a microsecond, more than most keywords): past it, `CheckTooSlow`.
- **uniqueItems** is checked in linear time (each item's canonical JSON); jsonschema compares every
  pair of items it cannot sort: 6000 objects held the event loop for half a minute.
- **No fetching.** jsonschema fetches a reference it does not hold with urllib (deprecated, still
  on), with no timeout, on the event loop: `no_fetch_registry` holds the JSON Schema metaschemas and
  nothing else is looked up anywhere.

    validator = timed_validator(base)(schema, registry=no_fetch_registry())
    with running.check(CheckBudget()):
        errors = list(validator.iter_errors(value))   # CheckTooSlow past CHECK_SECONDS of CPU
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from sidecar.structured import running

CHECK_SECONDS = 0.25  # the CPU time of one answer's whole check


class CheckTooSlow(Exception):
    """The answer's check took more than CHECK_SECONDS of CPU time."""

    def __str__(self) -> str:
        return f"the answer took too long to check against the schema (over {CHECK_SECONDS} s of CPU)"


class CheckBudget:
    """One answer's check: when its CPU time is out."""

    __slots__ = ("_calls", "_end")

    def __init__(self) -> None:
        self._end, self._calls = time.thread_time() + CHECK_SECONDS, 0

    def spend(self) -> None:
        self._calls += 1
        if self._calls % 64 == 0 and time.thread_time() > self._end:
            raise CheckTooSlow


def _timed(keyword: Any) -> Any:
    """A keyword's check that first counts against the running check's budget."""

    def check(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if (budget := running.budget(CheckBudget)) is not None:
            budget.spend()
        yield from keyword(validator, value, instance, schema) or ()

    return check


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


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if unique and validator.is_type(instance, "array"):
        keys = [json.dumps(_same_as_json(item), sort_keys=True) for item in instance]
        if len(set(keys)) < len(keys):
            yield ValidationError(f"{instance!r} has non-unique elements")


@functools.cache
def timed_validator(base: Any) -> type[Any]:
    """`base` (a jsonschema validator class) with every keyword timed and `uniqueItems` linear."""
    from jsonschema import validators

    own = {"uniqueItems": _unique_items}
    keywords = {name: _timed(own.get(name, check)) for name, check in base.VALIDATORS.items()}
    return validators.extend(base, keywords)  # type: ignore[no-untyped-call,no-any-return]


def no_fetch_registry() -> Any:
    """The references a check may resolve besides the schema's own: the bundled metaschemas."""
    from jsonschema_specifications import REGISTRY

    return REGISTRY
