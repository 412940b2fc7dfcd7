"""Defect 8: the real `build_pipeline()` closes every inner stream, in the call's own task.

Every layer of the real pipeline is active (observe, authn, persona with memory, context trimming,
quota, cache, semantic cache, key pin, route with hedging, user keys) and every handler stream between them is
recorded, as is each provider stream. Whichever way the call ends (the consumer closes the stream
after the first chunk, its task is cancelled mid-stream, or a hedged attempt loses the race), every
one of them must be closed by the time the caller's side returns: nothing is left to the garbage
collector.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from sidecar import app
from sidecar.app import build_pipeline
from sidecar.core.clock import Deadline, SystemClock
from sidecar.core.layer import Handler, Layer
from sidecar.core.types import Call, Chunk, FinishReason, GenerationParams, KeyRef, Message, Role, Usage
from sidecar.deps import build_deps
from sidecar.keys.backend import KeyContext
from sidecar.providers.base import Capabilities, ProviderRequest
from tests.conftest import make_config
from tests.support.calls import make_call
from tests.support.keys import local_keys
from tests.support.personas import CATALOGUE
from tests.support.prometheus import quiet_telemetry

pytestmark = pytest.mark.integration


class Streams:
    """Every handler stream the pipeline opened, by the layer that returned it."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, AsyncGenerator[Chunk, None]]] = []

    def compose(self, terminal: Handler, layers: Sequence[Layer]) -> Handler:
        handler = self.track("upstream", terminal)
        for layer in reversed(layers):
            inner = layer(handler)
            handler = self.track(getattr(getattr(layer, "func", layer), "__name__", "layer"), inner)
        return handler

    def track(self, name: str, handler: Handler) -> Handler:
        def tracked(call: Call) -> AsyncGenerator[Chunk, None]:
            stream = handler(call)
            self.opened.append((name, stream))
            return stream

        return tracked  # type: ignore[return-value]

    def still_open(self) -> list[str]:
        return [name for name, stream in self.opened if stream.ag_frame is not None]


class Provider:
    """An upstream whose streams record their own end; `hang` never answers (a hedge's loser)."""

    def __init__(self, name: str, *, hang: bool = False) -> None:
        self.name, self.hang = name, hang
        self.capabilities = Capabilities(
            streaming=True, tools=False, json_schema=False, max_context_tokens=8000
        )
        self.started = 0
        self.closed = 0
        self.gate = asyncio.Event()  # the second chunk waits for it
        self.sent_first = asyncio.Event()

    async def generate(self, req: ProviderRequest, *, deadline: Deadline) -> AsyncGenerator[Chunk, None]:
        self.started += 1
        try:
            if self.hang:
                await asyncio.Event().wait()
            yield Chunk(text="one ")
            self.sent_first.set()
            await self.gate.wait()
            yield Chunk(text="two")
            yield Chunk(finish_reason=FinishReason.STOP, usage=Usage(5, 2))
        finally:
            self.closed += 1

    async def probe(self, *, deadline: Deadline) -> None:
        return None

    async def aclose(self) -> None:
        return None


def config(tmp: Path, *, hedge: bool) -> dict[str, Any]:
    deployment = {
        "provider": "openai",
        "model": "m",
        "base_url": "http://127.0.0.1:9/v1",
        "allow_user_keys": True,
        "context_window": 8000,
    }
    route: dict[str, Any] = {
        "deployments": ["a", "b"],
        "user_key": "preferred",
        "retry": {"max_attempts": 1},
        "cache": {"semantic": {"enabled": True}},  # the local model embeds the prompt
    }
    if hedge:
        route["hedging"] = {"enabled": True, "min_delay_seconds": 0.0, "default_delay_seconds": 0.01}
    return {
        "settings": {
            "telemetry": quiet_telemetry(tmp),
            "keys": local_keys(tmp),
            "cache": {"enabled": True},
        },
        "policy": {
            "default_route": "r",
            "deployments": {"a": deployment, "b": deployment},
            "routes": {"r": route},
            "routing": {"probes": {"enabled": False}},
            "personas": {
                "personas": [{**p, "default_route": None} for p in CATALOGUE],
                "sessions": {"memory": True},
            },
            "context": {"enabled": True, "max_recent_messages": 1},
            "quota": {"limits": [{"name": "day", "metric": "requests", "window": "day", "limit": 1000}]},
        },
    }


