"""Context-window management: fit each call into its route before anything is reserved or routed.

The route layer picks the deployment later, so the prompt is fitted to every deployment of the
route: each one's context window minus the max_tokens it will be sent (the call's, else the
deployment's default), counted with that deployment's tokenizer. For one tokenizer that is the
smallest window. The rules (sidecar/context/trim.py): the leading system messages stay, a tool
call stays with its results, at most `max_recent_messages` of the rest are kept, newest first,
and what is dropped can be replaced by a cached summary. The record reports what was removed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator

from sidecar.config.context import ContextPolicy
from sidecar.context.summary import Summarizer, summary_message
from sidecar.context.tokenizer import Tokenizers
from sidecar.context.trim import Budget, Fit, fit
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.plan import plan_of
from sidecar.core.types import Call, Chunk, Message
from sidecar.routing.table import RouteTable

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
        result = fit(call.messages, budgets, self._policy.max_recent_messages)
        if not result.trimmed:
            return self._inner(call)
        return self._fitted(call, budgets, result)

    async def _fitted(self, call: Call, budgets: list[Budget], result: Fit) -> AsyncGenerator[Chunk, None]:
        call = await self._trimmed(call, budgets, result)
        async with inner_stream(self._inner, call) as stream:
            async for chunk in stream:
                yield chunk

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

    async def _trimmed(self, call: Call, budgets: list[Budget], result: Fit) -> Call:
        messages = (*result.pinned, *result.kept)
        summarized = False
        if self._summarizer is not None:
            reserve = self._summarizer.max_tokens + SUMMARY_OVERHEAD
            roomy = fit(call.messages, budgets, self._policy.max_recent_messages, reserve=reserve)
            text = await self._summarizer.summarize(call, roomy.dropped)
            if text is not None:
                candidate = (*roomy.pinned, summary_message(text, len(roomy.dropped)), *roomy.kept)
                if _fits(candidate, roomy.budgets):
                    messages, result, summarized = candidate, roomy, True
        counter = result.budget.counter
        removed = counter.count_prompt(call.messages) - counter.count_prompt(messages)
        call.record.context_fitted(removed, len(result.dropped), summarized)
        return dataclasses.replace(call, messages=messages)


def _fits(messages: tuple[Message, ...], budgets: tuple[Budget, ...]) -> bool:
    """Whether the prompt fits every budget the trim used (a summary can come out longer than asked)."""
    counted: dict[str, int] = {}
    for b in budgets:
        n = counted.setdefault(b.counter.name, b.counter.count_prompt(messages))
        if n > b.limit:
            return False
    return True
