"""An upstream error whose body drips in slowly: the status line said what happened (429, 503), but
reading the body ran into the read timeout and the attempt was classified PROVIDER_TIMEOUT (so a
rate limit lost its Retry-After and was not counted as one). The error body is read within a short
bound (settings.http.error_body_timeout_seconds, at most 64 KiB), then classified by its status with
what arrived."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import user
from tests.integration.test_failures import ENV, two_deployments
from tests.support.api import generate_request, stream_request
from tests.support.upstream import Reply, Upstream, fixture

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
@pytest.mark.parametrize(
    ("status", "name", "outcome"),
    [
        (429, "openai/error_429.json", "PROVIDER_RATE_LIMITED"),
        (500, "openai/error_500.json", "PROVIDER_UNAVAILABLE"),
    ],
)
async def test_a_slowly_dripping_error_body_is_classified_by_its_status(
    serve: Any, upstream: Upstream, upstream2: Upstream, stream: bool, status: int, name: str, outcome: str
) -> None:
    upstream.push(Reply(status=status, body=fixture(name), byte_delay=0.2, headers={"retry-after": "3"}))
    upstream2.push(Reply.sse("openai/stream.sse") if stream else Reply.json("openai/chat_completion.json"))
    policy = two_deployments(upstream.url, upstream2.url, read_timeout_seconds=2.0)
    s = await serve({"policy": policy, "settings": {"http": {"error_body_timeout_seconds": 0.5}}}, ENV)
    if stream:
        events = [e async for e in s.stub.StreamGenerate(stream_request(messages=[user("Hi")]), timeout=20)]
        summary = events[-1].result.summary
    else:
        summary = (await s.stub.Generate(generate_request(messages=[user("Hi")]), timeout=20)).summary
    assert [(a.deployment, a.outcome) for a in summary.attempts] == [("first", outcome), ("second", "OK")]
