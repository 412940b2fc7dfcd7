"""User-key signals on /metrics: decrypt latency on cache misses, key-cache hits and misses; never the key."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import keys_pb2
from tests.conftest import user
from tests.support.api import generate_request
from tests.support.keys import local_keys
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
USER_KEY = "sk-user-canary-5f2b8c1d9e0a7b3c4d6e"


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    assert USER_KEY not in text and USER_KEY[-8:] not in text
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_key_decrypts_and_cache_lookups(serve: Any, upstream: Upstream, tmp_path: Path) -> None:
    policy = {
        "default_route": "mine",
        "deployments": {
            "oai": {
                "provider": "openai",
                "model": "m",
                "base_url": f"{upstream.url}/v1",
                "allow_user_keys": True,
            }
        },
        "routes": {"mine": {"deployments": ["oai"], "user_key": "required"}},
        "routing": {"probes": {"enabled": False}},
    }
    s = await serve({"settings": {"keys": local_keys(tmp_path)}, "policy": policy})
    ref = (
        await s.stub.RegisterKey(
            keys_pb2.RegisterKeyRequest(
                tenant_id="acme", user_id="alice", provider="openai", api_key=USER_KEY
            )
        )
    ).key_ref
    for _ in range(3):
        upstream.push(Reply.json("openai/chat_completion.json"))
        await s.stub.Generate(
            generate_request(
                messages=[user("hi")],
                tenant_id="acme",
                user_id="alice",
                provider_key=keys_pb2.ProviderKey(key_ref=ref),
            )
        )
    m = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    assert m["sidecar_key_decrypt_seconds_count"] == 1  # one backend decrypt, then the cache
    assert m['sidecar_key_cache_lookups_total{result="miss"}'] == 1
    assert m['sidecar_key_cache_lookups_total{result="hit"}'] == 2
