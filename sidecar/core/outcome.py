"""What one call did: facts reported by the layers that know them, read once when the call ends.

Layers never assign fields: each reports what it learned through one method (the route layer the
deployment that served, an attempt how it ended, the upstream call its waits and final usage, the
cache a hit, the persona and context layers what they changed). The observe layer owns the
outcome: when the call ends it seals it, and the metrics, the usage record and the
GenerationSummary are all read from that one sealed outcome; a report that arrives after the seal
is dropped, so the three always agree.

Upstream time is the union of the intervals during which at least one attempt was waiting on an
upstream: two hedged attempts waiting together count once, so the overhead stays honest. The waits
are reported where they happen, by the HTTP client around each network wait (connecting, the
request going out, the answer's head, each read of its body) and by the echo provider around its
delays: building the upstream request and parsing its answer are the sidecar's own time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sidecar.core.types import Attempt, FinishReason, Target, Usage

if TYPE_CHECKING:
    from sidecar.answers.model import Decision


class UpstreamWaits(Protocol):
    """Where a provider reports the time it spends waiting on its upstream (an Outcome)."""

    def upstream_wait_started(self, now: float) -> None: ...

    def upstream_wait_ended(self, now: float) -> None: ...


class Outcome:
    """One call's facts. Report methods are the only writers; properties are read-only."""

    __slots__ = (
        "_answer",
        "_attempts",
        "_cache_age",
        "_cache_hit",
        "_context",
        "_experiment",
        "_finish_reason",
        "_first_token_at",
        "_history_messages",
        "_persona",
        "_rejected",
        "_route",
        "_sealed",
        "_semantic",
        "_target",
        "_upstream",
        "_usage",
        "_wait_from",
        "_waiting",
        "started_at",
    )

    def __init__(self, started_at: float) -> None:
        self.started_at = started_at
        self._attempts: list[Attempt] = []
        self._target: Target | None = None
        self._usage = Usage()
        self._finish_reason: FinishReason | None = None
        self._first_token_at: float | None = None
        self._upstream = 0.0
        self._waiting = 0
        self._wait_from = 0.0
        self._persona = ""
        self._route = ""
        self._history_messages = 0
        self._cache_hit = False
        self._semantic: tuple[float, float] | None = None
        self._cache_age: float | None = None
        self._rejected = (Usage(), 0.0)  # answers rejected by the format check: their usage and cost
        self._context = (0, 0, False)
        self._experiment = ("", "", False)
        self._answer: Decision | None = None
        self._sealed = False

    # -- reports, one per fact, from the layer that knows it ------------------------------------

    def attempt_ended(self, attempt: Attempt) -> None:
        """An upstream attempt ended (routing/attempt.py), in any way."""
        if not self._sealed:
            self._attempts.append(attempt)

    def served_by(self, target: Target) -> None:
        """The deployment whose stream the caller gets (the route layer, at the first chunk)."""
        if not self._sealed:
            self._target = target

    def upstream_wait_started(self, now: float) -> None:
        """An attempt started waiting on its upstream (the HTTP client, around each network wait)."""
        if self._waiting == 0:
            self._wait_from = now
        self._waiting += 1

    def upstream_wait_ended(self, now: float) -> None:
        self._waiting -= 1
        if self._waiting == 0 and not self._sealed:
            self._upstream += now - self._wait_from

    def upstream_finished(self, finish_reason: FinishReason | None, usage: Usage | None) -> None:
        """The upstream's final chunk: why it stopped and the usage it reported."""
        if self._sealed:
            return
        self._finish_reason = finish_reason
        if usage is not None:
            self._usage = usage

    def usage_estimated(self, usage: Usage) -> None:
        """A stream cut short: the usage the sidecar counted itself (prompt and delivered text)."""
        if not self._sealed:
            self._usage = usage

    def answer_rejected(self, target: Target, usage: Usage) -> None:
        """An attempt's complete answer failed the request's format check and the route tries another
        deployment (schema_retry): what it used stays the call's, in usage and cost; the next
        attempt reports its own target, finish reason and usage."""
        if self._sealed:
            return
        spent, usd = self._rejected
        self._rejected = (_add(spent, usage), usd + target.price.cost(usage))
        self._target, self._finish_reason, self._usage = None, None, Usage()

    def rejected_within(self, usage: Usage, cost_usd: float) -> None:
        """The part of the rejected answers the caller's budget covered (the quota cut the call): what
        the call is charged for them, recorded instead of what they used."""
        if not self._sealed:
            self._rejected = (usage, cost_usd)

    def answered_from_cache(
        self,
        target: Target | None,
        finish_reason: FinishReason,
        usage: Usage,
        *,
        age_seconds: float | None = None,
    ) -> None:
        """A response-cache hit: no provider was called; every prompt token counts as cached. The
        age of the stored answer when known (entries stored before ages were kept have none)."""
        if self._sealed:
            return
        self._cache_hit, self._target, self._finish_reason = True, target, finish_reason
        self._cache_age = None if age_seconds is None else max(0.0, age_seconds)
        self._usage = Usage(usage.prompt_tokens, usage.completion_tokens, cached_tokens=usage.prompt_tokens)

    def semantic_match(self, similarity: float, age_seconds: float) -> None:
        """A semantic-cache hit (reported with answered_from_cache): how similar the stored
        question was and how old its answer."""
        if not self._sealed:
            self._semantic = (similarity, age_seconds)
            self._cache_age = max(0.0, age_seconds)

    def route_chosen(self, alias: str) -> None:
        """The route the resolve step chose (a configured alias): the call's label before any target."""
        if not self._sealed:
            self._route = alias

    def persona_applied(self, persona: str, history_messages: int) -> None:
        if not self._sealed:
            self._persona, self._history_messages = persona, history_messages

    def context_fitted(self, tokens_removed: int, messages_removed: int, summarized: bool) -> None:
        if not self._sealed:
            self._context = (tokens_removed, messages_removed, summarized)

    def experiment_assigned(self, experiment: str, variant: str, *, overridden: bool = False) -> None:
        """The experiment variant serving the call (the experiment layer); `overridden`: the request
        chose it, not the sticky assignment."""
        if not self._sealed:
            self._experiment = (experiment, variant, overridden)

    def answer_decided(self, decision: Decision) -> None:
        """The answer policy's decision for the call (sidecar/pipeline/answers.py). A call the policy
        answers itself (B, C, D, F) was served by no experiment variant: its assignment is dropped, so
        no variant's report counts a call it had no part in (no model, no latency, no cost)."""
        if not self._sealed:
            self._answer = decision
            if decision.answered_by_policy:
                self._experiment = ("", "", False)

    def first_token(self, at: float) -> None:
        """The first text the caller received (the observe layer sees every chunk)."""
        if self._first_token_at is None and not self._sealed:
            self._first_token_at = at

    def seal(self) -> None:
        """The call is over (the observe layer, once): from now on the facts do not change."""
        self._sealed = True

    # -- what the metrics, the usage record and the summary read --------------------------------

    @property
    def sealed(self) -> bool:
        return self._sealed

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        return tuple(self._attempts)

    @property
    def target(self) -> Target | None:
        return self._target

    @property
    def usage(self) -> Usage:
        """The answer's usage, plus that of answers rejected by the format check (schema_retry)."""
        return _add(self._usage, self._rejected[0])

    @property
    def answer_usage(self) -> Usage:
        """The usage of the answer the caller gets, without answers rejected by the format check."""
        return self._usage

    @property
    def finish_reason(self) -> FinishReason | None:
        return self._finish_reason

    @property
    def first_token_at(self) -> float | None:
        return self._first_token_at

    @property
    def upstream_seconds(self) -> float:
        return self._upstream

    @property
    def route(self) -> str:
        return self._route

    @property
    def persona(self) -> str:
        return self._persona

    @property
    def history_messages(self) -> int:
        return self._history_messages

    @property
    def cache_hit(self) -> bool:
        return self._cache_hit

    @property
    def semantic_similarity(self) -> float | None:
        """Set only when a semantic-cache hit answered the call."""
        return None if self._semantic is None else self._semantic[0]

    @property
    def semantic_age_seconds(self) -> float | None:
        return None if self._semantic is None else self._semantic[1]

    @property
    def cache_age_seconds(self) -> float | None:
        """A cache hit's stored answer: seconds since it was stored (exact or semantic), when known."""
        return self._cache_age if self._cache_hit else None

    @property
    def context_tokens_removed(self) -> int:
        return self._context[0]

    @property
    def context_messages_removed(self) -> int:
        return self._context[1]

    @property
    def context_summarized(self) -> bool:
        return self._context[2]

    @property
    def experiment(self) -> str:
        return self._experiment[0]

    @property
    def variant(self) -> str:
        return self._experiment[1]

    @property
    def variant_overridden(self) -> bool:
        return self._experiment[2]

    @property
    def answer(self) -> Decision | None:
        return self._answer

    @property
    def answers_rejected(self) -> bool:
        """An answer was rejected by the format check and another deployment asked (schema_retry)."""
        return self._rejected[0] != Usage() or self._rejected[1] > 0

    @property
    def cost_usd(self) -> float:
        if self._cache_hit:
            return 0.0
        answer = 0.0 if self._target is None else self._target.price.cost(self._usage)
        return answer + self._rejected[1]


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        a.prompt_tokens + b.prompt_tokens,
        a.completion_tokens + b.completion_tokens,
        a.cached_tokens + b.cached_tokens,
        a.reasoning_tokens + b.reasoning_tokens,
        a.cache_write_tokens + b.cache_write_tokens,
    )
