from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator
from typing import ClassVar

from sidecar.core.clock import Deadline
from sidecar.core.types import Chunk, FinishReason, Price, Target, Usage
from sidecar.pipeline.upstream import UpstreamCall
from sidecar.providers.base import Capabilities, ProviderRequest
from tests.conftest import FakeClock
from tests.support.calls import make_call


class SlowProvider:
    name: ClassVar[str] = "fake"
    capabilities = Capabilities(True, False, False, 1000)

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.requests: list[ProviderRequest] = []

    async def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        self.requests.append(req)
        assert req.waits is not None
        for text, seconds in (("a", 0.2), ("", 0.3)):
            req.waits.upstream_wait_started(self.clock.monotonic())
            self.clock.advance(seconds)  # waiting on the upstream
            req.waits.upstream_wait_ended(self.clock.monotonic())
            self.clock.advance(0.01)  # parsing what came: the sidecar's own time
            if text:
                yield Chunk(text=text)
        yield Chunk(finish_reason=FinishReason.LENGTH, usage=Usage(7, 1))

    async def aclose(self) -> None:
        pass


async def test_hands_the_outcome_to_the_provider_and_records_usage_and_cost(clock: FakeClock) -> None:
    provider = SlowProvider(clock)
    handler = UpstreamCall({"d": provider})
    target = Target("r", "d", "fake", "m", Price(input_per_million=1_000_000, output_per_million=2_000_000))
    call = make_call(clock)
    call = dataclasses.replace(call, target=target)
    call.record.served_by(target)
    out = []
    async for chunk in handler(call):
        out.append(chunk)
        clock.advance(5.0)  # time the caller takes is not upstream time
    assert [c.text for c in out] == ["a", ""]
    assert call.record.upstream_seconds == 0.5
    assert call.record.usage == Usage(7, 1)
    assert call.record.finish_reason is FinishReason.LENGTH
    assert call.record.cost_usd == 7 + 2
    assert provider.requests[0].messages == call.messages
