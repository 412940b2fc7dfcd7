"""A user's own key rate-limited upstream: the upstream's Retry-After pauses that key on that
deployment, and nothing else. The real server (on a fake clock) and a loopback OpenAI-wire upstream
that rate-limits one key only; the shared deployment and every other key go on."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiohttp import web

from sidecar.routing.breaker import BreakerState
from tests.conftest import FakeClock, Running
from tests.integration.test_user_keys import (
    ALICE_OPENAI,
    BOB_OPENAI,
    ENV,
    HELLO,
    config,
    fails,
    local_keys,
    register,
    req,
)
from tests.support.api import text_of
from tests.support.upstream import fixture

pytestmark = pytest.mark.integration
Serve = Callable[..., Awaitable[Running]]
LIMITED = b'{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}'


class OneKeyLimited:
    """An OpenAI-wire chat upstream that answers 429 + Retry-After to `limited` keys, 200 to others."""

    def __init__(self, retry_after: str = "30") -> None:
        self.limited = {ALICE_OPENAI}
        self.retry_after = retry_after
        self.seen: Counter[str] = Counter()  # requests per bearer key
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.seen[key] += 1
        if key in self.limited:
            headers = {"retry-after": self.retry_after, "content-type": "application/json"}
            return web.Response(status=429, body=LIMITED, headers=headers)
        body = fixture("openai/chat_completion.json")
        return web.Response(body=body, headers={"content-type": "application/json"})

    async def start(self) -> OneKeyLimited:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def limiting() -> AsyncIterator[OneKeyLimited]:
    upstream = await OneKeyLimited().start()
    yield upstream
    await upstream.close()


@pytest.fixture
async def s(serve: Serve, limiting: OneKeyLimited, tmp_path: Path, clock: FakeClock) -> Running:
    running = await serve(config(limiting, local_keys(tmp_path)), ENV, clock=clock)
    await register(running, ALICE_OPENAI)
    await register(running, BOB_OPENAI, user_id="bob")
    return running


async def alice_limited(s: Running) -> Any:
    err = await fails(s.stub.Generate(req("preferred")))
    assert (err.code, err.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "USER_KEY_RATE_LIMITED")
    assert err.retry is not None
    return err.retry.retry_delay.ToTimedelta().total_seconds()


async def test_a_user_keys_retry_after_pauses_that_key_only(
    s: Running, limiting: OneKeyLimited, clock: FakeClock
) -> None:
    assert await alice_limited(s) == 30
    clock.advance(10)
    # alice's key waits out its Retry-After in the sidecar: no request reaches the upstream with it
    assert await alice_limited(s) == 20
    assert limiting.seen[ALICE_OPENAI] == 1
    # bob's own key and the platform key (carol has none) are served by the same deployment
    assert text_of(await s.stub.Generate(req("preferred", user_id="bob"))) == HELLO
    assert text_of(await s.stub.Generate(req("preferred", user_id="carol"))) == HELLO
    assert limiting.seen[BOB_OPENAI] == 1 and limiting.seen[ENV["OPENAI_PLATFORM"]] == 1
    breaker = s.sidecar.deps.routing.breakers.get("oai").snapshot()
    assert (breaker.state, breaker.failures) == (BreakerState.CLOSED, 0)  # not the deployment's failure
    # the pause over, alice's key goes upstream again (and is served once the upstream lets it)
    clock.advance(20)
    limiting.limited.clear()
    assert text_of(await s.stub.Generate(req("preferred"))) == HELLO
    assert limiting.seen[ALICE_OPENAI] == 2


async def test_the_same_key_brought_by_another_user_is_paused_too(
    s: Running, limiting: OneKeyLimited
) -> None:
    """The provider limits the key, whoever holds it: the pause follows the key itself."""
    await register(s, ALICE_OPENAI, user_id="dave")
    assert await alice_limited(s) == 30
    err = await fails(s.stub.Generate(req("preferred", user_id="dave")))
    assert err.reason == "USER_KEY_RATE_LIMITED"
    assert limiting.seen[ALICE_OPENAI] == 1


async def test_a_429_without_retry_after_pauses_nothing(s: Running, limiting: OneKeyLimited) -> None:
    limiting.retry_after = ""
    for _ in range(3):
        err = await fails(s.stub.Generate(req("preferred")))
        assert err.reason == "USER_KEY_RATE_LIMITED"
    assert limiting.seen[ALICE_OPENAI] == 3  # no word from the upstream on when: each call asks it
