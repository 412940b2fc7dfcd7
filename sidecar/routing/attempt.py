"""One attempt on one deployment, and its bookkeeping: breaker outcome, stats, the Attempt record.

The route layer opens an attempt (`first()` waits for its first chunk), and either commits to it
(`stream_from(first)`) or abandons it (`lost()`, then `abandon()`, when a hedge lost). Every
attempt ends exactly once, whichever way, so breakers, in-flight counts and the call's attempt list
stay exact.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack, aclosing
from typing import TypeGuard

from sidecar.core.clock import DEADLINE_MARGIN, Clock
from sidecar.core.errors import (
    DeadlineExceededError,
    FirstTokenTimeoutError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    SidecarError,
    StreamInterruptedError,
)
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.types import Attempt, Call, Chunk, Target, Usage
from sidecar.routing.plan import Routing
from sidecar.telemetry import tracing

_log = logging.getLogger("sidecar.routing")
OK = "OK"
CANCELLED = "CANCELLED"
_CUT_OFF = (ProviderTimeoutError, ProviderUnavailableError)  # what a deadline cutting a wait looks like


class UpstreamAttempt:
    def __init__(
        self,
        inner: Handler,
        call: Call,
        target: Target,
        *,
        routing: Routing,
        clock: Clock,
        hedge: bool = False,
    ) -> None:
        self.target = target
        self._hedge = hedge  # started as a hedge racing another attempt
        self._call, self._clock = call, clock
        self._breaker = routing.breakers.get(target.deployment)
        self._admitted = self._breaker.epoch  # created right after the breaker admitted it
        self._stats = routing.stats.get(target.deployment)
        self._tokens = routing.tokens
        self._started = clock.monotonic()
        self._delivered: list[str] = []
        self._kept_back: list[Chunk] = []  # chunks before the first the caller sees (hidden thinking)
        self._cancel_outcome = CANCELLED
        self._ended = False
        self._finished = False  # a final chunk (finish reason and usage) was passed on
        self._stats.started()
        self._span = routing.tracing.start(f"attempt {target.deployment}", _span_attributes(target))
        self._inner = inner
        self._scope = AsyncExitStack()  # owns the inner stream: closed once, in _close()
        self._stream: AsyncGenerator[Chunk, None] | None = None

    async def first(self, limit: float | None) -> Chunk:
        """Wait for the first chunk the caller sees; the first chunk of any kind within `limit`
        seconds. Thinking the caller did not ask for reaches nobody: it is kept back for
        stream_from() and does not commit the call (a failure in it still falls back, its output
        charged). A failure ends the attempt."""
        try:
            with tracing.current(self._span):  # the upstream request is made in here: it carries the span
                chunk = await self._first_shown(await self._open(), limit)
        except StopAsyncIteration:
            self._charge_kept_back()
            raise self._failed(
                ProviderUnavailableError("the upstream stream ended without a chunk")
            ) from None
        except TimeoutError:  # bounded by the deadline: at the deadline it is the caller's, never ours
            if self._call.deadline.expired(DEADLINE_MARGIN):
                raise self._failed(
                    DeadlineExceededError("the deadline passed waiting for the first chunk")
                ) from None
            self._stats.no_first_token(self._clock.monotonic() - self._started)
            raise self._failed(FirstTokenTimeoutError(f"no first chunk within {limit:g} s")) from None
        except ProviderError as err:
            await self._not_the_callers(err)
            if isinstance(err, ProviderTimeoutError) and not self._kept_back:  # nothing came in time
                self._stats.no_first_token(self._clock.monotonic() - self._started)
            self._charge_kept_back()
            self._end(err.reason, error=err)
            raise
        except SidecarError as err:  # the caller's deadline (or, before any chunk, a key or a slot)
            self._cut_short()
            self._end(err.reason, error=err)
            raise
        except BaseException:
            self._cut_short()
            await self._close()
            raise
        self._stats.first_token(self._clock.monotonic() - self._started)
        self._delivered.append(chunk.output)
        return chunk

    async def _first_shown(self, stream: AsyncGenerator[Chunk, None], limit: float | None) -> Chunk:
        async with self._clock.timeout(self._call.deadline.bound(limit)):
            chunk = await anext(stream)
        while not self._shown(chunk):  # bounded by the upstream's read timeout and the deadline
            self._kept_back.append(chunk)
            self._delivered.append(chunk.output)
            chunk = await anext(stream)
        return chunk

    def _shown(self, chunk: Chunk) -> bool:
        """Does the caller get anything of this chunk? Thinking only in a stream that asked for it."""
        if chunk.text or chunk.tool_calls or chunk.is_final:
            return True
        reasoning = self._call.params.reasoning
        asked = self._call.stream and reasoning is not None and reasoning.include_thinking
        return asked and bool(chunk.thinking)

    def _charge_kept_back(self) -> None:
        """The route moves on from an attempt whose output reached nobody: what it produced stays
        the call's (usage and cost), as a held answer that broke (route.py)."""
        if self._kept_back and self._cancel_outcome == CANCELLED:
            self._call.record.answer_rejected(self.target, self._partial_usage())

    async def stream_from(self, first: Chunk, *, settle: bool = True) -> AsyncGenerator[Chunk, None]:
        """The committed attempt: its first chunk, then the rest; a failure now interrupts the stream.
        With settle=False a completed attempt stays open for held() and settle() to end."""
        completed = False
        try:
            for kept in self._kept_back:  # thinking the caller does not see, in its place
                yield self._counted(kept)
            yield self._counted(first)
            assert self._stream is not None, "stream_from() follows a first() that returned"
            async for chunk in self._stream:
                self._delivered.append(chunk.output)
                yield self._counted(chunk)
            completed = True
        except ProviderError as err:
            await self._not_the_callers(err)
            self._end(err.reason, error=err)
            raise self._interrupted(err) from err
        except SidecarError as err:  # the caller's deadline, cutting a wait on the upstream
            self._end(err.reason, error=err)
            raise
        finally:
            if completed and settle:
                self._end(OK)
            elif not completed:  # cancelled, the deadline, or the stream closed by a layer above
                self._cut_short()
            if settle or not completed:
                await self._close()

    async def held(self, first: Chunk) -> list[Chunk]:
        """The committed attempt read to its end before any of it is passed on (its answer is to be
        checked first); end it with settle(), as accepted (OK) or rejected (the check's reason)."""
        async with aclosing(self.stream_from(first, settle=False)) as stream:
            return [chunk async for chunk in stream]

    async def settle(self, outcome: str) -> None:
        """End a held attempt. A rejected answer came from a working deployment: its breaker is
        neither fed a failure nor a success (a trial permit is given back), its stats count it not OK."""
        self._end(outcome)
        await self._scope.aclose()

    def counted_usage(self) -> Usage:
        """The attempt's usage as the sidecar counts it: the prompt and the output it produced."""
        return self._partial_usage()

    def lost(self, outcome: str) -> None:
        """Name how this attempt ends if it is cancelled from now on (a hedge it lost)."""
        self._cancel_outcome = outcome

    async def abandon(self) -> None:
        """Drop an attempt that is not waiting on anything; its upstream request is cancelled."""
        await self._close()

    async def _open(self) -> AsyncGenerator[Chunk, None]:
        call = dataclasses.replace(self._call, target=self.target)
        self._stream = await self._scope.enter_async_context(inner_stream(self._inner, call))
        return self._stream

    async def _close(self) -> None:
        self._end(self._cancel_outcome)
        await self._scope.aclose()

    async def _not_the_callers(self, err: ProviderError) -> None:
        """Raise what a provider failure really was when it was the caller's doing: the task's own
        cancellation (an HTTP client may turn it into a connection error), or the caller's deadline (a
        timeout or a cut connection at, or within DEADLINE_MARGIN of, the deadline). Returns when the
        failure is the deployment's."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            self._cut_short()
            await self._close()  # ends CANCELLED: nothing counts against the deployment
            raise asyncio.CancelledError from err
        if isinstance(err, _CUT_OFF) and self._call.deadline.expired(DEADLINE_MARGIN):
            deadline = DeadlineExceededError("the call's deadline passed while waiting upstream")
            self._cut_short()
            raise self._failed(deadline) from err

    def _failed(self, err: SidecarError) -> SidecarError:
        self._end(err.reason, error=err)
        return err

    def _end(self, outcome: str, *, error: SidecarError | None = None) -> None:
        """Settle the attempt once: breaker, stats and the call's attempt list."""
        if self._ended:
            return
        self._ended = True
        admitted = self._admitted
        if outcome == OK:
            self._breaker.record_success(admitted=admitted)
        elif _deployments_fault(error):
            retry_after = error.retry_after  # a 429's or a 503's Retry-After: the upstream's own word
            self._breaker.record_failure(retry_after=retry_after, admitted=admitted)
        else:  # cancelled, deadline, or the call's own doing: its request rejected, its output malformed
            self._breaker.release(admitted=admitted)
        seconds = self._clock.monotonic() - self._started
        if isinstance(error, ProviderError):  # the upstream's (redacted) words stay in the log
            _log.info(
                "upstream attempt failed: %s",
                error.message,
                extra={
                    "request_id": self._call.request_id,
                    "deployment": self.target.deployment,
                    "reason": outcome,
                },
            )
        # the deployment's last error is its own failure: not a request it rightly refused (400),
        # nor an answer the call's prompt made the model write wrong
        fault = outcome if _deployments_fault(error) else None
        self._stats.finished(seconds, ok=outcome == OK, error=fault, at=self._clock.wall())
        self._call.record.attempt_ended(
            Attempt(self.target.deployment, self.target.provider, outcome, seconds, hedge=self._hedge)
        )
        if self._span is not None:
            self._span.set_attribute("sidecar.attempt.outcome", outcome)
            self._span.end()

    def _interrupted(self, err: ProviderError) -> StreamInterruptedError:
        """The partial usage of a broken stream: prompt and delivered output, counted by the sidecar."""
        usage = self._partial_usage()
        self._call.record.usage_estimated(usage)
        return StreamInterruptedError(
            f"deployment {self.target.deployment} failed after the stream started ({err.reason})",
            metadata={
                "deployment": self.target.deployment,
                "cause": err.reason,
                "promptTokens": str(usage.prompt_tokens),
                "completionTokens": str(usage.completion_tokens),
                "usageEstimated": "true",
            },
        )

    def _cut_short(self) -> None:
        """The caller's cancellation or deadline ended an answer that had started: what it received
        is the call's usage (as quota charges it), not nothing."""
        # already recorded for this answer (an interrupted stream's, the quota's cut), not counting
        # answers schema_retry rejected before this one: those are the call's too, on top of it
        recorded = self._call.record.answer_usage.total_tokens > 0
        if self._cancel_outcome != CANCELLED:  # a lost hedge: only the winner's usage is the call's
            return
        if self._stream is not None and self._delivered and not self._finished and not recorded:
            self._call.record.usage_estimated(self._partial_usage())

    def _counted(self, chunk: Chunk) -> Chunk:
        """The committed attempt's chunk; a final one whose upstream reported no usage at all
        carries the sidecar's own count instead (the prompt and the text delivered), so the call is
        charged and recorded what it used, never zero."""
        self._finished = self._finished or chunk.is_final
        if not chunk.is_final:
            return chunk
        # the committed attempt's finish is the call's: a hedge racer that answered in the same
        # moment and lost had reported its own final chunk to the outcome too (the terminal reports
        # every one it sees)
        self._call.record.upstream_finished(chunk.finish_reason, chunk.usage)
        if chunk.usage is not None:
            return chunk
        usage = self._partial_usage()
        self._call.record.usage_estimated(usage)
        return dataclasses.replace(chunk, usage=usage)

    def _partial_usage(self) -> Usage:
        """The prompt, and the output delivered: text, thinking and tool calls, each counted."""
        return Usage(
            prompt_tokens=self._tokens.prompt(self.target.deployment, self._call.messages, self._call.params),
            completion_tokens=sum(self._tokens.text(self.target.deployment, t) for t in self._delivered),
        )


def _deployments_fault(error: SidecarError | None) -> TypeGuard[ProviderError]:
    """Does this failure count against the deployment (its breaker, its last error)? Only a
    provider's retryable failure that is the deployment's own (core/errors.py ProviderError)."""
    return isinstance(error, ProviderError) and error.retryable and error.deployment_fault


def _span_attributes(target: Target) -> dict[str, str]:
    return {
        "sidecar.deployment": target.deployment,
        "gen_ai.provider.name": target.provider,
        "gen_ai.request.model": target.model,
    }
