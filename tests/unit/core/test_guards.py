"""Structural guards over sidecar/: every timer goes through the clock; every inner stream is closed.

These walk the source (AST), so a new layer or call site that slips past the rules fails here
rather than as a leak or a real sleep found later from outside.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SIDECAR = Path(__file__).resolve().parents[3] / "sidecar"
TIMERS = {"sleep", "timeout", "timeout_at", "wait", "wait_for"}
LOOP_TIMERS = {"call_later", "call_at"}
HANDLER_ATTRS = {"_inner", "_pipeline", "_handler"}
HANDLER_NAMES = {"inner", "handler"}


def sources(*exempt: str) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SIDECAR.rglob("*.py")):
        rel = path.relative_to(SIDECAR).as_posix()
        if rel.startswith("_gen/") or rel in exempt:
            continue
        yield rel, ast.parse(path.read_text(), filename=rel)


def timer_uses(tree: ast.AST) -> list[str]:
    """asyncio's timers used directly (asyncio.sleep/timeout/wait/wait_for, loop.call_later, time.sleep)."""
    found = []
    for node in ast.walk(tree):
        name = node.value.id if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) else ""
        if isinstance(node, ast.Attribute) and (
            (name == "asyncio" and node.attr in TIMERS) or (name == "time" and node.attr == "sleep")
        ):
            found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
        if (
            isinstance(node, ast.Attribute)
            and node.attr in LOOP_TIMERS
            and not ast.unparse(node.value).endswith("clock")  # the injected Clock's own call_later
        ):
            found.append(f".{node.attr} (line {node.lineno})")
        if isinstance(node, ast.ImportFrom) and node.module == "asyncio":
            found += [
                f"from asyncio import {a.name} (line {node.lineno})" for a in node.names if a.name in TIMERS
            ]
    return found


def _is_handler_call(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    if isinstance(f, ast.Attribute):
        return isinstance(f.value, ast.Name) and f.value.id == "self" and f.attr in HANDLER_ATTRS
    return isinstance(f, ast.Name) and f.id in HANDLER_NAMES


def stream_misuses(tree: ast.AST) -> list[str]:
    """Streams consumed outside the helper: `async for` straight over a call (nothing closes that
    generator if the loop is left early), or a handler's stream that is neither returned as it is
    nor opened with `inner_stream(inner, call)`."""
    returned = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Return) and n.value is not None}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.AsyncFor | ast.For) and (
            (isinstance(node, ast.AsyncFor) and isinstance(node.iter, ast.Call))
            or _is_handler_call(node.iter)
        ):
            found.append(f"loop over {ast.unparse(node.iter)} (line {node.lineno})")
        if isinstance(node, ast.comprehension) and node.is_async and isinstance(node.iter, ast.Call):
            found.append(f"async comprehension over {ast.unparse(node.iter)}")
        if _is_handler_call(node) and id(node) not in returned:
            found.append(
                f"handler stream {ast.unparse(node)} not opened with inner_stream (line {node.lineno})"
            )  # type: ignore[attr-defined]
    return found


def test_no_asyncio_timer_outside_the_clock() -> None:
    offenders = {rel: uses for rel, tree in sources("core/clock.py") if (uses := timer_uses(tree))}
    assert offenders == {}, "use the injected Clock (sleep, timeout, wait, call_later) instead"


def test_every_inner_stream_goes_through_the_helper() -> None:
    offenders = {rel: bad for rel, tree in sources("core/layer.py") if (bad := stream_misuses(tree))}
    assert offenders == {}, "consume inner streams with `async with inner_stream(inner, call) as s`"


def test_the_guards_catch_what_they_are_for() -> None:
    """The checks themselves fail on the shapes that leaked before (defect 8) and on raw timers."""
    leaky = ast.parse(
        "class L:\n"
        "    async def __call__(self, call):\n"
        "        async for chunk in self._inner(call):\n"
        "            yield chunk\n"
        "    def f(self, call):\n"
        "        stream = self._inner(call)\n"
        "        return stream\n"
    )
    assert len(stream_misuses(leaky)) == 3  # the loop, and the two handler calls not returned as they are
    fine = ast.parse(
        "class L:\n"
        "    def __call__(self, call):\n"
        "        return self._inner(call)\n"
        "    async def g(self, call):\n"
        "        async with inner_stream(self._inner, call) as s:\n"
        "            async for c in s:\n"
        "                yield c\n"
    )
    assert stream_misuses(fine) == []
    timers = ast.parse(
        "import asyncio\nasync def f():\n    await asyncio.sleep(1)\n"
        "    async with asyncio.timeout(1):\n        pass\n"
    )
    assert len(timer_uses(timers)) == 2


def test_unit_tests_never_sleep() -> None:
    """Unit tests run on virtual time: `asyncio.sleep(0)` yields, anything longer is a real wait."""
    unit = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted(unit.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) in {("asyncio", "sleep"), ("time", "sleep")}
                and not (node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value == 0)
            ):
                offenders.append(f"{path.relative_to(unit)}:{node.lineno}")
    assert offenders == [], "use the FakeClock (sidecar.core.clock) instead of sleeping"
