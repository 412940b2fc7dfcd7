"""The one Call the in-process layer benchmarks (routing.py, quota.py, observe.py) send."""

from __future__ import annotations

from typing import Any

from sidecar.core.clock import Deadline, SystemClock
from sidecar.core.outcome import Outcome
from sidecar.core.types import Call, Credentials, GenerationParams, Message, Role

CLOCK = SystemClock()


def bench_call(**fields: Any) -> Call:
    """A one-question call on the default route; `fields` override any Call field."""
    values: dict[str, Any] = {
        "request_id": "bench",
        "model": "",
        "messages": (Message(Role.USER, "What is the capital of France, and why?"),),
        "params": GenerationParams(),
        "tenant_id": "",
        "user_id": "",
        "conversation_id": "",
        "metadata": {},
        "stream": False,
        "deadline": Deadline(None, CLOCK),
        "credentials": Credentials(),
        "record": Outcome(started_at=CLOCK.monotonic()),
    }
    return Call(**(values | fields))
