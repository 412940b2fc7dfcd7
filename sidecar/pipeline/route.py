"""Routing: the call's deployments in strategy order, retried, hedged and fallen back before the first chunk.

Per deployment: the breaker must admit the attempt; a retryable failure (connection error,
timeout, no first chunk in time, 5xx, malformed answer) is retried after a fully jittered backoff
while the deployment's retry budget and the caller's deadline allow, then the next deployment is
tried. An answer the model wrote wrong (MODEL_OUTPUT_UNUSABLE: the call's own prompt) goes to the
next deployment at once, and is not counted against this one (routing/attempt.py). A 429 opens
the breaker for its Retry-After, so the route moves on at once. With hedging on,
a first attempt slower than its deployment's p95 to first token races the next deployment; the
first to produce a chunk wins and the other is cancelled. After the first chunk the call is
committed: a failure ends it with STREAM_INTERRUPTED and the partial usage.

With the route's `schema_retry` on, a call whose response_format asks for JSON has its first served
answer held until complete (unary calls always; streams only with `hold_streams`): an answer that
finished normally but fails the check is recorded as a SCHEMA_VALIDATION_FAILED attempt (its usage
and cost stay the call's) and the next deployment is tried, once. A held answer whose deployment
breaks mid-answer reached nobody: the route moves on as after a failure before the first chunk (the
breaker is fed the failure, what was produced is charged, the one retry is not used up). The
retried answer passes through; the structured-output layer outside checks it like any other
(docs/structured-output.md).

A deployment with a capacity (policy.admission.deployments) is tried only with a slot of it: a full
one is skipped for the next deployment, and when no deployment served and some were full the call
waits by priority for the first of them to free up (sidecar/admission/deployments.py). The serving
deployment's slot is held until the stream ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeGuard

from sidecar.admission.deployments import DeploymentSlots, HeldSlots
from sidecar.authz.scope import caller_scope
from sidecar.config.routing import RouteConfig
from sidecar.core.clock import DEADLINE_MARGIN, Clock
from sidecar.core.errors import (
    CircuitOpenError,
    DeadlineExceededError,
    FirstTokenTimeoutError,
    ModelOutputError,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitedError,
    ProvidersUnavailableError,
    SidecarError,
    StreamInterruptedError,
    UpstreamBusyError,
    UserKeyRateLimitedError,
    UserKeyRejectedError,
)
from sidecar.core.layer import Handler
from sidecar.core.plan import plan_of
from sidecar.core.types import Call, Chunk, Target
from sidecar.routing.attempt import OK, UpstreamAttempt
from sidecar.routing.breaker import CircuitBreaker
from sidecar.routing.plan import Routing, plan
from sidecar.routing.table import Route
from sidecar.structured.check import SCHEMA_VALIDATION_FAILED, AnswerCheck, SchemaValidationError

_log = logging.getLogger("sidecar.routing")
HEDGE_LOST = "HEDGE_LOST"
# the deployment, and how an attempt on it failed: the provider's failure, or no free connection of
# the sidecar's own to it (the next deployment, on another host, may have one)
Failure = tuple[str, ProviderError | UpstreamBusyError]


@dataclass(frozen=True)
class _Opened:
    """A deployment's outcome before the first chunk: the attempt that produced one, or None."""

    attempt: UpstreamAttempt | None = None
    first: Chunk | None = None
    used_backup: bool = False


@dataclass(frozen=True)
class _Served:
    """The attempt that produced a first chunk, and the index of the next deployment to try."""

    attempt: UpstreamAttempt
    first: Chunk
    next: int


def _served(opened: _Opened, held: HeldSlots, next_index: int) -> _Served | None:
    """The attempt that produced a first chunk, keeping only its deployment's slot; or None."""
    if opened.attempt is None or opened.first is None:
        held.release_all()
        return None
    held.release_except(opened.attempt.target.deployment)
    return _Served(opened.attempt, opened.first, next_index)


