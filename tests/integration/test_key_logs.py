"""No key material in any log line at DEBUG: KMS (moto server), Vault (OpenBao dev server) and the CLI.

Every line is captured: the sidecar's JSON handler, a raw handler on the root logger (so a library
record is caught even before formatting), and the stdout/stderr of the CLI processes. Searched for:
the canary provider key, the data key (raw, base64, URL-safe base64, hex) and the Vault token.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import yaml

from sidecar._gen.orchestrator.v1 import keys_pb2
from sidecar.core.clock import SystemClock
from sidecar.keys.backend import KeyBackend, KeyContext
from sidecar.keys.cache import KeyCache, KeyCachePolicy
from sidecar.keys.envelope import Envelope
from sidecar.keys.service import KeyService
from sidecar.keys.store import MEMORY, SqliteKeyStore
from sidecar.telemetry.logging import setup_logging
from tests.conftest import echo_policy, free_port, user
from tests.support.api import Stubs, generate_request, text_of
from tests.support.kms import CREDENTIALS, MotoKms
from tests.support.openbao import OpenBao, openbao  # noqa: F401
from tests.support.prometheus import quiet_telemetry
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
CANARY = "sk-CANARY-logs-9f8e7d6c5b4a3f2e1d0c"
CONTEXT = KeyContext("acme", "alice", "openai", "default")
SIDECAR = [sys.executable, "-m", "sidecar"]


def betrayals(secret: bytes) -> list[bytes]:
    """The forms a secret would take in a log line."""
    out = [secret, secret.hex().encode(), secret.hex().upper().encode()]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret)
        core = encoded[(4 * shift + 2) // 3 : 4 * ((shift + len(secret)) // 3)]
        out += [core, core.replace(b"+", b"-").replace(b"/", b"_")]
    return out


def assert_clean(text: str | bytes, secrets: list[bytes], where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in secrets:
        for form in betrayals(secret):
            assert form not in data, f"{where}: key material in the logs ({len(data)} bytes)"


class Raw(logging.Handler):
    """Every record that reaches the root logger, unformatted and unfiltered."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.args!r}")


@pytest.fixture
def debug_logs() -> Iterator[tuple[io.StringIO, Raw]]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out, raw = io.StringIO(), Raw()
    setup_logging("DEBUG", out)
    root.addHandler(raw)
    try:
        yield out, raw
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def backend_for(name: str, request: pytest.FixtureRequest) -> tuple[KeyBackend, list[bytes]]:
    if name == "aws-kms":
        from sidecar.keys.aws_kms import AwsKmsBackend

        kms: MotoKms = request.getfixturevalue("kms_endpoint")
        return AwsKmsBackend(kms.key_arn, region=kms.region, endpoint_url=kms.url), []
    from sidecar.keys.vault_transit import VaultTransitBackend

    bao: OpenBao = request.getfixturevalue("openbao")
    return VaultTransitBackend(bao.key_name, url=bao.url, token=bao.token), [bao.token.encode()]


@pytest.mark.usefixtures("aws_env")
@pytest.mark.parametrize("backend_name", ["aws-kms", "vault"])
async def test_backends_at_debug_log_no_key_material(
    backend_name: str, request: pytest.FixtureRequest, debug_logs: tuple[io.StringIO, Raw]
) -> None:
    backend, extra = backend_for(backend_name, request)
    clock = SystemClock()
    keys = KeyService(backend, SqliteKeyStore(MEMORY, clock), KeyCache(KeyCachePolicy(), clock), clock)
    try:
        data_key, wrapped = await backend.generate_data_key(CONTEXT)
        opened = await backend.decrypt_data_key(wrapped, CONTEXT)
        assert opened == data_key
        record = await keys.register(CONTEXT, CANARY.encode())
        envelope = Envelope.decode(await keys.encrypt(CONTEXT, CANARY.encode()))
        second_key = await backend.decrypt_data_key(envelope.wrapped, CONTEXT)
        assert record.ref
    finally:
        await keys.aclose()
    out, raw = debug_logs
    logging.getLogger("sidecar.test").debug("a line of ours, to show DEBUG is on")
    secrets = [bytes(data_key), bytes(second_key), CANARY.encode(), *extra]
    assert "a line of ours" in out.getvalue()
    assert_clean(out.getvalue(), secrets, "formatted")
    assert_clean("\n".join(raw.lines), secrets, "root records")


