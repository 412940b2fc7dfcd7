"""The terminal handler: call the provider of the deployment the route layer picked."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing

from sidecar.core.errors import SidecarError
from sidecar.core.types import Call, Chunk
from sidecar.providers.base import Provider, ProviderRequest


class UpstreamCall:
    """Runs the provider adapter of the chosen deployment. The provider reports its waits on the
    upstream to the call's outcome (which counts concurrent waits of hedged attempts once); this
    layer reports the final usage."""

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = providers

    async def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        if call.target is None:
            raise SidecarError("no deployment was chosen for the call")
        provider = self._providers[call.target.deployment]
        record = call.record
        request = ProviderRequest(call.messages, call.params, call.stream, call.api_key, waits=record)
        async with aclosing(provider.generate(request, deadline=call.deadline)) as stream:
            async for chunk in stream:
                if chunk.is_final:
                    record.upstream_finished(chunk.finish_reason, chunk.usage)
                yield chunk
