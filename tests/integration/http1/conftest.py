"""Every async test here runs twice: on the stdlib event loop and on uvloop, which the sidecar runs
on (their transports differ: uvloop's are not registered asyncio.Transport subclasses)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