class RouteLayer:
    def __init__(
        self, inner: Handler, *, routing: Routing, clock: Clock, slots: DeploymentSlots | None = None
    ) -> None:
        self._inner, self._routing, self._clock, self._slots = inner, routing, clock, slots

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        route = plan_of(call, self._routing.table).route
        targets = plan(self._routing, route, call)
        failures: list[Failure] = []
        check, rejected = _retry_check(route.config, call), None
        held = HeldSlots(self._slots)
        try:
            i = 0
            while (served := await self._first_chunk(call, route, targets, i, failures, held)) is not None:
                i = served.next
                call.record.served_by(served.attempt.target)
                if check is not None and i < len(targets):  # another deployment is left to retry on
                    answer, rejection = await _held(call, served.attempt, served.first, check, failures)
                    if answer is None:
                        if rejection is not None:  # a broken answer does not use the one retry up
                            check, rejected = None, rejection
                        held.release_all()
                        continue
                    for chunk in answer:
                        yield chunk
                    return
                async with aclosing(served.attempt.stream_from(served.first)) as chunks:
                    async for chunk in chunks:
                        yield chunk
                return
            raise rejected or _exhausted(route.alias, failures)
        finally:
            held.release_all()

    async def _first_chunk(
        self,
        call: Call,
        route: Route,
        targets: list[Target],
        start: int,
        failures: list[Failure],
        held: HeldSlots,
    ) -> _Served | None:
        """The deployments from `start` in order until one yields a first chunk; full ones skipped,
        then waited for (the one waited for leaves no deployment to retry on)."""
        full: list[Target] = []
        i = start
        while i < len(targets):
            breaker = self._routing.breakers.get(targets[i].deployment)
            if not breaker.admits():  # asked before its slot: neither taken nor waited for in vain
                failures.append((targets[i].deployment, _circuit_open(targets[i], breaker)))
                i += 1
                continue
            if not held.take(targets[i].deployment):
                full.append(targets[i])
                i += 1
                continue
            backup = targets[i + 1] if route.config.hedging.enabled and i + 1 < len(targets) else None
            opened = await self._open(call, route, targets[i], backup, failures, held)
            i += 2 if opened.used_backup else 1
            if (served := _served(opened, held, i)) is not None:
                return served
        if not full:
            return None
        scope = caller_scope(call.tenant_id, call.caller)  # whose turn it takes in the queues
        freed = await held.wait([t.deployment for t in full], call.priority, call.deadline, scope)
        target = next(t for t in full if t.deployment == freed)
        return _served(await self._open(call, route, target, None, failures, held), held, len(targets))

    async def _open(
        self,
        call: Call,
        route: Route,
        target: Target,
        backup: Target | None,
        failures: list[Failure],
        held: HeldSlots,
    ) -> _Opened:
        """Attempts on one deployment until one yields a first chunk: retries, and a hedge on the first."""
        breaker = self._routing.breakers.get(target.deployment)
        budget = self._routing.budgets.get(target.deployment)
        config, retry = route.config, route.retry
        budget.record_request()
        for n in range(1, retry.max_attempts + 1):
            if n > 1:
                delay = retry.backoff(n - 1, self._routing.rng)
                if not self._may_retry(failures[-1][1], call, delay) or not budget.try_spend():
                    break
                await self._clock.sleep(delay)
            if call.deadline.expired():
                raise DeadlineExceededError("the call's deadline passed before a deployment answered")
            if not breaker.allow():
                failures.append((target.deployment, _circuit_open(target, breaker)))
                break
            attempt = self._attempt(call, target)
            try:
                if n == 1 and backup is not None:
                    return await self._hedged(call, config, attempt, backup, failures, held)
                return _Opened(attempt, await attempt.first(config.first_token_timeout_seconds))
            except ProviderError as err:
                if not err.retryable:
                    raise
                failures.append((target.deployment, err))
            except UpstreamBusyError as err:  # not retried here: its pool stays full a while
                failures.append((target.deployment, err))
                break
        return _Opened()

    async def _hedged(
        self,
        call: Call,
        config: RouteConfig,
        primary: UpstreamAttempt,
        backup: Target,
        failures: list[Failure],
        held: HeldSlots,
    ) -> _Opened:
        """Race the backup deployment if the primary has no first chunk within its p95 to first token
        (and the backup has a free slot: a full backup is not raced, it is tried in turn)."""
        limit = config.first_token_timeout_seconds
        racing: dict[asyncio.Task[Chunk], UpstreamAttempt] = {}
        racing[asyncio.ensure_future(primary.first(limit))] = primary
        won = False  # another attempt won: those still racing lost (else the caller went away)
        try:
            done, _ = await self._clock.wait(racing, within=self._hedge_delay(config, primary.target))
            breaker = self._routing.breakers.get(backup.deployment)
            # its breaker asked before its slot is taken: an open one holds no slot while the
            # primary goes on alone; admits() then the slot, then allow() (which takes a trial permit)
            if done or not breaker.admits() or not held.take(backup.deployment) or not breaker.allow():
                first = await next(iter(racing))
                racing.clear()  # the primary won alone: nothing to cancel
                return _Opened(primary, first)
            self._routing.budgets.get(backup.deployment).record_request()
            second = self._attempt(call, backup, hedge=True)
            racing[asyncio.ensure_future(second.first(limit))] = second
            keys_refused: BaseException | None = None  # a racer's user key refused there: see below
            while racing:
                done, _ = await self._clock.wait(racing)
                for task in done:
                    attempt = racing.pop(task)
                    error = task.exception()
                    if error is None:
                        won = True
                        return _Opened(attempt, task.result(), used_backup=True)
                    if isinstance(error, _KEYS_OWN) and racing:
                        keys_refused = error  # that key's matter on that deployment: another may answer
                        continue
                    if not _moves_on(error):
                        raise error  # a rejected request is not tried further, raced or not
                    failures.append((attempt.target.deployment, error))
            if keys_refused is not None:
                raise keys_refused  # no racer answered: the call ends as it would have unhedged
            return _Opened(used_backup=True)
        finally:
            for task, loser in racing.items():
                if won:
                    loser.lost(HEDGE_LOST)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await loser.abandon()

    def _hedge_delay(self, config: RouteConfig, target: Target) -> float:
        p95 = self._routing.stats.get(target.deployment).p95_ttft()
        hedging = config.hedging
        return max(hedging.min_delay_seconds, p95 if p95 is not None else hedging.default_delay_seconds)

    def _attempt(self, call: Call, target: Target, *, hedge: bool = False) -> UpstreamAttempt:
        return UpstreamAttempt(
            self._inner, call, target, routing=self._routing, clock=self._clock, hedge=hedge
        )

    def _may_retry(self, err: ProviderError | UpstreamBusyError, call: Call, delay: float) -> bool:
        if isinstance(
            err, ProviderRateLimitedError | ProviderAuthError | CircuitOpenError | FirstTokenTimeoutError
        ):
            return False  # this deployment will not do better soon: fall back instead
        if isinstance(err, ModelOutputError):  # the call's own prompt: its retry would spend the
            return False  # deployment's budget, shared by every tenant; another model may do better
        if err.retry_after is not None and err.retry_after > delay:
            return False  # the upstream said when to come back (a 503's Retry-After): not before
        remaining = call.deadline.remaining()  # no retry budget spent on an attempt with no time left
        return remaining is None or remaining > delay + DEADLINE_MARGIN


