"""The two real key-encryption backends against real servers: moto's KMS and the OpenBao dev server.

Shared behaviour runs for both: roundtrip, context binding, garbage, rewrap, outage, off-loop calls.
What garbage becomes: a blob that parses as the backend's ciphertext but fails authentication is
indistinguishable from another owner's context (AES-GCM cannot tell), so it is KeyContextMismatchError;
one the backend rejects before decrypting (no "vault:" prefix, unknown key id) is KeyDecryptError.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.core.errors import KeyBackendUnavailableError, KeyContextMismatchError, KeyDecryptError
from sidecar.keys.aws_kms import AwsKmsBackend
from sidecar.keys.backend import KeyBackend, KeyContext, WrappedKey
from sidecar.keys.vault_transit import VaultTransitBackend
from tests.support.kms import free_port, start_moto, stop
from tests.support.openbao import start_openbao

pytestmark = pytest.mark.integration

ALICE = KeyContext("acme", "alice", "openai", "default")
OTHERS = {
    "user": KeyContext("acme", "bob", "openai", "default"),
    "tenant": KeyContext("globex", "alice", "openai", "default"),
    "provider": KeyContext("acme", "alice", "anthropic", "default"),
    "key-name": KeyContext("acme", "alice", "openai", "backup"),
}
SERVER_FIXTURE = {"aws-kms": "kms_endpoint", "vault": "openbao"}


class Backends:
    """Builds backends against the session's servers (started on first use) and closes them all."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._request = request
        self.made: list[KeyBackend] = []

    def server(self, kind: str) -> Any:
        return self._request.getfixturevalue(SERVER_FIXTURE[kind])

    def build(
        self, kind: str, *, server: Any = None, key: str | None = None, url: str = "", **kw: Any
    ) -> Any:
        """A backend on `server` (default: the session's) and its key, unless `key` or `url` say otherwise."""
        server = server or self.server(kind)
        backend: KeyBackend
        if kind == "aws-kms":
            backend = AwsKmsBackend(
                key or server.key_arn, region=server.region, endpoint_url=url or server.url, **kw
            )
        else:
            kw.setdefault("token", None if "client" in kw else server.token)
            backend = VaultTransitBackend(key or server.key_name, url=url or server.url, **kw)
        self.made.append(backend)
        return backend


@pytest.fixture
async def backends(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Backends]:
    # boto3's standard credential chain, as in production; the environment is the first link
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    made = Backends(request)
    yield made
    for backend in made.made:
        await backend.aclose()


