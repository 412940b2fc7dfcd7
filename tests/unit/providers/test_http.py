from __future__ import annotations

import pytest

from sidecar.providers.http1 import keepalive_timeout
from sidecar.providers.upstream_errors import redact, retry_after_seconds


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "120", "retry-after": "9"}, 0.12),
        ({"retry-after": "Sat, 21 Nov 2026 05:00:30 GMT", "date": "Sat, 21 Nov 2026 05:00:00 GMT"}, 30.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "1e400"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "\u00b2"}, None),  # byte 0xB2 as Latin-1: a digit to str.isdigit, not to float
        ({"retry-after-ms": "\u00b9\u00b3", "retry-after": "\u00b3"}, None),
        ({"retry-after-ms": "-5", "retry-after": "2"}, 2.0),
        ({"retry-after": "Sat, 21 Nov 2026 04:59:00 GMT", "date": "Sat, 21 Nov 2026 05:00:00 GMT"}, 0.0),
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


def test_an_http_date_without_a_date_header_counts_from_our_clock() -> None:
    from email.utils import parsedate_to_datetime

    now = parsedate_to_datetime("Sat, 21 Nov 2026 05:00:00 GMT").timestamp()
    assert retry_after_seconds({"retry-after": "Sat, 21 Nov 2026 05:01:00 GMT"}, now=now) == 60.0


def test_the_policy_caps_the_wait() -> None:
    from sidecar.providers.upstream_errors import RetryAfterPolicy
    from tests.conftest import FakeClock

    policy = RetryAfterPolicy(300.0, FakeClock())
    assert policy.seconds({"retry-after": "86400"}) == 300.0
    assert policy.seconds({"retry-after": "9" * 400}) == 300.0  # past a float's range: capped, not ignored
    assert policy.seconds({"retry-after": "12"}) == 12.0
    assert policy.seconds({"retry-after": "garbage"}) is None


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


@pytest.mark.parametrize(
    ("header", "expected"),
    [("timeout=5, max=100", 5.0), ("max=100", None), ("timeout=soon", None), ("timeout=\u00b2", None)],
)
def test_keep_alive_timeout(header: str, expected: float | None) -> None:
    assert keepalive_timeout(header) == expected


def test_a_prompt_the_content_filter_refused_is_told_apart_from_a_bad_request() -> None:
    """Azure's 400 with error.code content_filter: the provider's filter, not a malformed request."""
    import json

    from sidecar.core.clock import FakeClock
    from sidecar.core.errors import ProviderRejectedError
    from sidecar.providers.upstream_errors import PromptFilteredError, RetryAfterPolicy, status_error

    policy = RetryAfterPolicy(60, FakeClock())
    filtered = json.dumps({"error": {"code": "content_filter", "message": "filtered"}}).encode()
    bad = json.dumps({"error": {"code": "invalid_value", "message": "bad"}}).encode()
    assert isinstance(status_error(400, {}, filtered, policy, []), PromptFilteredError)
    assert isinstance(status_error(422, {}, filtered, policy, []), ProviderRejectedError)
    assert not isinstance(status_error(422, {}, filtered, policy, []), PromptFilteredError)
    assert not isinstance(status_error(400, {}, bad, policy, []), PromptFilteredError)
