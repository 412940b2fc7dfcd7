"""A Vault token with a TTL, given to the sidecar as such (token auth), is renewed ahead of its
expiry: against the OpenBao dev server, with a renewable token of a few seconds' TTL, the sidecar
still wraps and unwraps data keys long after the token's first TTL has passed. A token in a file
(Vault Agent's sink) is read again when the file changes or Vault refuses the token."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import keys_pb2
from tests.integration.test_metrics_keys import scrape
from tests.integration.test_user_keys import ALICE_OPENAI, ENV, HELLO, Serve, config, ok, register, req
from tests.support.api import text_of
from tests.support.openbao import OpenBao
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
TTL_SECONDS = 5  # renewed 1.7 s before it runs out: room for a loaded machine


def short_lived_token(bao: OpenBao, **options: Any) -> str:
    """A renewable token of TTL_SECONDS allowed transit on the test key only (and, by the default
    policy, to look itself up and renew itself)."""
    client, name = bao.client(), f"sidecar-{bao.key_name}"
    rules = "\n".join(
        f'path "transit/{op}/{bao.key_name}" {{ capabilities = ["update"] }}'
        for op in ("datakey/plaintext", "decrypt")
    )
    client.sys.create_or_update_policy(name, rules)
    options.setdefault("ttl", f"{TTL_SECONDS}s")
    reply = client.auth.token.create(policies=[name], renewable=True, **options)
    return str(reply["auth"]["client_token"])


def vault_keys(bao: OpenBao, tmp_path: Path) -> dict[str, Any]:
    vault = {"url": bao.url, "key_name": bao.key_name, "token": {"env": "VAULT_TOKEN"}}
    return {
        "backend": "vault",
        "vault": vault,
        "store_path": str(tmp_path / "keys.db"),
        "cache": {"max_uses": 1},
    }


async def test_a_renewable_token_is_renewed_and_user_keys_keep_working_past_its_ttl(
    serve: Serve, upstream: Upstream, openbao: OpenBao, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = short_lived_token(openbao)
    s = await serve(config(upstream, vault_keys(openbao, tmp_path)), {**ENV, "VAULT_TOKEN": token})
    with caplog.at_level(logging.DEBUG):
        ref = await register(s, ALICE_OPENAI)
        await asyncio.sleep(3 * TTL_SECONDS)  # the token's first TTL has long passed
        upstream.push(ok())
        assert text_of(await s.stub.Generate(req("required", ref=ref))) == HELLO  # unwrapped now
        await register(s, ALICE_OPENAI, user_id="bob")  # and a new data key wrapped
    left = openbao.client().auth.token.lookup(token)["data"]["ttl"]
    assert 0 < left <= TTL_SECONDS
    metrics = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    assert metrics['sidecar_key_token_renewals_total{outcome="renewed"}'] >= 3
    assert metrics.get('sidecar_key_token_renewals_total{outcome="failed"}', 0.0) == 0.0
    assert token not in caplog.text


async def test_a_token_past_its_max_ttl_is_reported_and_the_renewal_stops(
    serve: Serve, upstream: Upstream, openbao: OpenBao, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = short_lived_token(openbao, explicit_max_ttl=f"{2 * TTL_SECONDS}s")
    with caplog.at_level(logging.WARNING, logger="sidecar.keys"):
        s = await serve(config(upstream, vault_keys(openbao, tmp_path)), {**ENV, "VAULT_TOKEN": token})
        await asyncio.sleep(2.5 * TTL_SECONDS)  # renewed at 3.3 s, then capped at 6.7 s
    assert "reached its max TTL" in caplog.text and token not in caplog.text
    assert "could not renew" not in caplog.text and "has expired" not in caplog.text
    reply = await s.stub.ListKeys(keys_pb2.ListKeysRequest(tenant_id="acme", user_id="alice"))
    assert not reply.keys  # the sidecar still serves what needs no key backend


def token_file_keys(bao: OpenBao, tmp_path: Path, token_file: Path) -> dict[str, Any]:
    keys = vault_keys(bao, tmp_path)
    keys["vault"] = {"url": bao.url, "key_name": bao.key_name, "token_file": str(token_file)}
    return keys


async def test_a_token_file_is_read_again_when_it_changes_and_when_the_token_is_refused(
    serve: Serve, upstream: Upstream, openbao: OpenBao, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """As Vault Agent's auto-auth sink: the agent keeps its token alive and, logging in again, writes a
    new one to the file; the old one is revoked (or expires)."""
    sink, root = tmp_path / "vault-token", openbao.client()
    first = short_lived_token(openbao, ttl="1h")
    sink.write_text(first + "\n")
    s = await serve(config(upstream, token_file_keys(openbao, tmp_path, sink)), ENV)
    with caplog.at_level(logging.DEBUG):
        ref = await register(s, ALICE_OPENAI)
        second = short_lived_token(openbao, ttl="1h")
        sink.write_text(second + "\n")  # the file changed: read before the next call
        root.auth.token.revoke(first)
        upstream.push(ok(), ok())
        assert text_of(await s.stub.Generate(req("required", ref=ref))) == HELLO
        stamp = sink.stat()
        third = short_lived_token(openbao, ttl="1h")
        sink.write_text(third + "\n")
        os.utime(sink, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # unseen: same time and size
        root.auth.token.revoke(second)  # refused: then the file is read again
        await register(s, ALICE_OPENAI, user_id="bob")
        assert text_of(await s.stub.Generate(req("required", user_id="bob"))) == HELLO
    assert not any(t in caplog.text for t in (first, second, third))
    metrics = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    renewals = {k: v for k, v in metrics.items() if k.startswith("sidecar_key_token_renewals_total")}
    assert renewals and not any(renewals.values())  # at 0 from the start, never moved: the Agent's job
