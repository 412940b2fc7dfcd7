"""Users' own keys for Bedrock (Bedrock API keys), Gemini and Azure, through the real key layer:
an inline envelope the application keeps, opened by the server, put in the provider's own header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import keys_pb2
from sidecar.keys.backend import KeyContext
from sidecar.keys.service import KeyService
from tests.conftest import user
from tests.integration.test_cloud_providers import ENV, KINDS, aws_credentials  # noqa: F401
from tests.support.api import generate_request, text_of
from tests.support.keys import key_service, local_keys
from tests.support.upstream import Upstream

pytestmark = pytest.mark.integration
USERS_KEY = "users-own-provider-key-0123456789"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[KeyService]:
    async with key_service(Path(local_keys(tmp_path)["local"]["kek_file"])) as keys:
        yield keys


def config(kind: str, upstream: Upstream, tmp_path: Path) -> dict[str, Any]:
    d = {**KINDS[kind].deployment(upstream.url), "allow_user_keys": True}
    d.pop("api_key", None)  # no platform key at all: only the user's can work
    return {
        "settings": {"keys": local_keys(tmp_path)},
        "policy": {
            "default_route": "byok",
            "deployments": {"d": d},
            "routes": {"byok": {"deployments": ["d"], "user_key": "required", "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
        },
    }


@pytest.mark.parametrize(
    ("kind", "header", "value"),
    [
        ("bedrock", "Authorization", f"Bearer {USERS_KEY}"),
        ("gemini", "x-goog-api-key", USERS_KEY),
        ("azure", "api-key", USERS_KEY),
    ],
)
async def test_users_own_key_reaches_the_provider_in_its_header(
    serve: Any, upstream: Upstream, service: KeyService, tmp_path: Path, kind: str, header: str, value: str
) -> None:
    envelope = await service.encrypt(KeyContext("acme", "alice", kind, "default"), USERS_KEY.encode())
    upstream.push(KINDS[kind].unary())
    s = await serve(config(kind, upstream, tmp_path), ENV)
    request = generate_request(
        messages=[user("Hi")],
        tenant_id="acme",
        user_id="alice",
        provider_key=keys_pb2.ProviderKey(envelope=envelope),
    )
    reply = await s.stub.Generate(request)
    assert text_of(reply) == "Hello! How can I help you today?"
    seen = upstream.seen[0].headers
    assert seen[header] == value
    assert "X-Amz-Date" not in seen  # a Bedrock API key replaces SigV4; nothing else carries a credential
