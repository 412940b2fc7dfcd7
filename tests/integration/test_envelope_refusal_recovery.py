"""A valid inline envelope the key backend refused while it was refusing the sidecar (the operator's
doing: a disabled KMS key, a revoked permission) opens again once the backend accepts the sidecar
again: it is never remembered as damaged, also when an envelope opened moments before the refusal
(which vouches for the backend, keys/standing.py).

The real server, with moto KMS or the OpenBao dev server behind the counting loopback proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_corrupt_keys import envelope_of
from tests.integration.test_envelope_failures import backend as backend  # a fixture
from tests.integration.test_envelope_refusals import Backend, refuse_unwraps
from tests.integration.test_user_keys import (
    ALICE_OPENAI,
    BOB_OPENAI,
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


async def test_a_valid_envelope_refused_during_a_backend_outage_opens_once_it_is_over(
    serve: Serve, upstream: Upstream, backend: Backend
) -> None:
    keys, environ, proxy, unwrap = backend
    s = await serve(config(upstream, keys), environ)
    db = Path(keys["store_path"])
    alices = envelope_of(db, await register(s, ALICE_OPENAI))
    bobs = envelope_of(db, await register(s, BOB_OPENAI, user_id="bob"))
    upstream.push(ok(), ok())
    assert text_of(await s.stub.Generate(req("required", envelope=alices))) == HELLO  # the backend is fine
    refuse_unwraps(proxy, keys["backend"])  # moments later the backend refuses the sidecar
    refused = await fails(s.stub.Generate(req("required", user_id="bob", envelope=bobs)))
    assert refused.reason != "KEY_FAILURE_LIMIT_REACHED"
    proxy.mangle = None  # the operator put it right
    asked = proxy.calls[unwrap]
    assert text_of(await s.stub.Generate(req("required", user_id="bob", envelope=bobs))) == HELLO
    assert proxy.calls[unwrap] == asked + 1
