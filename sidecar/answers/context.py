"""An escalation's context written by a model (AgentPolicy.context_summary, opt-in): when the user
accepts an offer, the last messages and the question go to the agent's summary route, and a short
summary replaces the verbatim messages the creator would otherwise read.

The summary is an ordinary call of the user's (tenant, user, the tier the offer was made under)
through the observed and metered part of the pipeline (sidecar/app.py `build_context_writer`): the
user's tier must allow the route, the user's quota meters or refuses it, and it appears in the
metrics under the summary route and in the usage ledger (request id `<escalation id>.context`). It
is bounded in time (`timeout_seconds` and at most half of what the accepting caller's deadline has
left, on the injected clock) and in size (`max_tokens` asked,
`max_input_chars` sent, `max_chars` kept). Whatever goes wrong (refused, failed, timed out, empty,
too long), the escalation keeps its verbatim messages; the outcome is counted per agent
(`sidecar_answer_context_summaries_total`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

from sidecar.answers.model import Escalation
from sidecar.config.answers import ContextSummary
from sidecar.context.summary import Owner, model_call
from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import Code, SidecarError
from sidecar.core.layer import Handler, collect
from sidecar.core.types import Call, Credentials

_log = logging.getLogger("sidecar.answers")
SUFFIX = ".context"  # the request id of a context summary: the escalation's id, plus this

Allowed = Callable[[str, str], bool]
"""(tier, route alias) -> whether the tier may use the route."""


def _always(tier: str, route: str) -> bool:
    return True


class EscalationContextWriter:
    def __init__(
        self,
        handler: Handler,
        *,
        clock: Clock,
        allowed: Allowed = _always,
        on_outcome: Callable[[str, str], None] | None = None,
    ) -> None:
        """`on_outcome(agent, outcome)`: summarized, refused, failed, timeout, empty or too_long."""
        self._handler, self._clock, self._allowed = handler, clock, allowed
        self._on_outcome = on_outcome

    async def write(
        self, e: Escalation, config: ContextSummary, deadline: Deadline | None = None
    ) -> Escalation:
        """`e` with a model's summary as its context, or `e` as it is (verbatim) when that fails.
        `deadline`: the accepting caller's; the summary gets at most half of what it has left, so
        the acceptance itself is answered in time."""
        if not e.context:
            return e  # nothing before the question: nothing to summarize, nothing spent
        if not self._allowed(e.tier, config.route):
            return self._kept(e, "refused", "MODEL_NOT_ALLOWED")
        remaining = None if deadline is None else deadline.remaining()
        seconds = config.timeout_seconds if remaining is None else min(config.timeout_seconds, remaining / 2)
        if seconds <= 0:
            return self._kept(e, "timeout", "DEADLINE_EXCEEDED")
        try:
            async with self._clock.timeout(seconds):
                text, _ = await collect(self._handler, self._call(e, config, seconds))
        except TimeoutError:
            return self._kept(e, "timeout", "TIMEOUT")
        except SidecarError as exc:
            refused = exc.code in (Code.RESOURCE_EXHAUSTED, Code.PERMISSION_DENIED)  # tier, quota
            return self._kept(e, "refused" if refused else "failed", exc.reason)
        text = text.strip()
        if not text:
            return self._kept(e, "empty", "EMPTY")
        if len(text) > config.max_chars:
            return self._kept(e, "too_long", "SUMMARY_TOO_LONG")
        self._count(e, "summarized")
        return replace(e, context=(), context_kind="summary", context_summary=text)

    def _kept(self, e: Escalation, outcome: str, reason: str) -> Escalation:
        _log.warning(
            "escalation context kept verbatim",
            extra={"request_id": e.id + SUFFIX, "agent": e.agent, "reason": reason},
        )
        self._count(e, outcome)
        return e

    def _count(self, e: Escalation, outcome: str) -> None:
        if self._on_outcome is not None:
            self._on_outcome(e.agent, outcome)

    def _call(self, e: Escalation, config: ContextSummary, seconds: float) -> Call:
        lines = [f"{role}: {text}" for role, text in e.context]
        transcript = "\n".join(lines)[-config.max_input_chars :]
        question = e.question[: config.max_input_chars]
        return model_call(
            e.id + SUFFIX,
            route=config.route,
            prompt=config.prompt,
            text=f"{transcript}\n\nQuestion to the creator: {question}",
            max_tokens=config.max_tokens,
            owner=Owner(e.tenant, e.user, e.conversation, e.tier, Credentials()),
            deadline=Deadline.after(seconds, self._clock),
            started_at=self._clock.monotonic(),
        )
