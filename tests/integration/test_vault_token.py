"""A Vault token with a TTL, given to the sidecar as such (token auth), is renewed ahead of its
expiry: against the OpenBao dev server, with a renewable token of a few seconds' TTL, the sidecar
still wraps and unwraps data keys long after the token's first TTL has passed."""

from __future__ import annotations

import asyncio
import logging
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
TTL_SECONDS = 3


def short_lived_token(bao: OpenBao, **options: Any) -> str:
    """A renewable token of TTL_SECONDS allowed transit on the test key only (and, by the default
    policy, to look itself up and renew itself)."""
    client, name = bao.client(), f"sidecar-{bao.key_name}"
    rules = "\n".join(
        f'path "transit/{op}/{bao.key_name}" {{ capabilities = ["update"] }}'
        for op in ("datakey/plaintext", "decrypt")
    )
    client.sys.create_or_update_policy(name, rules)
    reply = client.auth.token.create(policies=[name], ttl=f"{TTL_SECONDS}s", renewable=True, **options)
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
        await asyncio.sleep(4 * TTL_SECONDS)  # the token's first TTL has long passed
        upstream.push(ok())
        assert text_of(await s.stub.Generate(req("required", ref=ref))) == HELLO  # unwrapped now
        await register(s, ALICE_OPENAI, user_id="bob")  # and a new data key wrapped
    left = openbao.client().auth.token.lookup(token)["data"]["ttl"]
    assert 0 < left <= TTL_SECONDS
    metrics = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    assert metrics['sidecar_key_token_renewals_total{outcome="renewed"}'] >= 4
    assert metrics.get('sidecar_key_token_renewals_total{outcome="failed"}', 0.0) == 0.0
    assert token not in caplog.text


async def test_a_token_past_its_max_ttl_is_reported_and_the_renewal_stops(
    serve: Serve, upstream: Upstream, openbao: OpenBao, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = short_lived_token(openbao, explicit_max_ttl=f"{2 * TTL_SECONDS}s")
    with caplog.at_level(logging.WARNING, logger="sidecar.keys"):
        s = await serve(config(upstream, vault_keys(openbao, tmp_path)), {**ENV, "VAULT_TOKEN": token})
        await asyncio.sleep(3 * TTL_SECONDS)
    assert "reached its max TTL" in caplog.text and token not in caplog.text
    reply = await s.stub.ListKeys(keys_pb2.ListKeysRequest(tenant_id="acme", user_id="alice"))
    assert not reply.keys  # the sidecar still serves what needs no key backend
