"""What the quota service reports when its store fails: every error counted, the log kept readable."""

from __future__ import annotations

import logging

import pytest

from sidecar.quota.signals import QuotaSignals
from tests.conftest import FakeClock


def test_a_store_down_for_a_while_is_one_log_line_a_minute_with_the_errors_between_counted(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis down: every call's reserve and settle fail (hundreds a second on a busy sidecar). Each
    is counted and reaches the hooks (the metrics); the log has the first, then one a minute saying
    how many it did not write."""
    caplog.set_level(logging.DEBUG, logger="sidecar.quota")
    seen: list[str] = []
    signals = QuotaSignals(on_store_error=[seen.append], clock=clock)
    for _ in range(3):
        for _ in range(100):
            signals.store_error("reserve", ConnectionRefusedError("refused"))
        clock.advance(60)
    assert len(seen) == 300 and signals.store_errors_total["reserve"] == 300
    lines = [r for r in caplog.records if r.name == "sidecar.quota"]
    assert [(r.levelname, r.getMessage()) for r in lines] == [("ERROR", "quota store error")] * 3
    assert [getattr(r, "suppressed", None) for r in lines] == [0, 99, 99]
    assert lines[0].__dict__["error"] == "refused" and lines[0].__dict__["operation"] == "reserve"