@pytest.fixture(params=["aws-kms", "vault"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_generate_then_decrypt_roundtrips(backends: Backends, kind: str) -> None:
    backend = backends.build(kind)
    data_key, wrapped = await backend.generate_data_key(ALICE)
    assert isinstance(data_key, bytearray) and len(data_key) == 32
    assert wrapped.backend == kind and bytes(data_key) not in wrapped.blob
    assert await backend.decrypt_data_key(wrapped, ALICE) == data_key
    assert (await backend.generate_data_key(ALICE))[0] != data_key
    if kind == "vault":
        assert wrapped.key_id == backends.server(kind).key_name and wrapped.blob.startswith(b"vault:v1:")
    else:
        assert wrapped.key_id == backends.server(kind).key_arn


@pytest.mark.parametrize("owner", OTHERS.values(), ids=OTHERS.keys())
async def test_another_owners_context_is_refused(backends: Backends, kind: str, owner: KeyContext) -> None:
    backend = backends.build(kind)
    _, wrapped = await backend.generate_data_key(ALICE)
    with pytest.raises(KeyContextMismatchError, match="the key context does not match"):
        await backend.decrypt_data_key(wrapped, owner)
    with pytest.raises(KeyContextMismatchError):
        await backend.rewrap(wrapped, owner)


GARBAGE = {
    "random": os.urandom(96),
    "short": b"x",
    "forged-vault": b"vault:v1:" + base64.b64encode(os.urandom(60)),
    "not-ascii": b"\xff\xfe" * 20,
}


@pytest.mark.parametrize("blob", GARBAGE.values(), ids=GARBAGE.keys())
async def test_garbage_blob_is_refused(backends: Backends, kind: str, blob: bytes) -> None:
    backend = backends.build(kind)
    _, real = await backend.generate_data_key(ALICE)
    with pytest.raises((KeyContextMismatchError, KeyDecryptError)) as caught:
        await backend.decrypt_data_key(WrappedKey(kind, real.key_id, blob), ALICE)
    assert blob.hex() not in caught.value.message and repr(blob) not in caught.value.message
    if kind == "vault" and blob == GARBAGE["forged-vault"]:  # fails authentication, as a wrong context does
        assert isinstance(caught.value, KeyContextMismatchError)


async def test_a_key_wrapped_by_another_backend_is_refused(backends: Backends, kind: str) -> None:
    with pytest.raises(KeyDecryptError, match="wrapped by the 'local' backend"):
        await backends.build(kind).decrypt_data_key(WrappedKey("local", "kek-1", b"\0" * 60), ALICE)


async def test_vault_rewrap_after_rotation_and_min_decryption_version(backends: Backends) -> None:
    bao = backends.server("vault")
    key = bao.create_key()
    backend = backends.build("vault", key=key)
    data_key, v1 = await backend.generate_data_key(ALICE)
    bao.client().secrets.transit.rotate_key(key)
    v2 = await backend.rewrap(v1, ALICE)
    assert v1.blob.startswith(b"vault:v1:") and v2.blob.startswith(b"vault:v2:") and v2.key_id == key
    assert await backend.decrypt_data_key(v1, ALICE) == data_key == await backend.decrypt_data_key(v2, ALICE)
    bao.client().secrets.transit.update_key_configuration(key, min_decryption_version=2)
    with pytest.raises(KeyDecryptError, match="InvalidRequest"):  # "ciphertext ... version is disallowed"
        await backend.decrypt_data_key(v1, ALICE)
    assert await backend.decrypt_data_key(v2, ALICE) == data_key


async def test_vault_rewrap_onto_another_transit_key(backends: Backends) -> None:
    """The key rotation runbook moves records to a new transit key (key_name the new, the old under
    previous_key_names, rotate, drop the old). Transit's rewrap stays within one key: the records
    stayed under the old key, and once it was dropped none of them opened."""
    bao = backends.server("vault")
    old_key, new_key = bao.create_key(), bao.create_key()
    data_key, wrapped = await backends.build("vault", key=old_key).generate_data_key(ALICE)
    moving = backends.build("vault", key=new_key, previous_key_names=[old_key])
    moved = await moving.rewrap(wrapped, ALICE)
    assert moved.key_id == new_key and moved.blob.startswith(b"vault:v1:")
    after = backends.build("vault", key=new_key)  # the old key dropped from the configuration
    assert await after.decrypt_data_key(moved, ALICE) == data_key
    with pytest.raises(KeyContextMismatchError):  # still bound to its owner under the new key
        await after.decrypt_data_key(moved, OTHERS["user"])


async def test_kms_rewrap_after_rotation_and_onto_another_key(backends: Backends) -> None:
    moto = backends.server("aws-kms")
    key = moto.create_key()
    backend = backends.build("aws-kms", key=key)
    data_key, wrapped = await backend.generate_data_key(ALICE)
    moto.client().rotate_key_on_demand(KeyId=key)
    rewrapped = await backend.rewrap(wrapped, ALICE)
    assert rewrapped.key_id == key and rewrapped.blob != wrapped.blob
    assert await backend.decrypt_data_key(wrapped, ALICE) == data_key
    assert await backend.decrypt_data_key(rewrapped, ALICE) == data_key
    # ReEncrypt's destination is the backend's own key: this is how wrapped keys move to a new KMS key
    other = backends.build("aws-kms", key=moto.create_key(), previous_key_ids=[key])
    moved = await other.rewrap(wrapped, ALICE)
    assert moved.key_id != key and await other.decrypt_data_key(moved, ALICE) == data_key
    assert await other.decrypt_data_key(wrapped, ALICE) == data_key  # a previous key still unwraps


async def test_a_data_key_under_a_key_not_configured_is_refused_before_the_backend_is_asked(
    backends: Backends, kind: str
) -> None:
    """An envelope names its wrapping key; a crafted one must not steer the sidecar to another key."""
    server = backends.server(kind)
    other_key = server.create_key()
    theirs = backends.build(kind, key=other_key)
    _, wrapped = await theirs.generate_data_key(ALICE)
    ours = backends.build(kind)
    with pytest.raises(KeyDecryptError, match="not configured to use"):
        await ours.decrypt_data_key(wrapped, ALICE)
    with pytest.raises(KeyDecryptError, match="not configured to use"):
        await ours.rewrap(wrapped, ALICE)


async def test_a_previous_kms_key_that_no_longer_exists_is_left_out_not_fatal(
    backends: Backends, caplog: pytest.LogCaptureFixture
) -> None:
    """The allow-list was resolved whole: one entry of previous_key_ids that DescribeKey no longer
    finds (a deleted alias, a deleted key) made every decrypt fail with NotFoundException, the
    current key's too. It is left out (a warning); the current key must still resolve."""
    backend = backends.build("aws-kms", previous_key_ids=["alias/retired-llm-user-keys"])
    data_key, wrapped = await backend.generate_data_key(ALICE)
    with caplog.at_level("WARNING", logger="sidecar.keys"):
        assert await backend.decrypt_data_key(wrapped, ALICE) == data_key
    assert [r.getMessage() for r in caplog.records] == [
        "a previous KMS key is left out of the keys this sidecar unwraps under: AWS KMS does not know it"
    ]
    assert caplog.records[0].previous_key_id == "alias/retired-llm-user-keys"  # type: ignore[attr-defined]
    with pytest.raises(KeyDecryptError, match="NotFoundException"):  # the current key is not optional
        await backends.build("aws-kms", key="alias/does-not-exist").decrypt_data_key(wrapped, ALICE)


async def test_unknown_key_or_bad_credentials_are_decrypt_errors(backends: Backends) -> None:
    with pytest.raises(KeyDecryptError, match="NotFoundException"):
        await backends.build("aws-kms", key="alias/does-not-exist").generate_data_key(ALICE)
    with pytest.raises(KeyDecryptError, match="InvalidRequest"):  # "encryption key not found"
        await backends.build("vault", key="does-not-exist").generate_data_key(ALICE)
    wrong_token = backends.build("vault", token="not-a-token")
    with pytest.raises(KeyDecryptError, match="Forbidden"):
        await wrong_token.generate_data_key(ALICE)


async def test_closed_port_is_unavailable_with_retry_after(backends: Backends, kind: str) -> None:
    backend = backends.build(kind, url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(KeyBackendUnavailableError) as caught:
        await backend.generate_data_key(ALICE)
    assert caught.value.retry_after == 1.0 and caught.value.metadata["retryAfterSeconds"] == "1"


async def test_kms_server_stopped_midway_is_unavailable(backends: Backends) -> None:
    with start_moto() as moto:
        backend = backends.build("aws-kms", server=moto)
        _, wrapped = await backend.generate_data_key(ALICE)
        stop(moto.process)
        with pytest.raises(KeyBackendUnavailableError) as caught:
            await backend.decrypt_data_key(wrapped, ALICE)
        assert caught.value.retry_after == 1.0


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ThrottlingException", KeyBackendUnavailableError),
        ("KMSInternalException", KeyBackendUnavailableError),
        ("DependencyTimeoutException", KeyBackendUnavailableError),
        ("IncorrectKeyException", KeyContextMismatchError),
        ("DisabledException", KeyDecryptError),
        ("KMSInvalidStateException", KeyDecryptError),
    ],
)
async def test_kms_error_codes_moto_cannot_produce(backends: Backends, code: str, expected: type) -> None:
    from botocore.stub import Stubber

    client = backends.server("aws-kms").client()
    backend = backends.build("aws-kms", client=client)
    arn = backends.server("aws-kms").key_arn  # configured as a key ARN: no DescribeKey
    with Stubber(client) as stub:  # a stubbed response skips botocore's retries: one call, one answer
        stub.add_client_error("decrypt", service_error_code=code, http_status_code=400)
        with pytest.raises(expected) as caught:
            await backend.decrypt_data_key(WrappedKey("aws-kms", arn, b"blob"), ALICE)
    if expected is KeyBackendUnavailableError:
        assert caught.value.retry_after == 1.0 and caught.value.metadata["backendError"] == code


async def test_vault_rate_limited_sealed_then_stopped_is_unavailable(backends: Backends) -> None:
    with start_openbao() as bao:
        backend = backends.build("vault", server=bao)
        _, wrapped = await backend.generate_data_key(ALICE)
        admin = bao.client()
        admin.write_data("sys/quotas/rate-limit/slow", data={"rate": 1, "interval": "1m", "path": "transit/"})
        await backend.decrypt_data_key(wrapped, ALICE)  # the one call the quota allows

        async def unavailable() -> KeyBackendUnavailableError:
            with pytest.raises(KeyBackendUnavailableError) as caught:
                await backend.decrypt_data_key(wrapped, ALICE)
            return caught.value

        limited = await unavailable()
        admin.sys.seal()
        sealed = await unavailable()
        stop(bao.process)
        outcomes = [limited, sealed, await unavailable()]
        assert [e.metadata.get("backendError") for e in outcomes] == ["RateLimitExceeded", "VaultDown", None]
        assert all(e.retry_after == 1.0 for e in outcomes)


async def test_vault_namespace(backends: Backends) -> None:
    bao = backends.server("vault")
    namespace = f"team-{secrets.token_hex(3)}"
    bao.client().sys.create_namespace(namespace)
    bao.client(namespace).sys.enable_secrets_engine("transit")
    key = bao.create_key(namespace=namespace)
    scoped = backends.build("vault", key=key, namespace=namespace)
    data_key, wrapped = await scoped.generate_data_key(ALICE)
    assert await scoped.decrypt_data_key(wrapped, ALICE) == data_key
    with pytest.raises(KeyDecryptError):  # the root namespace has no such key
        await backends.build("vault", key=key).decrypt_data_key(wrapped, ALICE)


class KubernetesLogin:
    """Stands in for Vault's Kubernetes auth method (which needs a cluster to review the JWT)."""

    def __init__(self, client: Any, token: str) -> None:
        self.client, self.token, self.logins = client, token, list[tuple[str, str]]()

    def login(self, role: str, jwt: str) -> None:
        self.logins.append((role, jwt))
        self.client.token = self.token


async def test_vault_kubernetes_auth_logs_in_and_again_when_refused(
    backends: Backends, tmp_path: Path
) -> None:
    bao = backends.server("vault")
    client = bao.client()
    client.token = None
    fake = KubernetesLogin(client, bao.token)
    client.auth.kubernetes.login = fake.login
    jwt = tmp_path / "token"
    jwt.write_text("jwt-1\n")
    backend = backends.build("vault", client=client, kubernetes_role="sidecar", kubernetes_jwt_path=str(jwt))
    data_key, wrapped = await backend.generate_data_key(ALICE)
    assert await backend.decrypt_data_key(wrapped, ALICE) == data_key
    client.token, fake.token = "expired", bao.token
    jwt.write_text("jwt-2\n")  # the kubelet rotated the projected token
    assert await backend.decrypt_data_key(wrapped, ALICE) == data_key
    assert fake.logins == [("sidecar", "jwt-1"), ("sidecar", "jwt-2")]
    with pytest.raises(ValueError, match="give one of"):
        VaultTransitBackend("k", url=bao.url, token="t", kubernetes_role="r")
    with pytest.raises(ValueError, match="needs a token"):
        VaultTransitBackend("k", url=bao.url)


class Recorder:
    """Wraps a client: each method call below it records its thread and takes `delay` seconds."""

    def __init__(self, target: Any, delay: float, log: dict[str, Any]) -> None:
        self._target, self._delay, self._log = target, delay, log

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return Recorder(value, self._delay, self._log)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._log["lock"]:
                self._log["threads"].add(threading.current_thread().name)
                self._log["busy"] += 1
                self._log["peak"] = max(self._log["peak"], self._log["busy"])
            try:
                time.sleep(self._delay)
                return value(*args, **kwargs)
            finally:
                with self._log["lock"]:
                    self._log["busy"] -= 1

        return call


async def test_blocking_calls_run_on_a_bounded_pool_off_the_loop(backends: Backends, kind: str) -> None:
    log: dict[str, Any] = {"lock": threading.Lock(), "threads": set(), "busy": 0, "peak": 0}
    client = Recorder(backends.server(kind).client(), 0.05, log)
    backend = backends.build(kind, client=client, max_workers=2)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticking = asyncio.create_task(ticker())
    results = await asyncio.gather(*(backend.generate_data_key(ALICE) for _ in range(6)))
    ticking.cancel()
    assert len({bytes(data_key) for data_key, _ in results}) == 6
    assert ticks >= 10  # the loop kept running through three rounds of 50 ms calls
    assert log["peak"] == 2 and threading.current_thread().name not in log["threads"]
    assert all(name.startswith(("aws-kms", "vault-transit")) for name in log["threads"])


def test_optional_clients_are_imported_only_when_a_backend_is_built() -> None:
    code = "import sys, sidecar.keys.aws_kms, sidecar.keys.vault_transit; print(sorted(sys.modules))"
    modules = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "'boto3'" not in modules and "'botocore'" not in modules and "'hvac'" not in modules


async def test_vault_token_file_is_used_with_a_client_of_the_callers(
    backends: Backends, tmp_path: Path
) -> None:
    bao = backends.server("vault")
    client = bao.client()
    client.token = None
    sink = tmp_path / "token"
    sink.write_text(bao.token + "\n")
    backend = backends.build("vault", client=client, token_file=sink)
    assert client.token == bao.token  # from the start: not only once Vault refused the first call
    data_key, wrapped = await backend.generate_data_key(ALICE)
    assert await backend.decrypt_data_key(wrapped, ALICE) == data_key
    sink.write_text("")
    with pytest.raises(ValueError, match="empty"):
        VaultTransitBackend("k", url=bao.url, token_file=sink)
