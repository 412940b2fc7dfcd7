"""What envelopes that do not open may cost: a caller sending damaged or forged inline envelopes
(each one different) cannot make the sidecar ask KMS or Vault once per request without bound, and
burn the account's request quota (shared by every tenant) or its bill.

The real server, with moto KMS or the OpenBao dev server behind a loopback proxy that counts the
backend's unwrap calls. A hostile tenant forges envelopes from its own real one; its failures are
bounded per tenant (`settings.keys.envelope_failures`), a damaged envelope sent again is refused
without a backend call, and an honest tenant's decrypts, and the hostile tenant's registered keys,
are not affected.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.keys.envelope import Envelope
from tests.integration.test_corrupt_keys import envelope_of
from tests.integration.test_key_backend_replies import MangleProxy
from tests.integration.test_metrics_keys import scrape
from tests.integration.test_user_keys import (
    ALICE_OPENAI,
    BOB_OPENAI,
    CODE,
    ENV,
    HELLO,
    Serve,
    config,
    fails,
    ok,
    register,
    req,
)
from tests.integration.test_user_keys import aws_credentials as aws_credentials  # a fixture
from tests.support.api import text_of
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
LIMIT = 5
REGISTRATIONS = 4
MALLORY = "sk-mallory-openai-0f1e2d3c4b5a69788796a5b4"


@pytest.fixture(params=["aws-kms", "vault"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[dict[str, Any], dict[str, str], MangleProxy, str]]:
    """The keys section, its environment, the counting proxy, and the backend's unwrap call's name."""
    environ = dict(ENV)
    if request.param == "aws-kms":
        request.getfixturevalue("aws_credentials")
        kms = request.getfixturevalue("kms_endpoint")
        proxy = await MangleProxy(kms.url).start()
        section = {"aws_kms": {"key_id": kms.key_arn, "region": kms.region, "endpoint_url": proxy.url}}
        unwrap = "Decrypt"
    else:
        bao = request.getfixturevalue("openbao")
        proxy = await MangleProxy(bao.url).start()
        environ["VAULT_TOKEN"] = bao.token
        section = {"vault": {"url": proxy.url, "key_name": bao.key_name, "token": {"env": "VAULT_TOKEN"}}}
        unwrap = f"/v1/transit/decrypt/{bao.key_name}"
    keys = {
        "backend": request.param,
        **section,
        "store_path": str(tmp_path / "keys.db"),
        "envelope_failures": {"max_per_tenant": LIMIT, "window_seconds": 60},
        "registrations": {"max_per_user": REGISTRATIONS, "max_per_tenant": 100, "window_seconds": 60},
    }
    yield keys, environ, proxy, unwrap
    await proxy.close()


def forged(text: str, n: int) -> str:
    """The n-th forgery of a real envelope: its wrapped data key (the backend refuses it) or its
    ciphertext (the backend unwraps the data key; the ciphertext fails authentication) changed."""
    env = Envelope.decode(text)
    if n % 2:
        blob = bytearray(env.wrapped.blob)
        blob[10 + n // 2] ^= 0x04  # stays printable: Vault's "vault:v1:..." still reaches Vault
        return dataclasses.replace(env, wrapped=dataclasses.replace(env.wrapped, blob=bytes(blob))).encode()
    ct = bytearray(env.ciphertext)
    ct[n // 2 % len(ct)] ^= 0x01
    return dataclasses.replace(env, ciphertext=bytes(ct)).encode()


async def test_forged_envelopes_cost_a_bounded_number_of_backend_calls_per_tenant(
    serve: Serve, upstream: Upstream, backend: tuple[dict[str, Any], dict[str, str], MangleProxy, str]
) -> None:
    keys, environ, proxy, unwrap = backend
    s = await serve(config(upstream, keys), environ)
    db = Path(keys["store_path"])
    mallory_ref = await register(s, MALLORY, tenant="evil", user_id="mallory")
    own = envelope_of(db, mallory_ref)
    alices = envelope_of(db, await register(s, ALICE_OPENAI))
    bobs_ref = await register(s, BOB_OPENAI, user_id="bob")

    def mallory(n: int) -> Any:
        return req("required", tenant="evil", user_id="mallory", envelope=forged(own, n))

    # A damaged envelope sent again: refused as damaged, without asking the backend again.
    first = await fails(s.stub.Generate(mallory(0)))
    assert (first.code, first.reason) == (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT")
    asked = proxy.calls[unwrap]
    for _ in range(3):
        again = await fails(s.stub.Generate(mallory(0)))
        assert (again.code, again.reason) == (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT")
    assert proxy.calls[unwrap] == asked == 1

    # Different forgeries, concurrently: at most LIMIT reach the backend in the window.
    errors = await asyncio.gather(*(fails(s.stub.Generate(mallory(n))) for n in range(1, 41)))
    # and one probe of the sidecar's own data key (keys/standing.py), when the backend refused one
    assert proxy.calls[unwrap] <= LIMIT + 1
    limited = [e for e in errors if e.reason == "KEY_FAILURE_LIMIT_REACHED"]
    assert len(limited) >= 40 - LIMIT and all(e.code is CODE.RESOURCE_EXHAUSTED for e in limited)
    assert all(e.retry is not None and 0 < e.retry.retry_delay.ToNanoseconds() <= 60e9 for e in limited)
    # moto's KMS refuses a forged key reference as AccessDenied (KEY_UNAVAILABLE); OpenBao, as damaged
    assert {e.reason for e in errors} <= {
        "KEY_RECORD_CORRUPT",
        "KEY_UNAVAILABLE",
        "KEY_FAILURE_LIMIT_REACHED",
    }
    spent = proxy.calls[unwrap]

    # Another tenant's envelope, and the hostile tenant's registered keys, still open.
    upstream.push(ok(), ok(), ok())
    assert text_of(await s.stub.Generate(req("required", envelope=alices))) == HELLO
    assert text_of(await s.stub.Generate(req("required", user_id="bob", ref=bobs_ref))) == HELLO
    evil_ref = req("required", tenant="evil", user_id="mallory", ref=mallory_ref)
    assert text_of(await s.stub.Generate(evil_ref)) == HELLO
    assert proxy.calls[unwrap] == spent + 3
    metrics = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    assert metrics['sidecar_key_envelope_refusals_total{reason="known_bad"}'] == 3
    assert metrics['sidecar_key_envelope_refusals_total{reason="tenant_limit"}'] == len(limited)


def respelled(text: str, n: int) -> str:
    """The same envelope spelled another way: JSON whitespace and member order, which readers accept."""
    encoded = text[len("oenv1.") :]
    body = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    members = list(body.items())
    members = members[n % len(members) :] + members[: n % len(members)]
    raw = json.dumps(dict(members), indent=n % 3 or None, separators=(", ", ": ")) + " " * n
    return "oenv1." + base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


async def test_one_envelope_spelled_many_ways_is_unwrapped_once(
    serve: Serve, upstream: Upstream, backend: tuple[dict[str, Any], dict[str, str], MangleProxy, str]
) -> None:
    """Each spelling was a new decrypted-key cache entry, so a caller with one valid envelope could
    make a backend call per request without a single failure (the failure bound never saw them)."""
    keys, environ, proxy, unwrap = backend
    s = await serve(config(upstream, keys), environ)
    own = envelope_of(Path(keys["store_path"]), await register(s, MALLORY, tenant="evil", user_id="mallory"))
    for n in range(8):
        upstream.push(ok())
        asked = req("required", tenant="evil", user_id="mallory", envelope=respelled(own, n) if n else own)
        assert text_of(await s.stub.Generate(asked)) == HELLO
    assert proxy.calls[unwrap] == 1


async def test_registering_the_same_key_in_a_loop_costs_a_bounded_number_of_backend_calls(
    serve: Serve, upstream: Upstream, backend: tuple[dict[str, Any], dict[str, str], MangleProxy, str]
) -> None:
    """Each RegisterKey is a data-key call (KMS GenerateDataKey, transit datakey), the same name
    replaced included: past settings.keys.registrations it is refused before the backend is asked."""
    keys, environ, proxy, _ = backend
    s = await serve(config(upstream, keys), environ)
    seal = "GenerateDataKey" if keys["backend"] == "aws-kms" else "/v1/transit/datakey/plaintext/"
    sealed = lambda: sum(n for path, n in proxy.calls.items() if path.startswith(seal))  # noqa: E731
    refs = [await register(s, MALLORY, tenant="evil", user_id="mallory") for _ in range(REGISTRATIONS)]
    assert sealed() == REGISTRATIONS and len(set(refs)) == REGISTRATIONS
    errors = await asyncio.gather(
        *(fails(register(s, MALLORY, tenant="evil", user_id="mallory")) for _ in range(20))
    )
    limited = (CODE.RESOURCE_EXHAUSTED, "KEY_REGISTRATION_LIMIT_REACHED")
    assert {(e.code, e.reason) for e in errors} == {limited}
    assert all(e.retry is not None and 0 < e.retry.retry_delay.ToNanoseconds() <= 60e9 for e in errors)
    assert sealed() == REGISTRATIONS  # no backend call for a refused registration
    await register(s, ALICE_OPENAI)  # another user, another tenant: not affected
    await register(s, MALLORY, tenant="evil", user_id="trudy")  # another user of the same tenant
    assert sealed() == REGISTRATIONS + 2
    upstream.push(ok())
    evil_ref = req("required", tenant="evil", user_id="mallory", ref=refs[-1])
    assert text_of(await s.stub.Generate(evil_ref)) == HELLO  # its kept key still works
    metrics = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    assert metrics['sidecar_key_registration_refusals_total{scope="user"}'] == 20
    assert metrics['sidecar_key_registration_refusals_total{scope="tenant"}'] == 0
