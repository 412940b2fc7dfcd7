"""The Bedrock, Gemini and Azure adapters called directly against loopback upstreams: probes,
credentials (users' own keys, Bedrock API keys, service-account and Entra ID tokens)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sidecar.config.schema import DeploymentConfig, HttpSettings
from sidecar.core.clock import Deadline, SystemClock
from sidecar.core.errors import (
    ProviderAuthError,
    ProviderMalformedError,
    ProviderRejectedError,
    ProviderUnavailableError,
)
from sidecar.core.types import Chunk, GenerationParams, Message, Role
from sidecar.keys.cache import SecretKey
from sidecar.providers._http import HttpClient
from sidecar.providers.azure import AzureOpenAIProvider
from sidecar.providers.base import ProviderRequest
from sidecar.providers.bedrock import BedrockProvider
from sidecar.providers.gemini import GeminiProvider
from sidecar.providers.tokens import GoogleServiceAccountTokens
from tests.integration.test_cloud_providers import aws_credentials  # noqa: F401  (autouse fixture)
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
CLOCK = SystemClock()


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient(HttpSettings(), CLOCK)
    yield client
    await client.aclose()


def request(api_key: str | None = None) -> ProviderRequest:
    key = SecretKey(bytearray(api_key.encode())) if api_key else None
    return ProviderRequest((Message(Role.USER, "Hi"),), GenerationParams(), stream=False, api_key=key)


async def generate(provider: Any, req: ProviderRequest) -> list[Chunk]:
    return [c async for c in provider.generate(req, deadline=Deadline.after(5, CLOCK))]


def deployment(kind: str, url: str, **extra: Any) -> DeploymentConfig:
    base = {"gemini": f"{url}/v1beta"}.get(kind, url)
    return DeploymentConfig.model_validate({"provider": kind, "model": "m:1", "base_url": base, **extra})


# --- probes: zero-cost reads with the generation credentials ---------------------------------------------


async def test_probes_read_without_generating(http: HttpClient, upstream: Upstream) -> None:
    upstream.push(
        Reply.json("bedrock/async_invokes.json"),
        Reply.json("gemini/model.json"),
        Reply.json("azure/models.json"),
    )
    await BedrockProvider(deployment("bedrock", upstream.url), http=http, api_key=None).probe(
        deadline=Deadline.after(5, CLOCK)
    )
    gem = GeminiProvider(deployment("gemini", upstream.url), http=http, api_key=_secret("AIza-probe"))
    await gem.probe(deadline=Deadline.after(5, CLOCK))
    az = AzureOpenAIProvider(deployment("azure", upstream.url), http=http, api_key=_secret("az-probe"))
    await az.probe(deadline=Deadline.after(5, CLOCK))
    bedrock_probe, gemini_probe, azure_probe = upstream.seen
    assert (bedrock_probe.method, bedrock_probe.raw_path) == ("GET", "/async-invoke?maxResults=1")
    assert bedrock_probe.headers["Authorization"].startswith("AWS4-HMAC-SHA256 ")
    assert (gemini_probe.method, gemini_probe.raw_path) == ("GET", "/v1beta/models/m:1")
    assert gemini_probe.headers["x-goog-api-key"] == "AIza-probe"
    assert (azure_probe.method, azure_probe.raw_path) == ("GET", "/openai/models?api-version=2024-10-21")
    assert azure_probe.headers["api-key"] == "az-probe"


@pytest.mark.parametrize("kind", ["bedrock", "gemini"])
async def test_probe_answer_of_the_wrong_shape_is_malformed(
    http: HttpClient, upstream: Upstream, kind: str
) -> None:
    upstream.push(Reply(body=b'{"asyncInvokeSummaries": 3, "unexpected": true}'))
    provider: Any = (BedrockProvider if kind == "bedrock" else GeminiProvider)(
        deployment(kind, upstream.url), http=http, api_key=_secret("k")
    )
    with pytest.raises(ProviderMalformedError):
        await provider.probe(deadline=Deadline.after(5, CLOCK))


@pytest.mark.parametrize(
    ("error_type", "fixture", "healthy"),
    [
        ("AccessDeniedException", "error_access_denied", True),  # authenticated, just not allowed to list
        ("UnrecognizedClientException", "error_unrecognized_client", False),
        ("InvalidSignatureException", "error_unrecognized_client", False),
    ],
)
async def test_bedrock_probe_tells_a_denied_listing_from_bad_credentials(
    http: HttpClient, upstream: Upstream, error_type: str, fixture: str, healthy: bool
) -> None:
    kind = {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.coral.service/"}
    upstream.push(Reply.json(f"bedrock/{fixture}.json", 403, headers=kind))
    provider = BedrockProvider(deployment("bedrock", upstream.url), http=http, api_key=None)
    if healthy:
        await provider.probe(deadline=Deadline.after(5, CLOCK))
    else:
        with pytest.raises(ProviderAuthError):
            await provider.probe(deadline=Deadline.after(5, CLOCK))


# --- keys: the platform's, or the caller's own ----------------------------------------------------------


async def test_users_own_keys_replace_the_platform_credential(http: HttpClient, upstream: Upstream) -> None:
    upstream.push(
        Reply.json("bedrock/converse.json"), Reply.json("gemini/generate_content.json"),
        Reply.json("azure/chat_completion.json"),
    )  # fmt: skip
    bedrock = BedrockProvider(deployment("bedrock", upstream.url), http=http, api_key=None)
    gemini = GeminiProvider(deployment("gemini", upstream.url), http=http, api_key=_secret("AIza-platform"))
    azure = AzureOpenAIProvider(deployment("azure", upstream.url), http=http, api_key=_secret("az-platform"))
    for provider in (bedrock, gemini, azure):
        await generate(provider, request(api_key="users-own-key-0123456789"))
    b, g, a = upstream.seen
    assert b.headers["Authorization"] == "Bearer users-own-key-0123456789" and "X-Amz-Date" not in b.headers
    assert g.headers["x-goog-api-key"] == "users-own-key-0123456789"
    assert a.headers["api-key"] == "users-own-key-0123456789"


async def test_bedrock_api_key_is_a_bearer_token_instead_of_sigv4(
    http: HttpClient, upstream: Upstream
) -> None:
    upstream.push(Reply.json("bedrock/converse.json"))
    provider = BedrockProvider(deployment("bedrock", upstream.url), http=http, api_key=_secret("ABSK-key"))
    assert "ABSK" not in repr(provider)
    await generate(provider, request())
    assert upstream.seen[0].headers["Authorization"] == "Bearer ABSK-key"


async def test_bedrock_without_credentials_is_an_auth_failure(
    http: HttpClient, upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    provider = BedrockProvider(deployment("bedrock", upstream.url), http=http, api_key=None)
    with pytest.raises(ProviderAuthError, match="no AWS credentials"):
        await generate(provider, request())
    assert upstream.seen == []


async def test_gemini_refusing_an_api_key_with_400_is_an_auth_failure(
    http: HttpClient, upstream: Upstream
) -> None:
    upstream.push(Reply.json("gemini/error_400_key.json", 400), Reply.json("gemini/error_400.json", 400))
    provider = GeminiProvider(deployment("gemini", upstream.url), http=http, api_key=_secret("AIza-bad"))
    with pytest.raises(ProviderAuthError):
        await generate(provider, request())
    with pytest.raises(ProviderRejectedError):  # any other 400 is the request's fault
        await generate(provider, request())


# --- Gemini with a service account: OAuth2 tokens minted by google-auth -----------------------------------


def service_account(tmp_path: Path, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account", "project_id": "test-project", "private_key_id": "k1", "private_key": pem,
        "client_email": "sidecar@test-project.iam.gserviceaccount.com", "client_id": "1234567890",
        "token_uri": token_uri,
    }  # fmt: skip
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info))
    return path


async def test_gemini_service_account_mints_and_reuses_a_token(
    http: HttpClient, upstream: Upstream, tmp_path: Path
) -> None:
    token = Reply(body=b'{"access_token":"ya29.test-token","expires_in":3599,"token_type":"Bearer"}')
    upstream.push(
        token, Reply.json("gemini/generate_content.json"), Reply.json("gemini/generate_content.json")
    )
    path = service_account(tmp_path, f"{upstream.url}/token")
    d = deployment("gemini", upstream.url, gemini={"service_account_file": str(path)})
    tokens = GoogleServiceAccountTokens(path, d.gemini.scopes if d.gemini else [])
    provider = GeminiProvider(d, http=http, api_key=None, token_source=tokens)
    for _ in range(2):
        chunks = await generate(provider, request())
        assert chunks[-1].text == "Hello! How can I help you today?"
    minted, first, second = upstream.seen
    assert (
        minted.path == "/token" and b"grant_type=urn" in minted.raw_body and b"assertion=" in minted.raw_body
    )
    assert first.headers["Authorization"] == second.headers["Authorization"] == "Bearer ya29.test-token"
    assert "x-goog-api-key" not in first.headers


async def test_gemini_service_account_refused_or_missing(
    http: HttpClient, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.push(Reply(status=400, body=b'{"error":"invalid_grant","error_description":"Invalid JWT"}'))
    path = service_account(tmp_path, f"{upstream.url}/token")
    refused = GeminiProvider(
        deployment("gemini", upstream.url), http=http, api_key=None,
        token_source=GoogleServiceAccountTokens(path, ["scope"]),
    )  # fmt: skip
    with pytest.raises(ProviderAuthError, match="refused"):
        await generate(refused, request())
    missing = GeminiProvider(
        deployment("gemini", upstream.url), http=http, api_key=None,
        token_source=GoogleServiceAccountTokens(tmp_path / "absent.json", ["scope"]),
    )  # fmt: skip
    with pytest.raises(ProviderAuthError, match="unreadable"):
        await generate(missing, request())


async def test_gemini_token_endpoint_down_is_unavailable(http: HttpClient, tmp_path: Path) -> None:
    from tests.conftest import free_port

    path = service_account(tmp_path, f"http://127.0.0.1:{free_port()}/token")
    provider = GeminiProvider(
        deployment("gemini", "http://127.0.0.1:9"), http=http, api_key=None,
        token_source=GoogleServiceAccountTokens(path, ["scope"]),
    )  # fmt: skip
    with pytest.raises(ProviderUnavailableError):
        await generate(provider, request())


def _secret(value: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(value)


async def test_azure_entra_id_token_goes_as_a_bearer(http: HttpClient, upstream: Upstream) -> None:
    from azure.core.credentials import AccessToken

    from sidecar.providers.tokens import AzureEntraTokens

    class Credential:  # azure-identity's async credential interface
        async def get_token(self, *scopes: str) -> AccessToken:
            assert scopes == ("https://cognitiveservices.azure.com/.default",)
            return AccessToken("entra-access-token", int(CLOCK.wall()) + 3600)

    upstream.push(Reply.json("azure/chat_completion.json"), Reply.json("azure/models.json"))
    d = deployment("azure", upstream.url, azure={"auth": "entra_id"})
    tokens = AzureEntraTokens(d.azure.entra_scope if d.azure else "", credential=Credential())
    provider = AzureOpenAIProvider(d, http=http, api_key=None, token_source=tokens)
    await generate(provider, request())
    await provider.probe(deadline=Deadline.after(5, CLOCK))
    for seen in upstream.seen:
        assert seen.headers["Authorization"] == "Bearer entra-access-token" and "api-key" not in seen.headers


# --- Entra ID through the real azure-identity library, against a TLS token endpoint on loopback -----------


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (azure-identity insists on https authorities) and its key."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(loopback, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_azure_entra_id_with_azure_identity(
    http: HttpClient, upstream: Upstream, tmp_path: Path
) -> None:
    import ssl

    from aiohttp import web
    from azure.identity.aio import ClientSecretCredential

    from sidecar.providers.tokens import AzureEntraTokens

    issued: list[str] = []

    async def token(request: web.Request) -> web.Response:
        issued.append(f"{request.path} {await request.text()}")
        return web.json_response(
            {"access_token": "entra-real-token", "expires_in": 3600, "token_type": "Bearer"}
        )

    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    authority = f"https://127.0.0.1:{runner.addresses[0][1]}"
    credential = ClientSecretCredential(
        "tenant-1", "client-1", "s3cret", authority=authority, connection_verify=str(cert)
    )
    tokens = AzureEntraTokens("https://cognitiveservices.azure.com/.default", credential=credential)
    try:
        upstream.push(Reply.json("azure/chat_completion.json"), Reply.json("azure/chat_completion.json"))
        d = deployment("azure", upstream.url, azure={"auth": "entra_id"})
        provider = AzureOpenAIProvider(d, http=http, api_key=None, token_source=tokens)
        await generate(provider, request())
        await generate(provider, request())
    finally:
        await tokens.aclose()
        await runner.cleanup()
    assert len(issued) == 1 and issued[0].startswith("/tenant-1/oauth2/v2.0/token ")
    assert "grant_type=client_credentials" in issued[0] and "cognitiveservices.azure.com" in issued[0]
    assert [s.headers["Authorization"] for s in upstream.seen] == ["Bearer entra-real-token"] * 2


async def test_bedrock_refreshes_expiring_credentials_from_the_chain(
    http: HttpClient, upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile whose credential_process hands out 5-minute credentials (as STS does for IRSA):
    botocore finds them about to expire before every call, so each call refreshes (on a thread)."""
    import sys

    counter = tmp_path / "issued"
    script = tmp_path / "issue.py"
    script.write_text(
        "import datetime, json, pathlib\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "exp = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': f'ASIAROTATED{n}', 'SecretAccessKey': 's',"
        " 'SessionToken': f'token-{n}', 'Expiration': exp.isoformat()}))\n"
    )
    config = tmp_path / "aws-config"
    config.write_text(f"[profile rotating]\ncredential_process = {sys.executable} {script}\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    upstream.push(Reply.json("bedrock/converse.json"), Reply.json("bedrock/converse.json"))
    d = deployment("bedrock", upstream.url, bedrock={"region": "us-east-1", "profile": "rotating"})
    provider = BedrockProvider(d, http=http, api_key=None)
    for _ in range(2):
        await generate(provider, request())
    issued = []
    for seen in upstream.seen:
        match = re.search(r"Credential=ASIAROTATED(\d+)/", seen.headers["Authorization"])
        assert match is not None
        issued.append(int(match.group(1)))
        assert seen.headers["X-Amz-Security-Token"] == f"token-{match.group(1)}"
    assert issued[1] > issued[0]  # refreshed between the calls
    assert int(counter.read_text()) == issued[1]  # and signed with the newest
