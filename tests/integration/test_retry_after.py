"""An upstream's Retry-After is capped by policy: it neither takes a deployment offline for a day nor
tells clients to wait a day (settings.http.max_retry_after_seconds, 300 s by default)."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import grpc
import pytest

from tests.conftest import FakeClock
from tests.integration.helpers import rich
from tests.integration.test_failures import ENV, generate, two_deployments
from tests.support.api import text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration


def calls(upstream: Upstream) -> int:
    """Generation requests only (health probes may read /v1/models as the clock moves)."""
    return sum(1 for seen in upstream.seen if seen.path.endswith("/chat/completions"))


def a_day_ahead() -> dict[str, str]:
    """An HTTP-date a day after the upstream's own Date (aiohttp sends Date with real time)."""
    import time

    return {"retry-after": formatdate(time.time() + 86_400, usegmt=True)}


@pytest.mark.parametrize("headers", [{"retry-after": "86400"}, "date"], ids=["seconds", "http-date"])
async def test_a_day_long_retry_after_is_capped(
    serve: Any, upstream: Upstream, upstream2: Upstream, headers: Any
) -> None:
    clock = FakeClock()
    limited = Reply.json(
        "openai/error_429.json", 429, headers=a_day_ahead() if headers == "date" else headers
    )
    upstream.default = limited
    upstream2.default = limited
    s = await serve({"policy": two_deployments(upstream.url, upstream2.url)}, ENV, clock)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await generate(s)
    err = await rich(info.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "PROVIDERS_UNAVAILABLE")
    assert err.retry is not None and 299 <= err.retry.retry_delay.seconds <= 300
    assert float(err.info.metadata["retryAfterSeconds"]) <= 300

    with pytest.raises(grpc.aio.AioRpcError) as again:  # both breakers open: nothing is sent upstream
        await generate(s)
    assert (await rich(again.value)).retry.retry_delay.seconds <= 300  # type: ignore[union-attr]
    assert (calls(upstream), calls(upstream2)) == (1, 1)

    clock.advance(301)  # past the cap, not a day: the deployments are tried again
    upstream.default = Reply.json("openai/chat_completion.json")
    reply = await generate(s)
    assert text_of(reply) and calls(upstream) == 2


async def test_the_cap_is_configurable(serve: Any, upstream: Upstream, upstream2: Upstream) -> None:
    limited = Reply.json("openai/error_429.json", 429, headers={"retry-after": "86400"})
    upstream.default = upstream2.default = limited
    config = {
        "settings": {"http": {"max_retry_after_seconds": 7}},
        "policy": two_deployments(upstream.url, upstream2.url),
    }
    s = await serve(config, ENV)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await generate(s)
    err = await rich(info.value)
    assert err.retry is not None and err.retry.retry_delay.seconds == 7


async def test_a_503_with_retry_after_is_not_retried_before_it_and_pauses_the_deployment(
    serve: Any, upstream: Upstream, upstream2: Upstream
) -> None:
    """A 503 with `Retry-After: 30` was retried at once on the same deployment, and the next calls
    went to it again, as if the upstream had said nothing: now the route falls back, and the
    deployment is paused for that long like after a 429's."""
    clock = FakeClock()
    upstream.push(
        Reply(status=503, body=b'{"error":{"message":"down for maintenance"}}', headers={"retry-after": "30"})
    )
    upstream2.default = Reply.json("openai/chat_completion.json")
    policy = two_deployments(upstream.url, upstream2.url, attempts=3)
    s = await serve({"policy": policy}, ENV, clock)
    reply = await generate(s)
    assert [(a.deployment, a.outcome) for a in reply.summary.attempts] == [
        ("first", "PROVIDER_UNAVAILABLE"),
        ("second", "OK"),
    ]
    assert text_of(await generate(s)) and (calls(upstream), calls(upstream2)) == (1, 2)
    clock.advance(30)  # the wait is over: the deployment is back, closed
    upstream.default = Reply.json("openai/chat_completion.json")
    reply = await generate(s)
    assert [a.deployment for a in reply.summary.attempts] == ["first"]