async def pipeline(
    tmp: Path, monkeypatch: pytest.MonkeyPatch, *, hedge: bool = False
) -> tuple[Handler, Streams, dict[str, Provider], Any]:
    streams = Streams()
    monkeypatch.setattr(app, "compose", streams.compose)
    cfg = make_config(config(tmp, hedge=hedge), {}, tmp)
    deps = build_deps(cfg, SystemClock())
    providers = {"a": Provider("a", hang=hedge), "b": Provider("b")}
    deps = dataclasses.replace(deps, providers=providers)
    assert deps.keys is not None
    record = await deps.keys.register(KeyContext("t", "u", "openai", "default"), b"sk-user-key-0123456789")
    return build_pipeline(cfg, deps), streams, providers, (deps, record.ref)


def call_for(text: str, ref: str) -> Call:
    call = make_call(SystemClock(), text=text, timeout=30)
    history = (Message(Role.USER, "an old question"), Message(Role.ASSISTANT, "an old answer"))
    return dataclasses.replace(
        call,
        conversation_id="c1",
        messages=(*history, Message(Role.USER, text)),
        params=GenerationParams(temperature=0.0),
        key_source=KeyRef(ref),
        tier="free",
    )


def layers_seen(streams: Streams) -> set[str]:
    return {name for name, _ in streams.opened}


EVERY_LAYER = {
    "ObserveLayer",
    "AuthnLayer",
    "PersonaLayer",
    "AnswerPolicyLayer",
    "ContextLayer",
    "QuotaLayer",
    "CacheLayer",
    "StructuredOutputLayer",
    "SemanticCacheLayer",
    "ResolveLayer",
    "AdmissionLayer",
    "ExperimentLayer",
    "RouteLayer",
    "KeyLayer",
    "upstream",
}


async def test_closing_after_the_first_chunk_closes_every_inner_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, streams, providers, (deps, ref) = await pipeline(tmp_path, monkeypatch)
    try:
        outer = handler(call_for("closed early", ref))
        first = await anext(outer)
        assert first.text == "one "
        await outer.aclose()  # GeneratorExit at the outer layer's yield
        assert layers_seen(streams) == EVERY_LAYER
        assert streams.still_open() == []
        assert providers["a"].closed == providers["a"].started == 1
    finally:
        await deps.keys.aclose()


async def test_cancelling_the_task_mid_stream_closes_every_inner_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, streams, providers, (deps, ref) = await pipeline(tmp_path, monkeypatch)

    async def consume() -> None:
        async with aclosing(handler(call_for("cancelled", ref))) as chunks:
            async for _ in chunks:
                pass

    try:
        task = asyncio.create_task(consume())
        await providers["a"].sent_first.wait()
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert streams.still_open() == []
        assert providers["a"].closed == providers["a"].started == 1
    finally:
        await deps.keys.aclose()


async def test_a_lost_hedge_is_closed_and_so_is_everything_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, streams, providers, (deps, ref) = await pipeline(tmp_path, monkeypatch, hedge=True)
    providers["b"].gate.set()
    try:
        async with aclosing(handler(call_for("hedged", ref))) as chunks:
            texts = [c.text async for c in chunks]
        assert "".join(texts) == "one two"
        assert providers["a"].started == 1 and providers["a"].closed == 1  # the loser, cancelled and closed
        assert providers["b"].closed == providers["b"].started == 1
        assert streams.still_open() == []
    finally:
        await deps.keys.aclose()
