from __future__ import annotations

import pytest

from sidecar.config.schema import DeploymentConfig, EchoOptions
from sidecar.core.clock import Deadline
from sidecar.core.errors import DeadlineExceededError
from sidecar.core.layer import collect
from sidecar.core.tokens import count_prompt_tokens, count_tokens
from sidecar.core.types import Chunk, FinishReason, GenerationParams, Message, Role
from sidecar.providers.base import ProviderRequest
from sidecar.providers.echo import EchoProvider
from tests.conftest import FakeClock


def make(clock: FakeClock, **options: float) -> tuple[EchoProvider, list[float]]:
    clock.auto_advance = True  # the echo's delays pass on virtual time
    deployment = DeploymentConfig(provider="echo", model="echo-1", echo=EchoOptions(**options))
    return EchoProvider(deployment, clock=clock), clock.sleeps


def request(text: str, stream: bool = True, **params: object) -> ProviderRequest:
    messages = (Message(Role.SYSTEM, "sys"), Message(Role.USER, text), Message(Role.ASSISTANT, "old"))
    return ProviderRequest(messages, GenerationParams(**params), stream)  # type: ignore[arg-type]


async def chunks(p: EchoProvider, req: ProviderRequest, deadline: Deadline) -> list[Chunk]:
    return [c async for c in p.generate(req, deadline=deadline)]


async def test_streams_the_last_user_message_with_real_counts(clock: FakeClock) -> None:
    echo, _ = make(clock, tokens_per_chunk=2)
    out = await chunks(echo, request("Hello, wide world!"), Deadline(None, clock))
    assert "".join(c.text for c in out) == "Hello, wide world!"
    assert [c.text for c in out[:-1]] == ["Hello,", " wide world", "!"]
    final = out[-1]
    assert final.finish_reason is FinishReason.STOP
    assert final.usage is not None
    assert final.usage.completion_tokens == count_tokens("Hello, wide world!") == 5
    assert final.usage.prompt_tokens == count_prompt_tokens(["sys", "Hello, wide world!", "old"])


async def test_unary_is_one_final_chunk(clock: FakeClock) -> None:
    echo, _ = make(clock)
    out = await chunks(echo, request("one two", stream=False), Deadline(None, clock))
    assert len(out) == 1 and out[0].text == "one two" and out[0].is_final


async def test_max_tokens_cuts_and_reports_length(clock: FakeClock) -> None:
    echo, _ = make(clock)
    out = await chunks(echo, request("a b c d e", max_tokens=2), Deadline(None, clock))
    assert "".join(c.text for c in out) == "a b"
    assert out[-1].finish_reason is FinishReason.LENGTH


async def test_stop_sequence_cuts(clock: FakeClock) -> None:
    echo, _ = make(clock)
    out = await chunks(echo, request("keep this STOP not this", stop=("STOP", "this")), Deadline(None, clock))
    assert "".join(c.text for c in out) == "keep "


async def test_latency_uses_the_injected_sleep(clock: FakeClock) -> None:
    echo, slept = make(clock, first_token_delay_seconds=0.5, chunk_delay_seconds=0.1, tokens_per_chunk=1)
    await chunks(echo, request("a b c"), Deadline(None, clock))
    assert slept == [0.5, 0.1, 0.1]


async def test_latency_past_the_deadline(clock: FakeClock) -> None:
    echo, _ = make(clock, first_token_delay_seconds=5)
    with pytest.raises(DeadlineExceededError):
        await chunks(echo, request("a"), Deadline.after(1.0, clock))


async def test_collect_joins_a_stream(clock: FakeClock) -> None:
    echo, _ = make(clock, tokens_per_chunk=1)

    def handler(call: object) -> object:
        return echo.generate(request("x y z"), deadline=Deadline(None, clock))

    text, final = await collect(handler, None)  # type: ignore[arg-type]
    assert text == "x y z" and final.finish_reason is FinishReason.STOP
