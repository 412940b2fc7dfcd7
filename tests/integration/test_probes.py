"""Provider probes against loopback upstreams: a GET of the model list, classified like generation."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pydantic import SecretStr

from sidecar.config.schema import DeploymentConfig, HttpSettings
from sidecar.core.clock import Deadline, SystemClock
from sidecar.core.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderMalformedError,
    ProviderRateLimitedError,
    ProviderTimeoutError,
    ProviderUnavailableError,
)
from sidecar.providers._http import HttpClient
from sidecar.providers.anthropic import AnthropicProvider
from sidecar.providers.base import PROBE_MAX_BODY_BYTES, HttpProvider
from sidecar.providers.echo import EchoProvider
from sidecar.providers.openai import OpenAIProvider
from sidecar.routing.probe import HealthProber, ProbePolicy, provider_probes
from tests.conftest import FakeClock, free_port
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
OAI_KEY = "sk-test-openai-0123456789"
ANT_KEY = "sk-ant-test-0123456789"
CLOCK = SystemClock()


class MethodUpstream(Upstream):
    """The loopback upstream, also recording each request's method (`Seen` has none)."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.methods.append(request.method)
        return await super()._handle(request)


@pytest.fixture
async def models_upstream() -> AsyncIterator[MethodUpstream]:
    server = MethodUpstream()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(HttpSettings(), CLOCK)
    yield client
    await client.aclose()


def openai(http: HttpClient, base_url: str) -> OpenAIProvider:
    deployment = DeploymentConfig(provider="openai", model="gpt-4o-mini", base_url=f"{base_url}/v1")
    return OpenAIProvider(deployment, http=http, api_key=SecretStr(OAI_KEY))


def anthropic(http: HttpClient, base_url: str) -> AnthropicProvider:
    deployment = DeploymentConfig(provider="anthropic", model="claude-haiku-4-5", base_url=base_url)
    return AnthropicProvider(deployment, http=http, api_key=SecretStr(ANT_KEY))


def soon(seconds: float = 5.0) -> Deadline:
    return Deadline.after(seconds, CLOCK)


async def test_openai_probe_gets_the_model_list_with_the_bearer_key(
    http: HttpClient, models_upstream: MethodUpstream
) -> None:
    models_upstream.push(Reply.json("openai/models.json"))
    await openai(http, models_upstream.url).probe(deadline=soon())
    assert models_upstream.methods == ["GET"]
    seen = models_upstream.seen[0]
    assert (seen.path, seen.body) == ("/v1/models", None)
    assert seen.headers["Authorization"] == f"Bearer {OAI_KEY}"
    assert seen.headers["Accept"] == "application/json"
    assert "Content-Type" not in seen.headers


async def test_anthropic_probe_gets_the_model_list_with_its_headers(
    http: HttpClient, models_upstream: MethodUpstream
) -> None:
    models_upstream.push(Reply.json("anthropic/models.json"))
    await anthropic(http, models_upstream.url).probe(deadline=soon())
    assert models_upstream.methods == ["GET"]
    seen = models_upstream.seen[0]
    assert (seen.path, seen.body) == ("/v1/models", None)
    assert seen.headers["x-api-key"] == ANT_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in seen.headers


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.json("openai/error_500.json", status=500), ProviderUnavailableError),
        (Reply.json("openai/error_401.json", status=401), ProviderAuthError),
        (Reply(status=403, body=b'{"error":{"message":"forbidden"}}'), ProviderAuthError),
        (
            Reply.json("openai/error_429.json", status=429, headers={"retry-after": "3"}),
            ProviderRateLimitedError,
        ),
        (Reply(status=502, body=b"<html>bad gateway</html>"), ProviderUnavailableError),
        (Reply(status=200, body=b"<html>captive portal</html>"), ProviderMalformedError),
        (Reply(status=200, body=b'{"status":"ok"}'), ProviderMalformedError),
        (Reply(reset=True), ProviderUnavailableError),
    ],
)
async def test_openai_probe_failures_are_classified(
    http: HttpClient, upstream: Upstream, reply: Reply, error: type[ProviderError]
) -> None:
    upstream.push(reply)
    with pytest.raises(error) as caught:
        await openai(http, upstream.url).probe(deadline=soon())
    assert type(caught.value) is error
    assert OAI_KEY not in str(caught.value)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.json("anthropic/error_529.json", status=529), ProviderUnavailableError),
        (
            Reply(status=401, body=b'{"type":"error","error":{"type":"authentication_error"}}'),
            ProviderAuthError,
        ),
    ],
)
async def test_anthropic_probe_failures_are_classified(
    http: HttpClient, upstream: Upstream, reply: Reply, error: type[ProviderError]
) -> None:
    upstream.push(reply)
    with pytest.raises(error):
        await anthropic(http, upstream.url).probe(deadline=soon())
    assert upstream.seen[0].path == "/v1/models"


async def test_probe_of_a_closed_port_is_unavailable(http: HttpClient) -> None:
    with pytest.raises(ProviderUnavailableError):
        await openai(http, f"http://127.0.0.1:{free_port()}").probe(deadline=soon())


