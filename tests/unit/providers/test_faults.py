"""Echo fault directives: parsed from the last user message, removed from it, applied around the
echo's chunks. (The echo's hook itself runs in every client's contract suite against a real sidecar.)"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from sidecar.config.schema import EchoOptions
from sidecar.core.errors import ProviderRateLimitedError, ProviderUnavailableError
from sidecar.core.types import Chunk, FinishReason, GenerationParams, Message, Role, Usage
from sidecar.providers.base import ProviderRequest
from sidecar.providers.faults import FaultPlan, extract, inject, parse


def request(text: str) -> ProviderRequest:
    messages = (Message(Role.USER, "[[fault:unavailable]] earlier"), Message(Role.USER, text))
    return ProviderRequest(messages, GenerationParams(), True)


async def echo(*texts: str) -> AsyncGenerator[Chunk, None]:
    for text in texts:
        yield Chunk(text=text)
    yield Chunk(finish_reason=FinishReason.STOP, usage=Usage(prompt_tokens=1, completion_tokens=len(texts)))


async def run(plan: FaultPlan, *texts: str) -> tuple[list[Chunk], list[float], BaseException | None]:
    out: list[Chunk] = []
    waited: list[float] = []

    async def wait(seconds: float) -> None:
        waited.append(seconds)

    try:
        async for chunk in inject(plan, echo(*texts), wait=wait):
            out.append(chunk)
    except (ProviderUnavailableError, ProviderRateLimitedError) as err:
        return out, waited, err
    return out, waited, None


def test_off_unless_the_deployment_enables_it() -> None:
    assert EchoOptions().faults is False


def test_parse_reads_flags_and_settings() -> None:
    assert parse("rate_limited retry_after=3", FaultPlan()) == FaultPlan(
        rate_limited=True, retry_after_seconds=3.0
    )
    assert parse("delay_ms=999999999", FaultPlan()) is None  # more than 7 digits: not a directive
    assert parse("delay_ms=120000", FaultPlan()) == FaultPlan(delay_seconds=60.0)  # capped
    assert parse("explode", FaultPlan()) is None
    assert parse("", FaultPlan()) is None


def test_extract_strips_only_the_last_user_message() -> None:
    req, plan = extract(request("a [[fault:interrupt_after=2]] b [[fault:delay_ms=5]] [[fault:nonsense]]"))
    assert plan == FaultPlan(interrupt_after=2, delay_seconds=0.005)
    assert req.messages[-1].text == "a  b  [[fault:nonsense]]"
    assert req.messages[0].text == "[[fault:unavailable]] earlier"
    assert extract(request("plain"))[1] == FaultPlan()


async def test_no_plan_changes_nothing() -> None:
    out, waited, err = await run(FaultPlan(), "a", "b")
    assert [c.text for c in out] == ["a", "b", ""] and waited == [] and err is None


async def test_unavailable_and_rate_limited_fail_before_any_chunk() -> None:
    out, _, err = await run(FaultPlan(unavailable=True), "a")
    assert isinstance(err, ProviderUnavailableError) and out == []
    out, _, err = await run(FaultPlan(rate_limited=True, retry_after_seconds=3.0), "a")
    assert isinstance(err, ProviderRateLimitedError) and err.retry_after == 3.0 and out == []


async def test_interrupt_after_n_content_chunks() -> None:
    out, _, err = await run(FaultPlan(interrupt_after=2), "one", " two", " three")
    assert [c.text for c in out] == ["one", " two"] and isinstance(err, ProviderUnavailableError)
    out, _, err = await run(FaultPlan(interrupt_after=2), "one", " two")  # fails instead of finishing
    assert [c.text for c in out] == ["one", " two"] and isinstance(err, ProviderUnavailableError)


async def test_delay_goes_through_the_injected_wait_before_the_first_chunk() -> None:
    out, waited, err = await run(FaultPlan(delay_seconds=1.5), "hi")
    assert waited == [1.5] and [c.text for c in out] == ["hi", ""] and err is None
