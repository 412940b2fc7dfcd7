"""Every credential the sidecar holds, as a canary, through every provider's wire and every way an
upstream fails, in a real `sidecar serve` process at DEBUG with metrics, the ledger, tracing (OTLP
to a loopback collector) and Redis for every shared store; then every output is searched for any
8-character piece of any canary: the process's stdout and stderr, /metrics, the ledger (SQLite),
the spans exported, every gRPC status (details, trailers, the google.rpc.Status in them), every key
and value in Redis and the key store's file.

The canaries have no key's shape (no `sk-`, no long base64 run), so only exact handling removes
them, never pattern redaction by luck. The upstream (tests/support/hostile.py) quotes the request's
headers and URL back in each failure's body and headers and in a stream's own error event. Two
runs: user keys under AWS KMS (moto) with the AWS session credentials canaries too, and under
Vault transit (OpenBao) with the Vault token a canary read from `token_file`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from aiohttp import web

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import keys_pb2
from tests.conftest import free_port, user
from tests.support.api import Stubs, generate_request
from tests.support.hostile import Hostile

pytestmark = pytest.mark.integration
SIDECAR = [sys.executable, "-m", "sidecar"]

# No key shape: only exact handling removes them (8-character pieces are searched for).
CANARIES = {
    "APP_TOKEN": "cnyApp.Tq7m.Wz4x.Kp2",
    "WRONG_TOKEN": "cnyWrong.Lr8b.Yc3v",
    "OPENAI_KEY": "cnyOai.Bn5t.Qe9k.Hx1",
    "AZURE_KEY": "cnyAzr.Md2p.Vf6s.Jw4",
    "ANTHROPIC_KEY": "cnyAnt.Rk3y.Gt7n.Zu8",
    "GEMINI_KEY": "cnyGem.Px6h.Cb1q.Ld5",
    "BEDROCK_KEY": "cnyBdk.Sw9e.Fm4r.Ny2",
    "AWS_SECRET_ACCESS_KEY": "cnySecret/Hq3z+Uv7c/Ek1d+Oa5g",
    "AWS_SESSION_TOKEN": "cnySession/Ij6w+Tx2b/Nl8f+Ac4r",
}
USER_KEYS = {
    "openai": "cnyUsrOai.Ge3k.Wq7p",
    "gemini": "cnyUsrGem.Zb5n.Rt1x",
    "anthropic": "cnyUsrAnt.Kc9v.Hm2s",
    "bedrock": "cnyUsrBdk.Dy4j.Pf8w",
}
VAULT_TOKEN = "cnyVault-Xo5c-Ub3e-Qh7"  # no "." in a custom token id
MODES = ("ok", "400", "401", "403", "500", "garbage", "midstream", "slow", "429")  # 429 opens the breaker
PROVIDERS = {
    "openai": ("openai", "m", "OPENAI_KEY", "/v1"),
    "azure": ("azure", "m", "AZURE_KEY", ""),
    "anthropic": ("anthropic", "m", "ANTHROPIC_KEY", "/v1"),
    "gemini": ("gemini", "gemini-2.5-flash", "GEMINI_KEY", "/v1beta"),
    "bedrock-key": ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", "BEDROCK_KEY", ""),
    "bedrock-sigv4": ("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", None, ""),
}
BYOK = {"openai": "openai", "gemini": "gemini", "anthropic": "anthropic", "bedrock-key": "bedrock"}


def pieces(secret: str, n: int = 8) -> set[str]:
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


def every_secret() -> dict[str, str]:
    named = {**CANARIES, **{f"user {k}": v for k, v in USER_KEYS.items()}, "VAULT_TOKEN": VAULT_TOKEN}
    return named


def betrayed(data: str | bytes) -> list[str]:
    """The canaries of which a piece is in `data`."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return [name for name, secret in every_secret().items() if any(p in text for p in pieces(secret))]


@dataclass
class Collector:
    """A loopback OTLP/HTTP collector keeping every export as it arrived."""

    bodies: list[bytes] = field(default_factory=list)
    url: str = ""
    runner: web.AppRunner | None = None

    async def start(self) -> Collector:
        async def take(request: web.Request) -> web.Response:
            self.bodies.append(await request.read())
            return web.Response(status=200, body=b"", content_type="application/x-protobuf")

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/traces", take)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/v1/traces"
        return self


def deployments(upstream: Hostile) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (provider, model, env, prefix) in [
        *PROVIDERS.items(),
        *((f"u-{n}", PROVIDERS[n]) for n in BYOK),
    ]:
        d: dict[str, Any] = {
            "provider": provider,
            "model": model,
            "base_url": f"{upstream.url}{prefix}",
            "read_timeout_seconds": 1.5,
            "allow_user_keys": name.startswith("u-"),
        }
        if env is not None:
            d["api_key"] = {"env": env}
        if provider == "bedrock":
            d["bedrock"] = {"region": "eu-west-1"}
        if provider == "azure":
            d["azure"] = {"deployment": "chat"}
        out[name] = d
    return out


