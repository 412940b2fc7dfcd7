"""Echo fault directives: parsed from the last user message, removed from it, obeyed only when enabled."""

from __future__ import annotations

import pytest

from sidecar.config.schema import DeploymentConfig, EchoOptions
from sidecar.core.clock import Deadline
from sidecar.core.errors import DeadlineExceededError, ProviderRateLimitedError, ProviderUnavailableError
from sidecar.core.types import Chunk, GenerationParams, Message, Role
from sidecar.providers.base import ProviderRequest
from sidecar.providers.echo import EchoProvider
from sidecar.providers.faults import FaultPlan, extract, parse
from tests.conftest import FakeClock


def make(clock: FakeClock, *, faults: bool = True) -> tuple[EchoProvider, list[float]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    options = EchoOptions(faults=faults, tokens_per_chunk=1)
    return EchoProvider(DeploymentConfig(provider="echo", model="echo-1", echo=options), sleep=sleep), slept


def request(text: str, stream: bool = True) -> ProviderRequest:
    messages = (Message(Role.USER, "[[fault:unavailable]] earlier"), Message(Role.USER, text))
    return ProviderRequest(messages, GenerationParams(), stream)


async def run(p: EchoProvider, req: ProviderRequest, out: list[Chunk], deadline: Deadline) -> None:
    async for chunk in p.generate(req, deadline=deadline):
        out.append(chunk)


def test_parse_reads_flags_and_settings() -> None:
    plan = parse("rate_limited retry_after=3", FaultPlan())
    assert plan == FaultPlan(rate_limited=True, retry_after_seconds=3.0)
    assert parse("delay_ms=999999999", FaultPlan()) is None  # more than 7 digits: not a directive
    assert parse("delay_ms=120000", FaultPlan()) == FaultPlan(delay_seconds=60.0)  # capped
    assert parse("explode", FaultPlan()) is None
    assert parse("", FaultPlan()) is None


def test_extract_strips_only_the_last_user_message() -> None:
    req, plan = extract(request("a [[fault:interrupt_after=2]] b [[fault:delay_ms=5]] [[fault:nonsense]]"))
    assert plan == FaultPlan(interrupt_after=2, delay_seconds=0.005)
    assert req.messages[-1].text == "a  b  [[fault:nonsense]]"
    assert req.messages[0].text == "[[fault:unavailable]] earlier"


async def test_disabled_by_default_the_directive_is_echoed(clock: FakeClock) -> None:
    echo, _ = make(clock, faults=False)
    out: list[Chunk] = []
    await run(echo, request("[[fault:unavailable]] hi", stream=False), out, Deadline(None, clock))
    assert "[[fault:unavailable]]" in out[0].text


async def test_unavailable_and_rate_limited_fail_before_any_chunk(clock: FakeClock) -> None:
    echo, _ = make(clock)
    out: list[Chunk] = []
    with pytest.raises(ProviderUnavailableError):
        await run(echo, request("[[fault:unavailable]] hi"), out, Deadline(None, clock))
    with pytest.raises(ProviderRateLimitedError) as err:
        await run(echo, request("[[fault:rate_limited retry_after=3]] hi"), out, Deadline(None, clock))
    assert err.value.retry_after == 3.0
    assert out == []


async def test_interrupt_after_n_text_chunks(clock: FakeClock) -> None:
    echo, _ = make(clock)
    out: list[Chunk] = []
    with pytest.raises(ProviderUnavailableError):
        await run(echo, request("[[fault:interrupt_after=2]] one two three four"), out, Deadline(None, clock))
    assert [c.text for c in out] == ["one", " two"]


async def test_delay_goes_through_the_injected_wait_and_the_deadline(clock: FakeClock) -> None:
    echo, slept = make(clock)
    out: list[Chunk] = []
    await run(echo, request("[[fault:delay_ms=1500]] hi", stream=False), out, Deadline(None, clock))
    assert slept == [1.5] and out[0].text == "hi"
    with pytest.raises(DeadlineExceededError):
        await run(echo, request("[[fault:delay_ms=3000]] hi"), out, Deadline.after(0.25, clock))
    assert slept == [1.5, 0.25]
