"""Log capture through the production formatter, for tests that look for what must never be logged."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from sidecar.telemetry.logging import JsonFormatter


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Every log record of the test, at DEBUG, through the production formatter."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
