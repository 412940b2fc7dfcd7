"""Near-limit webhook posts are signed as the Standard Webhooks specification says.

A real sidecar with a `webhook.secret` crosses a near-limit level; a real aiohttp receiver checks
each POST with its own verifier, written here from the specification (not the sidecar's signer):
HMAC-SHA256 keyed with the base64-decoded secret (after "whsec_") over "<id>.<timestamp>.<body>",
"v1," + base64 in `webhook-signature`, a timestamp near now. The first attempt is answered 500: the
retry carries the same `webhook-id` and a valid signature of its own. A forged post (another key)
and a replayed one (an old timestamp) fail the same verifier, so it can fail. The secret never
reaches a log line, the metrics, or a configuration error.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from sidecar.config.load import ConfigError
from tests.conftest import echo_policy, make_config, user
from tests.integration.test_metrics_canary import scrape
from tests.support.api import generate_request, text_of

pytestmark = pytest.mark.integration
KEY = os.urandom(32)
SECRET = "whsec_" + base64.b64encode(KEY).decode()
TOLERANCE = 300


def verify(key: bytes, headers: Any, body: bytes, now: float) -> str | None:
    """None when the post is authentic and fresh, else why not (the receiver's own check)."""
    msg_id, stamp, signatures = (
        headers.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not (msg_id and stamp and signatures):
        return "missing header"
    if abs(now - int(stamp)) > TOLERANCE:
        return "timestamp out of tolerance"
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest())
    for entry in signatures.split(" "):
        version, _, sig = entry.partition(",")
        if version == "v1" and hmac.compare_digest(sig.encode(), expected):
            return None
    return "no matching signature"


@dataclass
class Receiver:
    statuses: list[int]
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""
    got: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((dict(request.headers), await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.got.set()
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver(statuses=[500])
    app = web.Application()
    app.router.add_post("/hook", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    r.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield r
    await runner.cleanup()


def policy(url: str) -> dict[str, Any]:
    quota = {
        "near_limit_levels": [50],
        "webhook": {"url": url, "secret": {"env": "HOOK_SECRET"}, "backoff_seconds": 0, "max_attempts": 3},
        "limits": [{"name": "daily", "metric": "requests", "scope": "tenant", "window": "day", "limit": 2}],
    }
    return echo_policy(quota=quota)


async def test_each_attempt_is_signed_under_one_id_and_the_secret_never_shows(
    serve: Any, receiver: Receiver, json_logs: io.StringIO
) -> None:
    s = await serve({"policy": policy(receiver.url)}, {"HOOK_SECRET": SECRET})
    reply = await s.stub.Generate(generate_request(messages=[user("hi")], tenant_id="acme", user_id="ann"))
    assert text_of(reply)
    await asyncio.wait_for(receiver.got.wait(), 10)
    assert len(receiver.posts) == 2  # answered 500, then delivered
    ids = set()
    for headers, body in receiver.posts:
        assert verify(KEY, headers, body, time.time()) is None
        assert json.loads(body)["event"] == "quota.near_limit"
        ids.add(headers["webhook-id"])
    assert len(ids) == 1  # one event, one id across its retries: a receiver drops the repeat
    headers, body = receiver.posts[-1]
    assert verify(os.urandom(32), headers, body, time.time()) == "no matching signature"  # forged
    assert verify(KEY, headers, body.replace(b"50", b"51"), time.time()) == "no matching signature"
    assert verify(KEY, headers, body, time.time() + 3600) == "timestamp out of tolerance"  # replayed
    text = json_logs.getvalue() + await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    encoded = SECRET.removeprefix("whsec_")
    assert encoded not in text and KEY.hex() not in text


@pytest.mark.parametrize(
    "bad", ["whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode(), "plain words here"]
)
def test_a_secret_that_is_not_one_is_refused_at_load_without_showing_it(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config({"policy": policy("http://127.0.0.1:9/hook")}, {"HOOK_SECRET": bad}, tmp_path)
    message = str(info.value)
    assert "policy.quota.webhook.secret" in message and "HOOK_SECRET" in message
    assert bad not in message and bad.removeprefix("whsec_") not in message


def test_an_unset_secret_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="HOOK_SECRET is not set"):
        make_config({"policy": policy("http://127.0.0.1:9/hook")}, {}, tmp_path)
