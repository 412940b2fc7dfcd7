"""The terminal handler: call the provider of the deployment the route layer picked."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing

from sidecar.core.clock import Clock
from sidecar.core.errors import SidecarError
from sidecar.core.types import Call, Chunk
from sidecar.providers.base import Provider, ProviderRequest


class UpstreamCall:
    """Runs the provider adapter and reports the time spent waiting on the upstream (the outcome
    counts concurrent waits of hedged attempts once)."""

    def __init__(self, providers: Mapping[str, Provider], *, clock: Clock) -> None:
        self._providers, self._clock = providers, clock

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        if call.target is None:
            raise SidecarError("no deployment was chosen for the call")
        provider = self._providers[call.target.deployment]
        request = ProviderRequest(call.messages, call.params, call.stream, call.api_key)
        record, clock = call.record, self._clock
        async with aclosing(provider.generate(request, deadline=call.deadline)) as stream:
            while True:
                record.upstream_wait_started(clock.monotonic())
                try:
                    chunk = await anext(stream)
                except StopAsyncIteration:
                    return
                finally:
                    record.upstream_wait_ended(clock.monotonic())
                if chunk.is_final:
                    record.upstream_finished(chunk.finish_reason, chunk.usage)
                yield chunk
