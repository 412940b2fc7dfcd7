"""The sidecar's probe of its standing with Vault (keys/standing.py) survives the transit key's
rotation and the retirement of the version its probe data key was made under: a caller's envelope
under the retired version is still the caller's (KEY_RECORD_CORRUPT), not a page for on-call.

The real server (on FakeClock: the probe's trust window passes without sleeping) and the OpenBao dev
server, with a transit key of this test's own (it is rotated and its v1 retired)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sidecar.core.clock import FakeClock
from tests.integration.test_corrupt_keys import envelope_of
from tests.integration.test_user_keys import (
    ALICE_OPENAI,
    BOB_OPENAI,
    CODE,
    ENV,
    Serve,
    config,
    fails,
    register,
    req,
)
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration


async def test_an_envelope_under_a_retired_version_is_the_callers_after_the_probe_was_made_before(
    serve: Serve, upstream: Upstream, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    bao: Any = request.getfixturevalue("openbao")
    key_name = bao.create_key()
    vault = {"url": bao.url, "key_name": key_name, "token": {"env": "VAULT_TOKEN"}}
    keys = {"backend": "vault", "vault": vault, "store_path": str(tmp_path / "keys.db")}
    clock = FakeClock()
    s = await serve(config(upstream, keys), {**ENV, "VAULT_TOKEN": bao.token}, clock)
    db = Path(keys["store_path"])
    alices = envelope_of(db, await register(s, ALICE_OPENAI))
    bobs = envelope_of(db, await register(s, BOB_OPENAI, user_id="bob"))
    transit = bao.client().secrets.transit
    transit.rotate_key(key_name)
    transit.update_key_configuration(key_name, min_decryption_version=2)  # v1 retired
    # Vault refuses alice's v1 envelope; nothing opened yet, so the sidecar probes: its probe data key
    # is made now, under v2, and opens: Vault accepts the sidecar, the envelope is the caller's.
    first = await fails(s.stub.Generate(req("required", envelope=alices)))
    assert (first.code, first.reason) == (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT")
    transit.rotate_key(key_name)
    transit.update_key_configuration(key_name, min_decryption_version=3)  # v2 retired: the probe's too
    clock.advance(60)  # nothing opened lately: the sidecar has to probe again
    retired = await fails(s.stub.Generate(req("required", user_id="bob", envelope=bobs)))
    # Vault still accepts the sidecar (under v3): the application's envelope is at fault, no page
    assert (retired.code, retired.reason) == (CODE.FAILED_PRECONDITION, "KEY_RECORD_CORRUPT")
