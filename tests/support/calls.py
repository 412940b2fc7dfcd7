"""Building domain Calls for layer unit tests."""

from __future__ import annotations

from sidecar.core.clock import Clock, Deadline
from sidecar.core.outcome import Outcome
from sidecar.core.types import Call, Credentials, GenerationParams, Message, Role


def make_call(
    clock: Clock,
    *,
    model: str = "",
    text: str = "hello there",
    stream: bool = True,
    timeout: float | None = None,
    token: str | None = None,
) -> Call:
    return Call(
        request_id="req-1",
        model=model,
        messages=(Message(Role.USER, text),),
        params=GenerationParams(),
        tenant_id="t",
        user_id="u",
        conversation_id="",
        metadata={},
        stream=stream,
        deadline=Deadline.after(timeout, clock),
        credentials=Credentials(bearer_token=token),
        record=Outcome(started_at=clock.monotonic()),
    )
