"""The rolling summary of a conversation: the previous summary plus the messages dropped since.

One summary per conversation (tenant, user, conversation id) lives in the conversation store
(sidecar/sessions) with the conversation's history and TTL. It records how many messages it covers
and a digest of the newest of them together with the two before (a repeated question or "ok" is
not mistaken for the covered one), so the next call knows which of its messages the summary
already covers; the newest message of a call is never taken as covered. The context layer sends
the pinned system messages, the summary and every message it does not cover: a message leaves the
prompt only once the summary covers it. The uncovered messages older than the newest
`keep_recent_messages` are folded into a new summary (the previous one plus them) once their
tokens reach `refresh_tokens`, after the call's answer was delivered, or before the call when they
would not fit the window: each message is sent to the summarizer once, never again on every turn
(docs/context.md, "When summaries pay off").

The summary call is an ordinary call of the caller's (tenant, user, tier, credentials) through the
observed and metered part of the pipeline (sidecar/app.py `build_summarizer`), on the platform's
provider keys (a key the caller brought is for the caller's own route): it is refused by the
caller's tier and quota like any call, appears in the metrics under the summary route, in the usage
ledger (request id `<id>.summary`) and in GetUsage, and is priced on the summarizer's deployment.
It normally runs only after the caller's own call succeeded, so a caller that tier or quota refused
causes none; a refresh the window forces runs before the call, through the same tier check and
quota (which meters or refuses it like any call). It runs before the caller's call returns, so it
gets at most half of the time the caller's deadline has left (the answer is never lost to the
summary's time). A summary that fails,
is refused, comes back longer than `max_tokens` or takes longer than `timeout_seconds` (or that
half) is skipped: the conversation keeps its previous summary (its messages stay uncovered, so in
the prompt) and the next call tries again; only a refresh that had to run before the call because
the window is full, and failed, leaves messages out of that call (logged, "context dropped
unsummarized").
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sidecar.config.context import SummaryConfig
from sidecar.context.trim import units
from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import SidecarError
from sidecar.core.layer import Handler, collect
from sidecar.core.outcome import Outcome
from sidecar.core.types import Call, Credentials, GenerationParams, Message, Role
from sidecar.routing.table import Route
from sidecar.sessions.store import ConversationKey, ConversationStore, ConversationSummary

_log = logging.getLogger("sidecar.context")
SUFFIX = ".summary"  # the request id of a summary call: the caller's, plus this


def transcript(messages: Sequence[Message], max_chars: int) -> str:
    text = "\n".join(f"{m.role.value}{f' ({m.name})' if m.name else ''}: {m.text}" for m in messages)
    return text[-max_chars:]


def summary_message(text: str, covered: int) -> Message:
    return Message(Role.SYSTEM, f"Summary of {covered} earlier messages: {text}")


ANCHOR = 3  # messages that identify where a summary ends: the newest covered and the two before


def anchor(messages: Sequence[Message], end: int) -> str:
    """A digest of the (up to) ANCHOR messages that end before position `end`."""
    h = hashlib.blake2b(digest_size=12)
    for m in messages[max(0, end - ANCHOR) : end]:
        h.update("\x00".join((m.role.value, m.name, m.text)).encode() + b"\x01")
    return h.hexdigest()


def foldable(rest: Sequence[Message], start: int, keep: int) -> range:
    """The messages a refresh may fold into the summary: from `start` (the first one not covered)
    up to the newest `keep`, which stay verbatim, ending on a unit boundary (sidecar/context/
    trim.py `units`) so a tool call is never folded without its results or the other way round."""
    end, limit = start, len(rest) - max(1, keep)
    for unit in units(rest[start:]):
        if end + len(unit) > limit:
            break
        end += len(unit)
    return range(start, end)


def covered_until(summary: ConversationSummary | None, rest: Sequence[Message]) -> int:
    """How many of the leading non-system messages the summary covers: the position after the
    newest message it covers (searched from the newest back, never the call's newest message),
    or 0 when it covers none of them."""
    if summary is None:
        return 0
    for end in range(len(rest) - 1, 0, -1):
        if anchor(rest, end) == summary.covered:
            return end
    return 0


class Summarizer:
    def __init__(
        self,
        handler: Handler,
        *,
        config: SummaryConfig,
        store: ConversationStore,
        clock: Clock,
        allowed: Callable[[str], bool] = lambda tier: True,
        fits: Fits | None = None,
    ):
        """`allowed(tier)`: whether a caller's tier may use the summary route (the summary call
        does not pass the resolve step, which checks that for the caller's own route); `fits`:
        whether a summary prompt fits the summary route (`window_fit`; None: no bound)."""
        self._handler, self._config, self._store, self._clock = handler, config, store, clock
        self._allowed, self._fits = allowed, fits

    @property
    def config(self) -> SummaryConfig:
        return self._config

    async def load(self, call: Call) -> ConversationSummary | None:
        """The conversation's summary; None without a conversation id or when the store fails."""
        if not call.conversation_id:
            return None
        try:
            return await self._store.summary(_key(call))
        except SidecarError as exc:
            _log.warning("summary lookup failed", extra={"request_id": call.request_id, "reason": exc.reason})
            return None

    async def refresh(
        self,
        call: Call,
        previous: ConversationSummary | None,
        rest: Sequence[Message],
        span: range,
        *,
        count: Callable[[str], int] | None = None,
    ) -> ConversationSummary | None:
        """Summarize the previous summary and the messages not covered yet (`rest[span]`, `rest` being
        the call's messages after the pinned ones); store and return the new summary. A summary
        longer than `max_tokens` by `count` (the provider did not keep to it) is not kept: those
        messages stay uncovered, so they stay in the prompt."""
        dropped = rest[span.start : span.stop]
        if not call.conversation_id or not dropped:
            return None
        if not self._allowed(call.tier):
            _log.warning(
                "summary skipped", extra={"request_id": call.request_id, "reason": "MODEL_NOT_ALLOWED"}
            )
            return None
        try:
            seconds = self._seconds(call)
            async with self._clock.timeout(seconds):
                text, _ = await collect(self._handler, self._call(call, previous, dropped, seconds))
        except (SidecarError, TimeoutError) as exc:
            reason = exc.reason if isinstance(exc, SidecarError) else "TIMEOUT"
            _log.warning("summary skipped", extra={"request_id": call.request_id, "reason": reason})
            return None
        text = text.strip()
        if not text:
            return None
        if count is not None and count(text) > self._config.max_tokens:
            reason = "SUMMARY_TOO_LONG"
            _log.warning("summary skipped", extra={"request_id": call.request_id, "reason": reason})
            return None
        covered = (previous.messages if previous is not None else 0) + len(dropped)
        summary = ConversationSummary(text=text, messages=covered, covered=anchor(rest, span.stop))
        try:
            epoch = call.plan.epoch if call.plan is not None else None
            if not await self._store.save_summary(_key(call), summary, epoch=epoch):
                _log.info(
                    "summary not stored: the conversation was cleared during the call",
                    extra={"request_id": call.request_id},
                )
        except SidecarError as exc:
            _log.warning("summary not stored", extra={"request_id": call.request_id, "reason": exc.reason})
        return summary

    def _seconds(self, call: Call) -> float:
        """The summary's time: its timeout, at most half of what the caller's deadline has left."""
        remaining = call.deadline.remaining()
        timeout = self._config.timeout_seconds
        return timeout if remaining is None else max(0.0, min(remaining / 2, timeout))

    def _call(
        self, call: Call, previous: ConversationSummary | None, dropped: Sequence[Message], seconds: float
    ) -> Call:
        c = self._config
        earlier = f"Summary so far: {previous.text}\n\nSince then:\n" if previous is not None else ""
        return model_call(
            call.request_id + SUFFIX,
            route=c.route,
            prompt=c.prompt,
            text=earlier + self._newest(earlier, transcript(dropped, c.max_input_chars)),
            max_tokens=c.max_tokens,
            owner=Owner(call.tenant_id, call.user_id, call.conversation_id, call.tier, call.credentials),
            deadline=Deadline.after(seconds, self._clock),
            started_at=self._clock.monotonic(),
        )

    def _newest(self, earlier: str, text: str) -> str:
        """The newest part of `text` whose summary prompt fits the summary route's window (a
        binary search on the length kept: the count grows with it)."""
        if self._fits is None:
            return text

        def fits(kept: int) -> bool:
            assert self._fits is not None
            newest = text[len(text) - kept :]
            prompt = (Message(Role.SYSTEM, self._config.prompt), Message(Role.USER, earlier + newest))
            return self._fits(prompt)

        if fits(len(text)):
            return text
        low, high = 0, len(text)  # keeping `low` characters fits (or nothing does), `high` does not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if fits(middle) else (low, middle)
        return text[len(text) - low :]


Fits = Callable[[Sequence[Message]], bool]


def window_fit(route: Route, max_tokens: int, count: Callable[[Sequence[Message]], int]) -> Fits:
    """Whether a summary prompt, by `count` (the largest count over the configured tokenizers, as
    the route layer counts before it picks a deployment), leaves `max_tokens` in the smallest
    window of the summary route."""
    window = min(d.context_window for d in route.deployments)
    return lambda messages: count(messages) + max_tokens <= window


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose call a sidecar-made call is: what it is charged to and checked against."""

    tenant: str
    user: str
    conversation: str
    tier: str
    credentials: Credentials


def model_call(
    request_id: str,
    *,
    route: str,
    prompt: str,
    text: str,
    max_tokens: int,
    owner: Owner,
    deadline: Deadline,
    started_at: float,
) -> Call:
    """A call the sidecar makes itself on a user's behalf (a conversation's summary, an escalation's
    context): a system prompt and one user message to `route`, deterministic, unary, charged to
    `owner`."""
    return Call(
        request_id=request_id,
        model=route,
        messages=(Message(Role.SYSTEM, prompt), Message(Role.USER, text)),
        params=GenerationParams(max_tokens=max_tokens, temperature=0.0),
        tenant_id=owner.tenant,
        user_id=owner.user,
        conversation_id=owner.conversation,
        metadata={},
        stream=False,
        deadline=deadline,
        credentials=owner.credentials,
        record=Outcome(started_at=started_at),
        tier=owner.tier,
    )


def _key(call: Call) -> ConversationKey:
    return ConversationKey(call.tenant_id, call.user_id, call.conversation_id)