def kms_data_key(kms: MotoKms, envelope_text: str) -> bytes:
    envelope = Envelope.decode(envelope_text)
    reply = kms.client().decrypt(
        CiphertextBlob=envelope.wrapped.blob,
        EncryptionContext=envelope.context.as_map(),
        KeyId=envelope.wrapped.key_id,
    )
    return bytes(reply["Plaintext"])


def cli_env() -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PLATFORM_KEY": "sk-p-0",
    }


def test_cli_keys_encrypt_at_debug_logs_no_key_material(tmp_path: Path, kms_endpoint: MotoKms) -> None:
    path = tmp_path / "sidecar.yaml"
    keys = {
        "backend": "aws-kms",
        "aws_kms": {
            "key_id": kms_endpoint.key_arn,
            "region": kms_endpoint.region,
            "endpoint_url": kms_endpoint.url,
        },
        "store_path": str(tmp_path / "keys.db"),
    }
    path.write_text(
        yaml.safe_dump({"settings": {"log_level": "DEBUG", "keys": keys}, "policy": echo_policy()})
    )
    result = subprocess.run(
        [*SIDECAR, "keys", "encrypt", "--config", str(path), "--tenant", "acme", "--user", "alice",
         "--provider", "openai"],
        input=CANARY.encode(), capture_output=True, timeout=60, env=cli_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data_key = kms_data_key(kms_endpoint, result.stdout.decode().strip())
    assert_clean(result.stderr, [data_key, CANARY.encode()], "keys encrypt stderr")
    assert_clean(result.stdout.replace(result.stdout.strip(), b""), [data_key], "keys encrypt stdout")


@pytest.fixture
async def openai_upstream() -> AsyncIterator[Upstream]:
    up = await Upstream(Reply.json("openai/chat_completion.json")).start()
    yield up
    await up.close()


async def test_serve_at_debug_handling_a_user_key_logs_no_key_material(
    tmp_path: Path, kms_endpoint: MotoKms, openai_upstream: Upstream
) -> None:
    port = free_port()
    policy = {
        "default_route": "byok",
        "deployments": {
            "oai": {
                "provider": "openai",
                "model": "gpt-test",
                "base_url": f"{openai_upstream.url}/v1",
                "api_key": {"env": "PLATFORM_KEY"},
                "allow_user_keys": True,
            }
        },
        "routes": {"byok": {"deployments": ["oai"], "user_key": "required"}},
        "routing": {"probes": {"enabled": False}},
    }
    keys = {
        "backend": "aws-kms",
        "aws_kms": {
            "key_id": kms_endpoint.key_arn,
            "region": kms_endpoint.region,
            "endpoint_url": kms_endpoint.url,
        },
        "store_path": str(tmp_path / "keys.db"),
    }
    settings = {
        "log_level": "DEBUG",
        "listen": {"address": f"127.0.0.1:{port}"},
        "keys": keys,
        "telemetry": quiet_telemetry(tmp_path),
    }
    config = tmp_path / "sidecar.yaml"
    config.write_text(yaml.safe_dump({"settings": settings, "policy": policy}))
    proc = await asyncio.create_subprocess_exec(
        *SIDECAR, "serve", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(),
    )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), 30)
            stub = Stubs(channel)
            reply = await stub.RegisterKey(
                keys_pb2.RegisterKeyRequest(
                    tenant_id="acme", user_id="alice", provider="openai", api_key=CANARY
                )
            )
            answer = await stub.Generate(
                generate_request(
                    messages=[user("Hi")], tenant_id="acme", user_id="alice",
                    provider_key=keys_pb2.ProviderKey(key_ref=reply.key_ref),
                )
            )  # fmt: skip
            assert text_of(answer)
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr[-2000:]
    with sqlite3.connect(tmp_path / "keys.db") as db:
        (envelope_text,) = next(iter(db.execute("SELECT envelope FROM key_records")))
    data_key = kms_data_key(kms_endpoint, envelope_text)
    seen = openai_upstream.seen[-1].headers.get("Authorization", "")
    assert seen == f"Bearer {CANARY}"  # the key was really used
    assert_clean(stdout + stderr, [data_key, CANARY.encode()], "serve output")