def _retry_check(config: RouteConfig, call: Call) -> AnswerCheck | None:
    """The answer check to retry on, when the route's schema_retry applies to this call."""
    policy = config.schema_retry
    if not policy.enabled or (call.stream and not policy.hold_streams):
        return None
    return AnswerCheck.of(call.params.response_format)


async def _held(
    call: Call, attempt: UpstreamAttempt, first: Chunk, check: AnswerCheck, failures: list[Failure]
) -> tuple[list[Chunk] | None, SchemaValidationError | None]:
    """The attempt's whole answer when it may go on; (None, its error) when it failed the check;
    (None, None) when the deployment broke mid-answer: nothing of it reached the caller, so the route
    moves on as after a failure before the first chunk (the attempt already fed its breaker)."""
    try:
        chunks = await attempt.held(first)
    except StreamInterruptedError as err:
        cause = err.__cause__
        if not isinstance(cause, ProviderError):
            raise
        failures.append((attempt.target.deployment, cause))
        _log.info(
            "held answer broke before reaching the caller; trying the next deployment",
            extra={"request_id": call.request_id, "deployment": attempt.target.deployment},
        )
        call.record.answer_rejected(attempt.target, attempt.counted_usage())  # produced: charged
        return None, None
    problem = check.retry_problem(chunks)
    if problem is None:
        await attempt.settle(OK)
        return chunks, None
    await attempt.settle(SCHEMA_VALIDATION_FAILED)
    _log.info(  # the problem quotes the model's answer: it goes to the caller, not to the log
        "answer failed its format check; retrying on another deployment",
        extra={"request_id": call.request_id, "deployment": attempt.target.deployment},
    )
    call.record.answer_rejected(attempt.target, chunks[-1].usage or attempt.counted_usage())
    return None, check.error(problem)


# A user's own key refused or rate limited on one deployment (sidecar/pipeline/keys.py): not the
# request's fault, so a racer still running may answer the call; unhedged it ends the call.
_KEYS_OWN = (UserKeyRateLimitedError, UserKeyRejectedError)


def _circuit_open(target: Target, breaker: CircuitBreaker) -> CircuitOpenError:
    return CircuitOpenError(
        f"deployment {target.deployment} is cooling down after failures", retry_after=breaker.open_for()
    )


def _moves_on(error: BaseException | None) -> TypeGuard[ProviderError | UpstreamBusyError]:
    """A failure after which the route tries its next deployment."""
    return isinstance(error, UpstreamBusyError) or (isinstance(error, ProviderError) and error.retryable)


def _exhausted(alias: str, failures: list[Failure]) -> SidecarError:
    """Every deployment failed: the deployments and reasons only. Upstream error text is never passed
    on to the caller (it can carry anything the upstream chose to echo); it is in the sidecar's logs."""
    errors = [f for _, f in failures]
    if errors and (
        all(isinstance(f, ProviderAuthError) for f in errors)
        or all(isinstance(f, UpstreamBusyError) for f in errors)  # OVERLOADED: the sidecar's own limit
    ):
        return errors[-1]
    waits = [f.retry_after for f in errors if f.retry_after is not None]
    summary = ", ".join(f"{deployment}: {f.reason}" for deployment, f in failures)
    return ProvidersUnavailableError(
        f"every deployment of route {alias!r} failed ({summary})",
        metadata={"model": alias, "attempts": str(len(failures))},
        retry_after=min(waits) if waits else None,
    )
