from __future__ import annotations

import pytest

from sidecar.providers._http import redact, retry_after_seconds


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "120", "retry-after": "9"}, 0.12),
        ({"retry-after": "Sat, 21 Nov 2026 05:00:30 GMT", "date": "Sat, 21 Nov 2026 05:00:00 GMT"}, 30.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, 0.0),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_redact_removes_key_shaped_text() -> None:
    text = "Incorrect API key provided: sk-proj-abcdefghijklmnop1234. Bearer abcd1234efgh"
    out = redact(text)
    assert "sk-proj" not in out and "abcd1234efgh" not in out and "Incorrect API key" in out


def test_redact_bounds_length() -> None:
    assert len(redact("word " * 1000)) == 300


@pytest.mark.parametrize(("left", "caller"), [(0.0, True), (0.005, True), (0.019, True), (0.5, False)])
def test_a_read_timeout_at_the_deadline_is_the_callers(left: float, caller: bool) -> None:
    """Defect 1: a timer bounded by the time left fires at the deadline, and asyncio may run it a
    hair early; within DEADLINE_MARGIN it is DEADLINE_EXCEEDED, never the upstream's timeout."""
    from sidecar.core.clock import Deadline, FakeClock
    from sidecar.core.errors import DeadlineExceededError, ProviderTimeoutError
    from sidecar.providers._http import map_http_errors

    clock = FakeClock()
    deadline = Deadline.after(0.3, clock)
    clock.advance(0.3 - left)
    with pytest.raises(DeadlineExceededError if caller else ProviderTimeoutError), map_http_errors(deadline):
        raise TimeoutError
