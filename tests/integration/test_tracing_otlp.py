"""Traces exported over OTLP/HTTP to a real receiver: what a collector gets, and what it never gets.

The receiver decodes the exporter's protobuf body (`ExportTraceServiceRequest`) as an OpenTelemetry
Collector's OTLP/HTTP receiver does. A collector that accepts connections and never answers must not
hold the sidecar's event loop while the last spans are flushed at shutdown."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import user
from tests.support.api import generate_request, text_of
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

CANARY_PROMPT = "canary prompt: the heron waits at dawn"
CANARY_KEY = "sk-otlp-canary-0123456789abcdef"


class Receiver:
    """An OTLP/HTTP trace receiver on a free port: every span it was sent, with the request headers."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.bodies: list[bytes] = []
        self.content_types: list[str] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1/traces"
        return self

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        self.content_types.append(request.content_type)
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.close()


def traced(upstream: Upstream, endpoint: str, timeout: float = 5.0) -> dict[str, Any]:
    return {
        "policy": {
            "default_route": "r",
            "deployments": {
                "d": {
                    "provider": "openai",
                    "model": "m",
                    "base_url": f"{upstream.url}/v1",
                    "api_key": {"env": "K"},
                }
            },
            "routes": {"r": {"deployments": ["d"]}},
        },
        "settings": {
            "telemetry": {
                "tracing": {"enabled": True, "otlp_endpoint": endpoint, "export_timeout_seconds": timeout}
            }
        },
    }


def attributes(span: Span) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        found[kv.key] = getattr(kv.value, kind) if kind else None
    return found


async def test_a_calls_spans_reach_the_collector_without_its_content_or_key(
    serve: Callable[..., Any], upstream: Upstream, receiver: Receiver
) -> None:
    upstream.push(Reply.json("openai/chat_completion.json"))
    s = await serve(traced(upstream, receiver.url), {"K": CANARY_KEY})
    reply = await s.stub.Generate(generate_request(messages=[user(CANARY_PROMPT)], tenant_id="acme"))
    assert text_of(reply)
    await s.sidecar.stop(0)  # the batch is flushed on the way down
    names = {span.name for span in receiver.spans}
    assert any(n.startswith("chat ") for n in names) and "attempt d" in names, names
    [root] = [span for span in receiver.spans if span.name.startswith("chat ")]
    attrs = attributes(root)
    assert attrs["gen_ai.provider.name"] == "openai" and attrs["sidecar.tenant_id"] == "acme"
    assert attrs["gen_ai.usage.input_tokens"] == reply.summary.usage.prompt_tokens
    assert set(receiver.content_types) == {"application/x-protobuf"}
    sent = b"".join(receiver.bodies)
    for canary in (CANARY_PROMPT, "heron waits", CANARY_KEY, CANARY_KEY[:12]):
        assert canary.encode() not in sent


async def test_a_collector_that_never_answers_does_not_hold_the_loop_at_shutdown(
    serve: Callable[..., Any], upstream: Upstream
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections, never reads or answers
    try:
        upstream.push(Reply.json("openai/chat_completion.json"))
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces"
        s = await serve(traced(upstream, endpoint, timeout=1.0), {"K": CANARY_KEY})
        await s.stub.Generate(generate_request(messages=[user("hello")], tenant_id="acme"))
        gaps: list[float] = []
        loop = asyncio.get_running_loop()

        async def tick() -> None:
            last = loop.time()
            while True:
                await asyncio.sleep(0.02)
                now = loop.time()
                gaps.append(now - last)
                last = now

        ticker = asyncio.ensure_future(tick())
        started = loop.time()
        await s.sidecar.stop(0)
        took = loop.time() - started
        ticker.cancel()
    finally:
        silent.close()
    assert took < 3.0  # one export's timeout, not the exporter's default 10 s
    assert max(gaps) < 0.5  # the loop kept running while the flush waited
