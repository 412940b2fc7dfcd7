"""Context-window management: fit each call into its route before anything is reserved or routed.

The route layer picks the deployment later, so the prompt is fitted to every deployment of the
route: each one's context window minus the max_tokens it will be sent (the call's, else the
deployment's default), counted with that deployment's tokenizer. For one tokenizer that is the
smallest window. The rules (sidecar/context/trim.py): the leading system messages stay, a tool
call stays with its results, at most `max_recent_messages` of the rest are kept, newest first.

With summaries configured, a call of a conversation (it has a conversation id) keeps instead the
pinned messages, the conversation's rolling summary and every message the summary does not cover
(no message leaves the prompt before the summary covers it); once those older than the newest
`keep_recent_messages` reach `refresh_tokens`, the summary is refreshed after the answer was
delivered, or before the call when they would not fit the window (sidecar/context/summary.py).
The record reports what was removed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncGenerator, Sequence

from sidecar.config.context import ContextPolicy, SummaryConfig
from sidecar.context.summary import Summarizer, covered_until, foldable, summary_message
from sidecar.context.tokenizer import Tokenizers
from sidecar.context.trim import Budget, Fit, fit, split_pinned
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.plan import plan_of
from sidecar.core.types import Call, Chunk, Message
from sidecar.providers.base import max_tokens_sent
from sidecar.routing.table import RouteTable
from sidecar.sessions.store import ConversationSummary
from sidecar.telemetry import logging as logs

_log = logging.getLogger("sidecar.context")
SUMMARY_OVERHEAD = 32  # the summary's framing sentence, in tokens, on top of its max_tokens


class ContextLayer:
    def __init__(
        self,
        inner: Handler,
        *,
        table: RouteTable,
        tokenizers: Tokenizers,
        policy: ContextPolicy,
        summarizer: Summarizer | None = None,
    ) -> None:
        self._inner, self._table, self._tokenizers = inner, table, tokenizers
        self._policy, self._summarizer = policy, summarizer

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        """A prompt that fits goes on as it is, with no generator hop of this layer's."""
        if not self._policy.enabled:
            return self._inner(call)
        budgets = self._budgets(call)
        if self._summarizer is not None and call.conversation_id:
            return self._summarized(call, budgets, self._summarizer)
        result = fit(call.messages, budgets, self._policy.max_recent_messages)
        if not result.trimmed:
            return self._inner(call)
        return self._fitted(call, result)

    async def _fitted(self, call: Call, result: Fit) -> AsyncGenerator[Chunk, None]:
        call = self._report(call, (*result.pinned, *result.kept), result, summarized=False)
        async with inner_stream(self._inner, call) as stream:
            async for chunk in stream:
                yield chunk

    async def _summarized(
        self, call: Call, budgets: list[Budget], summarizer: Summarizer
    ) -> AsyncGenerator[Chunk, None]:
        """Pinned + summary + every message the summary does not cover; then, once the messages
        older than the newest `keep_recent_messages` reach `refresh_tokens`, a new summary."""
        config = summarizer.config
        loaded = await summarizer.load(call)
        pinned, rest = split_pinned(call.messages)
        start = covered_until(loaded, rest)
        previous = loaded if start else None
        reserved = previous is not None
        result = self._fit_uncovered(pinned, rest[start:], budgets, reserved=reserved, config=config)
        if result.dropped:  # what the summary does not cover overflows the window: fold it in first
            result = self._fit_uncovered(pinned, rest[start:], budgets, reserved=True, config=config)
            result, previous, start = await _fold_first(call, summarizer, result, previous, rest, start)
        messages = _with_summary(result, previous)
        if previous is not None:  # the caller's conversation in other words: never in a log line
            logs.mask_texts((previous.text,))
        summarized = previous is not None and _fits(messages, result.budgets)
        if previous is not None and not summarized:  # a summary stored before its length was checked
            messages = (*result.pinned, *result.kept)
        sent = self._report(call, messages, result, summarized=summarized)
        async with inner_stream(self._inner, sent) as stream:
            async for chunk in stream:
                yield chunk
        span = foldable(rest, start, config.keep_recent_messages)
        counter = result.budget.counter
        if span and counter.count_prompt(rest[span.start : span.stop]) >= config.refresh_tokens:
            await summarizer.refresh(call, previous, rest, span, count=counter.count_text)

    @staticmethod
    def _fit_uncovered(
        pinned: Sequence[Message],
        uncovered: Sequence[Message],
        budgets: list[Budget],
        *,
        reserved: bool,
        config: SummaryConfig,
    ) -> Fit:
        """Every uncovered message that fits, with room for the summary when there is or will be one."""
        reserve = config.max_tokens + SUMMARY_OVERHEAD if reserved else 0
        return fit((*pinned, *uncovered), budgets, max(1, len(uncovered)), reserve=reserve)

    def _budgets(self, call: Call) -> list[Budget]:
        route = plan_of(call, self._table).route
        budgets = []
        for target, d in zip(route.targets, route.deployments, strict=True):
            counter = self._tokenizers.for_deployment(target.deployment)
            max_tokens = max_tokens_sent(call.params, d)  # with Anthropic's thinking budget
            fixed = counter.count_params(call.params)
            budgets.append(Budget(target.deployment, counter, d.context_window, max_tokens, fixed))
        return budgets

    @staticmethod
    def _report(call: Call, messages: Sequence[Message], result: Fit, *, summarized: bool) -> Call:
        """The call with its fitted messages; the record says what was removed."""
        if tuple(messages) == call.messages:  # nothing removed (identical messages compare by identity)
            return call
        counter = result.budget.counter
        removed = counter.count_prompt(call.messages) - counter.count_prompt(messages)
        call.record.context_fitted(
            removed, len(call.messages) - len(result.pinned) - len(result.kept), summarized
        )
        return dataclasses.replace(call, messages=tuple(messages))


async def _fold_first(
    call: Call,
    summarizer: Summarizer,
    result: Fit,
    previous: ConversationSummary | None,
    rest: Sequence[Message],
    start: int,
) -> tuple[Fit, ConversationSummary | None, int]:
    """Before the call, fold what does not fit (and whatever else a refresh may fold) into the
    summary; the fit, the summary and where the uncovered messages start, after it."""
    stop = max(
        start + len(result.dropped), foldable(rest, start, summarizer.config.keep_recent_messages).stop
    )
    fresh = await summarizer.refresh(
        call, previous, rest, range(start, stop), count=result.budget.counter.count_text
    )
    if fresh is None:  # the dropped messages are lost to this call; logged, and retried next call
        _log.warning(
            "context dropped unsummarized",
            extra={"request_id": call.request_id, "messages": len(result.dropped)},
        )
        return result, previous, start
    return Fit(result.pinned, tuple(rest[start:stop]), tuple(rest[stop:]), result.budgets), fresh, stop


def _with_summary(result: Fit, summary: ConversationSummary | None) -> tuple[Message, ...]:
    if summary is None:
        return (*result.pinned, *result.kept)
    return (*result.pinned, summary_message(summary.text, summary.messages), *result.kept)


def _fits(messages: tuple[Message, ...], budgets: tuple[Budget, ...]) -> bool:
    """Whether the prompt fits every budget the trim used (a summary can come out longer than asked)."""
    counted: dict[str, int] = {}
    for b in budgets:
        n = counted.setdefault(b.counter.name, b.counter.count_prompt(messages))
        if n > b.limit:
            return False
    return True
