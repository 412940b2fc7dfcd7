"""Traces exported over OTLP/HTTP to a real receiver: what a collector gets, and what it never gets.

The receiver decodes the exporter's protobuf body (`ExportTraceServiceRequest`) as an OpenTelemetry
Collector's OTLP/HTTP receiver does. A collector that accepts connections and never answers must not
hold the sidecar's event loop while the last spans are flushed at shutdown."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import echo_policy, user
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


class Moody(Receiver):
    """A receiver whose answer can be switched: 200, 500, or 429 with a Retry-After."""

    def __init__(self) -> None:
        super().__init__()
        self.status, self.headers = 200, {}

    async def _traces(self, request: web.Request) -> web.Response:
        if self.status == 200:
            return await super()._traces(request)
        await request.read()
        return web.Response(status=self.status, headers=self.headers, body=b"")


def spans_counted(s: Any) -> tuple[float, dict[str, float]]:
    registry = s.sidecar.deps.telemetry.metrics.registry
    dropped = {
        cause: registry.get_sample_value("sidecar_trace_spans_dropped_total", {"cause": cause})
        for cause in ("queue_full", "export_failed", "shutdown")
    }
    return registry.get_sample_value("sidecar_trace_spans_exported_total"), dropped


async def test_a_failing_collector_is_counted_and_logged_once_per_episode(
    serve: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The collector answers 500, then 429 with Retry-After, then accepts again. Every span is
    counted as exported or dropped; the log has one line when the failures begin (naming the 500)
    and one when an export succeeds again, and none of the exporter's own line per batch and retry."""
    caplog.set_level(logging.DEBUG)
    moody = await Moody().start()
    tracing = {"enabled": True, "otlp_endpoint": moody.url, "export_timeout_seconds": 2}
    try:
        s = await serve({"policy": echo_policy(), "settings": {"telemetry": {"tracing": tracing}}})
        calls = 0

        async def burst(n: int) -> None:
            nonlocal calls
            for i in range(0, n, 50):
                await asyncio.gather(
                    *(s.stub.Generate(generate_request(messages=[user(f"hi {i + j}")])) for j in range(50))
                )
            calls += n

        async def until_failed(least: float) -> None:
            for _ in range(100):
                if spans_counted(s)[1]["export_failed"] >= least:
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"never {least} failed: {spans_counted(s)}")

        moody.status = 500
        await burst(550)  # 1,100 spans (a call's and its attempt's): two batches of 512 go at once
        await until_failed(1024)
        moody.status, moody.headers = 429, {"Retry-After": "1"}
        await burst(300)
        await until_failed(1536)
        moody.status = 200
        await burst(300)
        await s.sidecar.stop(0)  # what is still batched is exported on the way down
        exported, dropped = spans_counted(s)
        assert exported == len(moody.spans) > 0
        assert exported + sum(dropped.values()) == 2 * calls
        assert dropped["queue_full"] == dropped["shutdown"] == 0
    finally:
        await moody.close()
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry")]
    lines = [r for r in caplog.records if r.name == "sidecar.tracing"]
    assert [(r.levelname, r.getMessage().split(";")[0]) for r in lines] == [
        ("ERROR", "trace export failed"),
        ("WARNING", "trace export succeeds again"),
    ]
    assert "500" in getattr(lines[0], "error", "")
    assert getattr(lines[1], "dropped_spans", None) == dropped["export_failed"]


async def test_a_collector_that_never_answers_bounds_the_stop_and_counts_what_it_lost(
    serve: Callable[..., Any],
) -> None:
    """Every span is counted as dropped (past the queue, failed, or at the stop); the batches still
    queued get one export timeout to start, not one timeout each (4 batches took 4 timeouts)."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/traces"
        tracing = {"enabled": True, "otlp_endpoint": endpoint, "export_timeout_seconds": 1}
        s = await serve({"policy": echo_policy(), "settings": {"telemetry": {"tracing": tracing}}})
        for i in range(0, 1600, 100):
            await asyncio.gather(
                *(s.stub.Generate(generate_request(messages=[user(f"hi {i + j}")])) for j in range(100))
            )
        loop = asyncio.get_running_loop()
        started = loop.time()
        await s.sidecar.stop(0)
        took = loop.time() - started
    finally:
        silent.close()
    exported, dropped = spans_counted(s)
    assert exported == 0 and sum(dropped.values()) == 3200
    assert dropped["shutdown"] > 0  # batches that never started: dropped and counted, not waited for
    assert took < 2.5  # the batch in progress (1 s) and the start of the next: not 4 x 1 s
