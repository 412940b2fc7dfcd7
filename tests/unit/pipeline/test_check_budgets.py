"""The running answer check's budgets (sidecar/structured/running.py): one context variable, by
type; a nested check keeps the budgets of the outer one it does not replace, all restored after."""

from __future__ import annotations

from sidecar.structured import running
from sidecar.structured.bounds import CheckBudget
from sidecar.structured.patterns import PatternBudget


def test_budgets_are_found_by_type_and_restored() -> None:
    cpu, outer, inner = CheckBudget(), PatternBudget(1.0), PatternBudget(2.0)
    assert running.budget(CheckBudget) is None and running.budget(PatternBudget) is None
    with running.check(outer, cpu):
        assert running.budget(PatternBudget) is outer and running.budget(CheckBudget) is cpu
        with running.check(inner):
            assert running.budget(PatternBudget) is inner and running.budget(CheckBudget) is cpu
        assert running.budget(PatternBudget) is outer
    assert running.budget(CheckBudget) is None and running.budget(PatternBudget) is None
