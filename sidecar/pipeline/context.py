"""Context-window management: fit each call into its route before anything is reserved or routed.

The route layer picks the deployment later, so the prompt is fitted to every deployment of the
route: each one's context window minus the max_tokens it will be sent (the call's, else the
deployment's default), counted with that deployment's tokenizer. For one tokenizer that is the
smallest window. The rules (sidecar/context/trim.py): the leading system messages stay, a tool
call stays with its results, at most `max_recent_messages` of the rest are kept, newest first.

With summaries configured, a call of a conversation (it has a conversation id) keeps instead the
pinned messages, the conversation's rolling summary and the newest `keep_recent_messages` that
fit; once the messages dropped since the summary reach `refresh_tokens`, the summary is refreshed
after the answer was delivered (sidecar/context/summary.py). The record reports what was removed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Sequence

from sidecar.config.context import ContextPolicy
from sidecar.context.summary import Summarizer, covered_until, summary_message
from sidecar.context.tokenizer import Tokenizers
from sidecar.context.trim import Budget, Fit, fit, split_pinned
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.plan import plan_of
from sidecar.core.types import Call, Chunk, Message
from sidecar.routing.table import RouteTable
from sidecar.sessions.store import ConversationSummary

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
        """Pinned + summary + the newest messages; then, if enough was dropped, a new summary."""
        config = summarizer.config
        loaded = await summarizer.load(call)
        pinned, rest = split_pinned(call.messages)
        start = covered_until(loaded, rest)
        previous = loaded if start else None
        reserve = config.max_tokens + SUMMARY_OVERHEAD if previous is not None else 0
        result = fit((*pinned, *rest[start:]), budgets, config.keep_recent_messages, reserve=reserve)
        messages = _with_summary(result, previous)
        summarized = previous is not None and _fits(messages, result.budgets)
        if previous is not None and not summarized:  # it came out longer than it was asked to be
            messages = (*result.pinned, *result.kept)
        sent = self._report(call, messages, result, summarized=summarized)
        async with inner_stream(self._inner, sent) as stream:
            async for chunk in stream:
                yield chunk
        dropped = result.dropped
        if dropped and result.budget.counter.count_prompt(dropped) >= config.refresh_tokens:
            await summarizer.refresh(call, previous, rest, range(start, start + len(dropped)))

    def _budgets(self, call: Call) -> list[Budget]:
        route = plan_of(call, self._table).route
        return [
            Budget(
                target.deployment,
                self._tokenizers.for_deployment(target.deployment),
                d.context_window,
                call.params.max_tokens or d.default_max_tokens,
            )
            for target, d in zip(route.targets, route.deployments, strict=True)
        ]

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
