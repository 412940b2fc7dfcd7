"""The one Redis client factory against real redis-servers: TLS with a client certificate, ACL users,
timeouts bounded by the call's deadline, and every failure classified (READONLY, OOM, auth,
unreachable, timeout; NOSCRIPT recovered)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.config.redis import RedisConnectionConfig
from sidecar.config.secrets import SecretRef
from sidecar.core.clock import Deadline
from sidecar.quota.redis_store import RedisQuotaStore
from sidecar.quota.store import Charge, QuotaStoreError
from sidecar.stores.errors import (
    StoreAuthError,
    StoreFullError,
    StoreReadOnlyError,
    StoreTimeoutError,
    StoreUnavailableError,
)
from sidecar.stores.redis import RedisEndpoint, RedisOps
from tests.conftest import FakeClock, echo_policy, free_port, user
from tests.support.api import generate_request, text_of
from tests.support.redis import start_redis
from tests.support.tls import Pki, make_pki

pytestmark = pytest.mark.integration
PASSWORD = "acl-pw-7c1e9b"


def ops(url: str, *, timeout: float = 1.0, observed: list[str] | None = None, **kw: Any) -> RedisOps:
    endpoint = RedisEndpoint(url, timeout=timeout, connect_timeout=timeout, **kw)
    return RedisOps(endpoint, observer=observed.append if observed is not None else None)


@pytest.fixture
async def closing() -> AsyncIterator[list[RedisOps]]:
    made: list[RedisOps] = []
    yield made
    for o in made:
        await o.aclose()


async def test_readonly_replica_is_classified(closing: list[RedisOps]) -> None:
    with start_redis() as primary, start_redis() as replica:
        observed: list[str] = []
        r = ops(f"redis://127.0.0.1:{replica}/0", observed=observed)
        closing.append(r)
        await r.run("replicaof", lambda: r.client.execute_command("REPLICAOF", "127.0.0.1", str(primary)))
        with pytest.raises(StoreReadOnlyError) as info:
            await r.run("set", lambda: r.client.set("k", "v"))
        assert info.value.kind == "readonly" and info.value.transient and observed == ["set"]


async def test_out_of_memory_is_classified(closing: list[RedisOps]) -> None:
    with start_redis("--maxmemory", "1", "--maxmemory-policy", "noeviction") as port:
        r = ops(f"redis://127.0.0.1:{port}/0")
        closing.append(r)
        with pytest.raises(StoreFullError):
            await r.run("set", lambda: r.client.set("k", "v" * 1000))
        store = RedisQuotaStore(r, FakeClock(), prefix="q", server_time=False)
        with pytest.raises(QuotaStoreError) as info:  # a Lua script that writes: OOM too
            await store.reserve("t", "rid", [Charge("k", (), 10, 1)], ttl_ms=1000, levels=())
        assert info.value.kind == "full"


async def test_unreachable_and_timeouts_are_classified(closing: list[RedisOps]) -> None:
    down = ops(f"redis://127.0.0.1:{free_port()}/0")
    closing.append(down)
    with pytest.raises(StoreUnavailableError):
        await down.run("get", lambda: down.client.get("k"))
    with start_redis("--enable-debug-command", "yes") as port:
        url = f"redis://127.0.0.1:{port}/0"
        slow, busy = ops(url, timeout=5.0), ops(url, timeout=5.0)
        closing += [slow, busy]
        await slow.run("ping", slow.client.ping)
        sleeper = asyncio.create_task(busy.client.execute_command("DEBUG", "SLEEP", "0.6"))
        await asyncio.sleep(0.05)  # the DEBUG SLEEP is running
        clock = FakeClock()
        started = asyncio.get_running_loop().time()
        with pytest.raises(StoreTimeoutError):  # the call's deadline (0.1 s) bounds the 5 s timeout
            await slow.run("get", lambda: slow.client.get("k"), deadline=Deadline.after(0.1, clock))
        assert asyncio.get_running_loop().time() - started < 0.5
        await sleeper


async def test_more_operations_than_connections_wait_for_one_instead_of_failing(
    closing: list[RedisOps],
) -> None:
    """A pool of 2 connections and 6 operations at once while Redis is slow for 0.3 s (within their
    2 s timeout): the extra operations wait for a connection; none is an "unavailable" store (for a
    quota that would be a fail-open admission, uncounted, or a fail-closed refusal)."""
    with start_redis() as port:
        observed: list[str] = []
        url = f"redis://127.0.0.1:{port}/0"
        pool, pauser = ops(url, timeout=2.0, max_connections=2, observed=observed), ops(url)
        closing += [pool, pauser]
        await pool.run("ping", pool.client.ping)
        await pauser.run("pause", lambda: pauser.client.execute_command("CLIENT", "PAUSE", "300", "ALL"))
        got = await asyncio.gather(*(pool.run("get", lambda: pool.client.get("k")) for _ in range(6)))
        assert got == [None] * 6 and observed == []


async def test_a_flushed_script_cache_is_recovered(closing: list[RedisOps]) -> None:
    with start_redis() as port:
        r = ops(f"redis://127.0.0.1:{port}/0")
        closing.append(r)
        store = RedisQuotaStore(r, FakeClock(), prefix="q", server_time=False)
        charge = [Charge("k", (), 10, 1)]
        assert (await store.reserve("t", "a", charge, ttl_ms=60_000, levels=())).admitted
        await r.client.script_flush()  # NOSCRIPT on the next EVALSHA: the client loads it again
        assert (await store.reserve("t", "b", charge, ttl_ms=60_000, levels=())).buckets[0].reserved == 2


ACL_USER = ["--user", "default", "off", "--user", "alice", "on", f">{PASSWORD}", "~*", "&*", "+@all"]


async def test_acl_user_and_password_from_a_secret_reference(closing: list[RedisOps]) -> None:
    with start_redis(*ACL_USER) as port:
        options = RedisConnectionConfig(username="alice", password=SecretRef(env="REDIS_PASSWORD"))
        secrets = {"REDIS_PASSWORD": SecretStr(PASSWORD)}

        def secret(ref: SecretRef | None) -> SecretStr | None:
            return None if ref is None else secrets[ref.env]

        good = RedisOps(RedisEndpoint.of(f"redis://127.0.0.1:{port}/0", options, secret, default_timeout=1.0))
        closing.append(good)
        assert await good.run("set", lambda: good.client.set("k", "v"))
        assert PASSWORD not in repr(good.endpoint)
        secrets["REDIS_PASSWORD"] = SecretStr("wrong")
        bad = RedisOps(RedisEndpoint.of(f"redis://127.0.0.1:{port}/0", options, secret, default_timeout=1.0))
        closing.append(bad)
        with pytest.raises(StoreAuthError):
            await bad.run("get", lambda: bad.client.get("k"))
        anonymous = ops(f"redis://127.0.0.1:{port}/0")
        closing.append(anonymous)
        with pytest.raises(StoreAuthError):
            await anonymous.run("get", lambda: anonymous.client.get("k"))


def tls_args(pki: Pki) -> list[str]:
    return [
        "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
        "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes",
    ]  # fmt: skip


async def test_tls_with_a_client_certificate(tmp_path: Path, closing: list[RedisOps]) -> None:
    pki = make_pki(tmp_path)
    with start_redis(*tls_args(pki), tls=True) as port:
        url = f"rediss://127.0.0.1:{port}/0"
        good = ops(url, ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
        closing.append(good)
        assert await good.run("ping", good.client.ping)
        no_client_cert = ops(url, ca_file=pki.ca)
        closing.append(no_client_cert)
        with pytest.raises(StoreUnavailableError):
            await no_client_cert.run("ping", no_client_cert.client.ping)
        unknown_ca = ops(url, cert_file=pki.client_cert, key_file=pki.client_key)  # system CAs only
        closing.append(unknown_ca)
        with pytest.raises(StoreUnavailableError):
            await unknown_ca.run("ping", unknown_ca.client.ping)


async def test_the_response_cache_over_tls_with_an_acl_user(
    serve: Callable[..., Any], tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    with start_redis(*tls_args(pki), *ACL_USER, tls=True) as port:
        redis = {
            "username": "alice",
            "password": {"env": "REDIS_PASSWORD"},
            "tls": {
                "ca_file": str(pki.ca),
                "cert_file": str(pki.client_cert),
                "key_file": str(pki.client_key),
            },
        }
        cache = {
            "enabled": True,
            "backend": "redis",
            "redis_url": f"rediss://localhost:{port}/0",
            "redis": redis,
        }
        s = await serve({"settings": {"cache": cache}, "policy": echo_policy()}, {"REDIS_PASSWORD": PASSWORD})
        request = generate_request(
            messages=[user("cache me over TLS")], config=gen.GenerationConfig(temperature=0.0)
        )
        first = await s.stub.Generate(request)
        second = await s.stub.Generate(request)
        assert not first.summary.cache_hit and second.summary.cache_hit and text_of(second) == text_of(first)


async def test_idempotency_over_tls_with_an_acl_user(serve: Callable[..., Any], tmp_path: Path) -> None:
    """The idempotency store takes the same `redis:` block as every other store: it had only a
    URL, so a Redis that wants a client certificate, or a password kept out of the configuration,
    could not hold idempotency keys."""
    pki = make_pki(tmp_path)
    with start_redis(*tls_args(pki), *ACL_USER, tls=True) as port:
        redis = {
            "username": "alice",
            "password": {"env": "REDIS_PASSWORD"},
            "tls": {
                "ca_file": str(pki.ca),
                "cert_file": str(pki.client_cert),
                "key_file": str(pki.client_key),
            },
        }
        idempotency = {"backend": "redis", "redis_url": f"rediss://localhost:{port}/0", "redis": redis}
        settings = {"idempotency": idempotency}
        s = await serve({"settings": settings, "policy": echo_policy()}, {"REDIS_PASSWORD": PASSWORD})
        request = generate_request(messages=[user("once")], tenant_id="acme", request_id="order-1")
        first = await s.stub.Generate(request)
        again = await s.stub.Generate(request)
        assert not first.summary.replayed and again.summary.replayed and text_of(again) == text_of(first)
