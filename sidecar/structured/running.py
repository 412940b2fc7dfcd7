"""The budgets of the answer check running in this context (sidecar/structured/schema.py).

jsonschema calls each keyword's function with no argument of its own, so a keyword finds the
budgets of the check it belongs to here: the CPU time of the whole check (sidecar/structured/
bounds.py CheckBudget) and the time for its regular expressions (sidecar/structured/patterns.py
PatternBudget), in one context variable, by their type. A check started inside another keeps the
outer check's budgets it does not replace.

    with running.check(PatternBudget(0.25), CheckBudget()):
        errors = list(validator.iter_errors(value))
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TypeVar

B = TypeVar("B")
_NONE: Mapping[type, object] = MappingProxyType({})

# the budgets of the check running in this context, by their type
_RUNNING: contextvars.ContextVar[Mapping[type, object]] = contextvars.ContextVar(
    "structured_check_budgets", default=_NONE
)


@contextlib.contextmanager
def check(*budgets: object) -> Iterator[None]:
    """Make `budgets` the running check's, for the body (each replaces one of its type)."""
    token = _RUNNING.set(MappingProxyType({**_RUNNING.get(), **{type(b): b for b in budgets}}))
    try:
        yield
    finally:
        _RUNNING.reset(token)


def budget(kind: type[B]) -> B | None:
    """The running check's budget of type `kind`; None outside a check that set one."""
    found = _RUNNING.get().get(kind)
    return found if isinstance(found, kind) else None