async def test_probe_that_hangs_is_a_provider_timeout_not_a_call_deadline(
    http: HttpClient, upstream: Upstream
) -> None:
    upstream.push(Reply(hang=True))
    with pytest.raises(ProviderTimeoutError):
        await openai(http, upstream.url).probe(deadline=soon(0.1))


async def test_echo_probe_returns_at_once() -> None:
    echo = EchoProvider(DeploymentConfig(provider="echo", model="echo-1"), clock=FakeClock())
    await echo.probe(deadline=Deadline.after(0.0, FakeClock()))


async def test_prober_marks_a_real_upstream_down_and_up_again(
    http: HttpClient, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The wiring end to end: provider.probe via provider_probes, streaks, and no key in any log."""
    providers: dict[str, HttpProvider] = {"oai": openai(http, upstream.url)}
    policy = ProbePolicy(timeout_seconds=2.0)
    prober = HealthProber(
        provider_probes(providers, policy=policy, clock=CLOCK),
        policy=policy,
        clock=CLOCK,
        rng=random.Random(1),
    )
    upstream.push(Reply(status=502), Reply(status=503))
    upstream.push(*[Reply.json("openai/models.json")] * 3)
    for _ in range(2):
        await prober.probe_once("oai")
    assert not prober.healthy("oai")
    assert prober.status("oai").last_error == "PROVIDER_UNAVAILABLE: upstream HTTP 503"
    for _ in range(3):
        await prober.probe_once("oai")
    assert prober.healthy("oai")
    assert [s.path for s in upstream.seen] == ["/v1/models"] * 5  # never a generation call
    assert all(OAI_KEY not in r.getMessage() and OAI_KEY not in str(vars(r)) for r in caplog.records)


class HugeModelList:
    """A loopback OpenAI-wire upstream whose model list is a valid 20 MiB JSON document, written in
    64 KiB pieces (chunked, or with its Content-Length); it records how much of it it got to write
    before the client went away."""

    PIECE = b'{"id":"m","object":"model","owned_by":"x","pad":"' + b"x" * 65_400 + b'"},'

    def __init__(self, *, declared: bool) -> None:
        self.declared, self.written, self.requests = declared, 0, 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    def body_parts(self) -> list[bytes]:
        pieces = [self.PIECE] * 320  # ~20 MiB
        return [b'{"object":"list","data":[', *pieces, b'{"id":"last","object":"model"}]}']

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        parts = self.body_parts()
        resp = web.StreamResponse(headers={"content-type": "application/json"})
        if self.declared:
            resp.content_length = sum(map(len, parts))
        await resp.prepare(request)
        for part in parts:
            await resp.write(part)
            self.written += len(part)
        await resp.write_eof()
        return resp

    async def __aenter__(self) -> HugeModelList:
        app = web.Application()
        app.router.add_get("/v1/models", self.handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
async def test_a_probe_reads_a_huge_model_list_only_up_to_its_own_bound(
    http: HttpClient, declared: bool
) -> None:
    """A probe read the model list up to the 32 MiB bound of any JSON answer: a broken or hostile
    upstream answering 20 MiB made every probe (each deployment, every 15 s) read and parse all of
    it, and passed. A probe now reads at most PROBE_MAX_BODY_BYTES, and more is a failed probe."""
    async with HugeModelList(declared=declared) as upstream:
        with pytest.raises(ProviderMalformedError, match=f"larger than {PROBE_MAX_BODY_BYTES} bytes"):
            await openai(http, upstream.url).probe(deadline=soon())
        assert upstream.requests == 1
        # the connection was dropped early: what the upstream got written is the bound plus what
        # the loopback socket buffers hold, far from the whole list
        assert upstream.written < 16 * 1024 * 1024, upstream.written


async def test_a_probe_answer_that_drips_is_bounded_by_the_probe_timeout(http: HttpClient) -> None:
    """A model list sent a byte at a time never ties a probe up past its own deadline."""
    upstream = Upstream()
    await upstream.start()
    try:
        upstream.push(Reply.json("openai/models.json", byte_delay=0.05))
        started = CLOCK.monotonic()
        with pytest.raises(ProviderTimeoutError):
            await openai(http, upstream.url).probe(deadline=soon(0.5))
        assert CLOCK.monotonic() - started < 2.0
    finally:
        await upstream.close()


async def test_a_real_upstream_answering_429_to_probes_stays_healthy(
    http: HttpClient, upstream: Upstream
) -> None:
    """An upstream rate-limiting its model list is reachable and takes the key: two 429s in a row
    marked it unhealthy (out of every route for 45 s and more, past its own Retry-After)."""
    providers: dict[str, HttpProvider] = {"oai": openai(http, upstream.url)}
    policy = ProbePolicy(timeout_seconds=2.0)
    prober = HealthProber(
        provider_probes(providers, policy=policy, clock=CLOCK),
        policy=policy,
        clock=CLOCK,
        rng=random.Random(1),
    )
    limited = Reply.json("openai/error_429.json", status=429, headers={"retry-after": "3"})
    upstream.push(limited, limited, limited)
    for _ in range(3):
        await prober.probe_once("oai")
    status = prober.status("oai")
    assert status.healthy and status.consecutive_failures == 0 and status.probes == 3
    assert len(upstream.seen) == 3
