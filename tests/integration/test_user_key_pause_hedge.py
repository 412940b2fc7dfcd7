"""A user's own key paused on one deployment (its upstream's 429 Retry-After) and a hedged route:
the hedge to that deployment fails at once (USER_KEY_RATE_LIMITED, the upstream not asked), and the
slow primary, which has not failed, still answers the call. The real server, a real gRPC client and
two loopback OpenAI-wire upstreams: a slow one, and one that rate-limits alice's key.

It used to end the call with USER_KEY_RATE_LIMITED the moment the hedge started, cancelling the
primary that was about to answer: the pause turned a slow first deployment into a failed call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import Running, admin_socket
from tests.integration.test_user_key_pause import OneKeyLimited
from tests.integration.test_user_keys import ALICE_OPENAI, ENV, HELLO, fails, register, req
from tests.support.api import text_of
from tests.support.keys import local_keys
from tests.support.upstream import fixture

pytestmark = pytest.mark.integration
Serve = Callable[..., Awaitable[Running]]
SLOW = 0.5  # seconds the primary takes to answer; the hedge starts after 0.05


class Slow:
    """An OpenAI-wire chat upstream that answers every call after SLOW seconds."""

    def __init__(self) -> None:
        self.seen = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen += 1
        await asyncio.sleep(SLOW)
        body = fixture("openai/chat_completion.json")
        return web.Response(body=body, headers={"content-type": "application/json"})

    async def start(self) -> Slow:
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
async def upstreams() -> AsyncIterator[tuple[Slow, OneKeyLimited]]:
    slow, limiting = await Slow().start(), await OneKeyLimited().start()
    yield slow, limiting
    await slow.close()
    await limiting.close()


def config(slow: Slow, limiting: OneKeyLimited, keys: dict[str, Any]) -> dict[str, Any]:
    def deployment(url: str) -> dict[str, Any]:
        return {
            "provider": "openai",
            "model": "gpt-test",
            "base_url": f"{url}/v1",
            "api_key": {"env": "OPENAI_PLATFORM"},
            "allow_user_keys": True,
        }

    once = {"max_attempts": 1}
    hedging = {"enabled": True, "min_delay_seconds": 0.05, "default_delay_seconds": 0.05}
    return {
        "settings": {"keys": keys, "admin": admin_socket()},
        "policy": {
            "default_route": "hedged",
            "deployments": {"slow": deployment(slow.url), "limits": deployment(limiting.url)},
            "routes": {
                "limits_only": {"deployments": ["limits"], "user_key": "preferred", "retry": once},
                "hedged": {
                    "deployments": ["slow", "limits"],
                    "user_key": "preferred",
                    "retry": once,
                    "hedging": hedging,
                },
            },
            "routing": {"probes": {"enabled": False}},
        },
    }


async def test_a_hedge_to_a_deployment_where_the_key_is_paused_leaves_the_primary_to_answer(
    serve: Serve, upstreams: tuple[Slow, OneKeyLimited], tmp_path: Path
) -> None:
    slow, limiting = upstreams
    s = await serve(config(slow, limiting, local_keys(tmp_path)), ENV)
    await register(s, ALICE_OPENAI)
    err = await fails(s.stub.Generate(req("limits_only")))  # the upstream's 429: alice's key paused there
    assert err.reason == "USER_KEY_RATE_LIMITED" and limiting.seen[ALICE_OPENAI] == 1
    reply = await s.stub.Generate(req("hedged"))
    assert text_of(reply) == HELLO
    assert reply.summary.served_by.deployment == "slow"
    assert sorted((a.deployment, a.outcome) for a in reply.summary.attempts) == [
        ("limits", "USER_KEY_RATE_LIMITED"),
        ("slow", "OK"),
    ]
    assert limiting.seen[ALICE_OPENAI] == 1 and slow.seen == 1  # the paused key was not sent again