def routes() -> dict[str, Any]:
    one = {"retry": {"max_attempts": 1}, "cache": {"enabled": True}}
    out = {f"r-{name}": {"deployments": [name], **one} for name in PROVIDERS}
    out |= {f"byok-{name}": {"deployments": [f"u-{name}"], "user_key": "required", **one} for name in BYOK}
    return out


def config_for(
    tmp: Path, upstream: Hostile, collector: Collector, redis_url: str, keys: dict[str, Any]
) -> dict[str, Any]:
    settings = {
        "log_level": "DEBUG",
        "listen": {"address": f"127.0.0.1:{free_port()}"},
        "auth": {"token": {"env": "APP_TOKEN"}},
        "keys": {**keys, "store_path": str(tmp / "keys.db")},
        "idempotency": {"backend": "redis", "redis_url": redis_url},
        "cache": {"enabled": True, "backend": "redis", "redis_url": redis_url},
        "telemetry": {
            "metrics": {"address": f"127.0.0.1:{free_port()}"},
            "ledger": {
                "backend": "sqlite",
                "sqlite_path": str(tmp / "usage.db"),
                "flush_interval_seconds": 0.1,
            },
            "tracing": {"enabled": True, "otlp_endpoint": collector.url},
        },
    }
    policy = {
        "default_route": "r-openai",
        "deployments": deployments(upstream),
        "routes": routes(),
        "routing": {
            "probes": {"enabled": True, "interval_seconds": 1, "timeout_seconds": 1},
            "breaker": {"min_requests": 1000, "cooldown_seconds": 0.5},  # every call reaches the upstream
        },
        "quota": {"store": "redis", "redis_url": redis_url},
        "tiers": {"free": {"requests_per_minute": 1_000_000}},
        "personas": {
            "personas": [{"id": "maya", "name": "Maya", "system_prompt": "You are Maya."}],
            "sessions": {"store": "redis", "redis_url": redis_url, "memory": True},
        },
    }
    return {"settings": settings, "policy": policy}


@dataclass
class Outcome:
    what: str
    code: str
    text: str


