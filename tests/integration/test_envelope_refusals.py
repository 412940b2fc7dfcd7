"""A caller's made-up inline envelope is the caller's error, never the key backend's: the chart's
critical alert OrchestratorSidecarKeyBackendFailure pages on KEY_UNAVAILABLE, so an envelope naming a
key the sidecar is not configured with, or one whose wrapped key the backend refuses while it accepts
the sidecar (moto's KMS answers AccessDenied for a made-up key reference), is KEY_RECORD_CORRUPT; the
backend refusing the sidecar itself stays KEY_UNAVAILABLE.

The real server, with moto KMS or the OpenBao dev server behind a loopback proxy that counts the
backend's calls and, for the last test, refuses every unwrap as the backend refusing the sidecar does.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from sidecar.keys.envelope import Envelope
from tests.integration.test_corrupt_keys import envelope_of
from tests.integration.test_envelope_failures import MALLORY, forged
from tests.integration.test_envelope_failures import backend as backend  # a fixture
from tests.integration.test_key_backend_replies import MangleProxy
from tests.integration.test_metrics_keys import scrape
from tests.integration.test_user_keys import CODE, Serve, config, fails, register, req
from tests.integration.test_user_keys import aws_credentials as aws_credentials  # a fixture
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
Backend = tuple[dict[str, Any], dict[str, str], MangleProxy, str]
CORRUPT = (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT")


def elsewhere(text: str, backend: str) -> str:
    """The envelope with its wrapped key naming a key this sidecar is not configured with."""
    env = Envelope.decode(text)
    other = "arn:aws:kms:us-east-1:111122223333:key/0d1e2f3a-0000-4000-8000-000000000000"
    key_id = other if backend == "aws-kms" else "someone-elses-key"
    return dataclasses.replace(env, wrapped=dataclasses.replace(env.wrapped, key_id=key_id)).encode()


def wrapped_by(text: str, backend: str) -> str:
    env = Envelope.decode(text)
    return dataclasses.replace(env, wrapped=dataclasses.replace(env.wrapped, backend=backend)).encode()


async def test_a_callers_made_up_envelope_is_the_callers_error_not_the_backends(
    serve: Serve, upstream: Upstream, backend: Backend
) -> None:
    keys, environ, proxy, unwrap = backend
    s = await serve(config(upstream, keys), environ)
    own = envelope_of(Path(keys["store_path"]), await register(s, MALLORY, tenant="evil", user_id="mallory"))

    def mallory(envelope: str) -> Any:
        return req("required", tenant="evil", user_id="mallory", envelope=envelope)

    # A wrapped key the backend refuses, on a sidecar that has opened nothing yet (moto: AccessDenied).
    first = await fails(s.stub.Generate(mallory(forged(own, 1))))
    assert (first.code, first.reason) == CORRUPT
    # Keys and backends this sidecar does not use: refused without an unwrap call.
    asked = proxy.calls[unwrap]
    for envelope in (elsewhere(own, keys["backend"]), wrapped_by(own, "local")):
        err = await fails(s.stub.Generate(mallory(envelope)))
        assert (err.code, err.reason) == CORRUPT
    assert proxy.calls[unwrap] == asked
    for n in (3, 5):  # more made-up wrapped keys: the sidecar was accepted moments ago, no probe
        err = await fails(s.stub.Generate(mallory(forged(own, n))))
        assert (err.code, err.reason) == CORRUPT
    assert proxy.calls[unwrap] == asked + 2
    metrics = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    assert not any("KEY_UNAVAILABLE" in name and value for name, value in metrics.items())


def refuse_unwraps(proxy: MangleProxy, backend: str) -> None:
    """The backend refusing the sidecar: every unwrap answered as a denied permission."""
    if backend == "aws-kms":
        proxy.only = "TrentService.Decrypt"
        denied = (
            b'{"__type":"AccessDeniedException","message":"User is not authorized to perform kms:Decrypt"}'
        )
        proxy.mangle = lambda _: (400, denied, "application/x-amz-json-1.1")
    else:
        proxy.only = "/v1/transit/decrypt/"
        proxy.mangle = lambda _: (
            403,
            b'{"errors":["1 error occurred:\\n\\t* permission denied\\n\\n"]}',
            "application/json",
        )


async def test_the_backend_refusing_the_sidecar_stays_key_unavailable(
    serve: Serve, upstream: Upstream, backend: Backend
) -> None:
    keys, environ, proxy, _ = backend
    s = await serve(config(upstream, keys), environ)
    db = Path(keys["store_path"])
    alices = envelope_of(db, await register(s, "sk-alice-openai-a1b2c3d4e5f60718293a4b5c"))
    refuse_unwraps(proxy, keys["backend"])
    inline = await fails(s.stub.Generate(req("required", envelope=alices)))
    assert (inline.code, inline.reason) == (CODE.INTERNAL, "KEY_UNAVAILABLE")
    bobs = await register(s, "sk-bob-openai-a1b2c3d4e5f60718293a4b5c6d", user_id="bob")
    stored = await fails(s.stub.Generate(req("required", user_id="bob", ref=bobs)))
    assert (stored.code, stored.reason) == (CODE.INTERNAL, "KEY_UNAVAILABLE")