async def drive(stub: Stubs, metadata: list[tuple[str, str]], key_refs: dict[str, str]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    calls = [(route, mode) for route in routes() for mode in MODES]
    for n, (route, mode) in enumerate(calls):
        provider = route.removeprefix("byok-").removeprefix("r-")
        extra: dict[str, Any] = {}
        if route.startswith("byok-"):
            extra["provider_key"] = keys_pb2.ProviderKey(key_ref=key_refs[BYOK[provider]])
        for stream in (False, True):
            request = generate_request(
                messages=[user(f"hello MODE-{mode} call {n} {stream}")],
                model=route,
                tenant_id="acme",
                user_id="alice",
                conversation_id=f"c{n % 3}",
                request_id=f"req-{n}-{stream}",  # answers and failures kept for a retry (Redis)
                config=gen.GenerationConfig(temperature=0),  # answers cached (Redis)
                **extra,
            )
            outcomes.append(
                await one_call(stub, request, metadata, f"{route} {mode} stream={stream}", stream)
            )
    return outcomes


async def one_call(
    stub: Stubs, request: Any, metadata: list[tuple[str, str]], what: str, stream: bool
) -> Outcome:
    try:
        if stream:
            async for _ in stub.StreamGenerate(_stream_request(request), metadata=metadata, timeout=20):
                pass
        else:
            await stub.Generate(request, metadata=metadata, timeout=20)
    except grpc.aio.AioRpcError as err:
        trailers = [
            (k, v if isinstance(v, str) else v.decode("latin-1")) for k, v in err.trailing_metadata() or ()
        ]
        text = f"{err.details()} {trailers} {err.debug_error_string()}"
        return Outcome(what, err.code().name, text)
    return Outcome(what, "OK", "")


def _stream_request(request: Any) -> Any:
    return gen.StreamGenerateRequest(input=request.input)


def redis_contents(url: str) -> bytes:
    import redis

    client = redis.Redis.from_url(url)
    out: list[bytes] = []
    for key in client.scan_iter(count=1000):
        out.append(key)
        kind = client.type(key)
        if kind == b"string":
            out.append(client.get(key) or b"")
        elif kind == b"hash":
            out += [b"%s=%s" % kv for kv in client.hgetall(key).items()]
        elif kind == b"list":
            out += client.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(client.smembers(key))
        elif kind == b"zset":
            out += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            out += [json.dumps(str(e)).encode() for e in client.xrange(key)]
    return b"\n".join(out)


def sqlite_dump(path: Path) -> str:
    if not path.exists():
        return ""
    with sqlite3.connect(path) as db:
        return "\n".join(db.iterdump())


def scrape(address: str) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    up = await Hostile(slow_seconds=4).start()
    yield up
    await up.close()


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    c = await Collector().start()
    yield c
    assert c.runner is not None
    await c.runner.cleanup()


def kms_keys(request: pytest.FixtureRequest) -> tuple[dict[str, Any], dict[str, str]]:
    kms = request.getfixturevalue("kms_endpoint")
    keys = {
        "backend": "aws-kms",
        "aws_kms": {"key_id": kms.key_arn, "region": kms.region, "endpoint_url": kms.url},
    }
    return keys, {}


def vault_keys(request: pytest.FixtureRequest, tmp: Path) -> tuple[dict[str, Any], dict[str, str]]:
    bao = request.getfixturevalue("openbao")
    client = bao.client()
    rules = "\n".join(
        f'path "transit/{op}/{bao.key_name}" {{ capabilities = ["update"] }}'
        for op in ("datakey/plaintext", "decrypt")
    )
    client.sys.create_or_update_policy("canary", rules)
    client.auth.token.create(id=VAULT_TOKEN, policies=["canary"], ttl="1h", renewable=True)
    sink = tmp / "vault-token"
    sink.write_text(VAULT_TOKEN + "\n")
    keys = {"backend": "vault", "vault": {"url": bao.url, "key_name": bao.key_name, "token_file": str(sink)}}
    return keys, {}


@pytest.mark.parametrize("backend", ["aws-kms", "vault"])
async def test_no_piece_of_any_credential_leaves_the_sidecar(
    backend: str,
    tmp_path: Path,
    hostile: Hostile,
    collector: Collector,
    redis_url: str,
    request: pytest.FixtureRequest,
) -> None:
    keys, _ = kms_keys(request) if backend == "aws-kms" else vault_keys(request, tmp_path)
    raw = config_for(tmp_path, hostile, collector, redis_url, keys)
    path = tmp_path / "sidecar.yaml"
    path.write_text(yaml.safe_dump(raw))
    env = {**os.environ, **CANARIES, "AWS_ACCESS_KEY_ID": "AKIDCANARYACCESS"}
    env.pop("AWS_PROFILE", None)
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *SIDECAR, "serve", "--config", str(path), stdout=stdout, stderr=stderr, env=env
        )
    outcomes: list[Outcome] = []
    metrics = ""
    try:
        address = raw["settings"]["listen"]["address"]
        async with grpc.aio.insecure_channel(address) as channel:
            try:
                await asyncio.wait_for(channel.channel_ready(), 60)
            except TimeoutError:
                raise AssertionError(f"not serving: {err.read_text()[-3000:]}") from None
            stub = Stubs(channel)
            good = [("authorization", f"Bearer {CANARIES['APP_TOKEN']}")]
            refs = {}
            for provider, secret in USER_KEYS.items():
                reply = await stub.RegisterKey(
                    keys_pb2.RegisterKeyRequest(
                        tenant_id="acme", user_id="alice", provider=provider, api_key=secret
                    ),
                    metadata=good,
                )
                refs[provider] = reply.key_ref
                outcomes.append(Outcome(f"register {provider}", "OK", f"{reply}"))
            bad = [("authorization", f"Bearer {CANARIES['WRONG_TOKEN']}")]
            outcomes.append(
                await one_call(stub, generate_request(messages=[user("hi")]), bad, "wrong token", False)
            )
            outcomes += await drive(stub, good, refs)
            await asyncio.sleep(2.5)  # probes, span export, ledger flush
            metrics = await asyncio.to_thread(scrape, raw["settings"]["telemetry"]["metrics"]["address"])
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    codes = {o.code for o in outcomes}
    assert "OK" in codes and "UNAVAILABLE" in codes, codes  # the paths were driven
    crashed = [
        o
        for o in outcomes
        if o.code == "UNKNOWN" or (o.code == "INTERNAL" and "PROVIDER_AUTH_FAILED" not in o.text)
    ]
    assert not crashed, crashed
    assert [o.what for o in outcomes if o.code == "UNAUTHENTICATED"] == ["wrong token"]
    # every credential was really used
    sent = "\n".join(f"{s.path_qs} {s.headers}" for s in hostile.seen)
    for name in (
        "OPENAI_KEY",
        "AZURE_KEY",
        "ANTHROPIC_KEY",
        "GEMINI_KEY",
        "BEDROCK_KEY",
        "AWS_SESSION_TOKEN",
    ):
        assert CANARIES[name] in sent, name
    for secret in USER_KEYS.values():
        assert secret in sent
    assert not [s.path_qs for s in hostile.seen if betrayed(s.path_qs)]  # never in a URL
    logs = out.read_bytes() + err.read_bytes()
    assert b'"DEBUG"' in logs
    found = {
        "logs": betrayed(logs),
        "metrics": betrayed(metrics),
        "ledger": betrayed(sqlite_dump(tmp_path / "usage.db")),
        "key store": betrayed((tmp_path / "keys.db").read_bytes()),
        "spans": betrayed(b"".join(collector.bodies)),
        "redis": betrayed(redis_contents(redis_url)),
        "errors": sorted({f"{o.what}: {n}" for o in outcomes for n in betrayed(o.text)}),
    }
    assert collector.bodies, "no span was exported"
    assert not any(found.values()), found
