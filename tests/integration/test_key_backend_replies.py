"""The key backends' traffic seen from between them and their server: the real moto KMS and OpenBao
dev server behind a loopback HTTP proxy that counts the calls and can mangle the real answers.

Malformed answers (cut short, a proxy's HTML page under a 200, a member missing, a data key that is
not base64), as a broken egress proxy or load balancer would send them, are each
KEY_BACKEND_UNAVAILABLE with RetryInfo naming no value; they were KeyError/TypeError crashes
(INTERNAL, an ERROR traceback per call).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from sidecar.core.errors import KeyBackendUnavailableError
from sidecar.keys.aws_kms import AwsKmsBackend
from sidecar.keys.backend import KeyBackend, KeyContext
from sidecar.keys.vault_transit import VaultTransitBackend
from tests.support.kms import MotoKms
from tests.support.openbao import OpenBao, openbao  # noqa: F401

pytestmark = pytest.mark.integration
ALICE = KeyContext("acme", "alice", "openai", "default")
Mangle = Callable[[bytes], tuple[int, bytes, str]]


class MangleProxy:
    """Forwards every request to `target`; answers to a path containing `only` go through `mangle`."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.mangle: Mangle | None = None
        self.only = ""
        self.url = ""
        self.calls: Counter[str] = Counter()  # by KMS operation (X-Amz-Target) or Vault path
        self._runner: web.AppRunner | None = None

    async def start(self) -> MangleProxy:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls[request.headers.get("X-Amz-Target", "").rpartition(".")[2] or request.path] += 1
        body = await request.read()
        skip = ("host", "content-length", "transfer-encoding")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        async with (
            aiohttp.ClientSession() as session,
            session.request(request.method, self.target + request.path_qs, data=body, headers=headers) as r,
        ):
            answer, status, ctype = await r.read(), r.status, r.headers.get("Content-Type", "")
        target = request.headers.get("X-Amz-Target", "") + request.path
        if self.mangle is not None and self.only and self.only in target and status == 200:
            status, answer, ctype = self.mangle(answer)
        return web.Response(status=status, body=answer, headers={"Content-Type": ctype})


def cut_short(answer: bytes) -> tuple[int, bytes, str]:
    return 200, answer[: len(answer) // 2], "application/x-amz-json-1.1"


def html_page(answer: bytes) -> tuple[int, bytes, str]:
    return 200, b"<html><body>upstream connect error</body></html>", "text/html"


def without(member: str, inner: str | None = None) -> Mangle:
    def mangle(answer: bytes) -> tuple[int, bytes, str]:
        data = json.loads(answer)
        (data[inner] if inner else data).pop(member)
        return 200, json.dumps(data).encode(), "application/json"

    return mangle


def not_base64(answer: bytes) -> tuple[int, bytes, str]:
    data = json.loads(answer)
    data["data"]["plaintext"] = "not*base64!"
    return 200, json.dumps(data).encode(), "application/json"


@pytest.fixture
async def proxied_kms(
    kms_endpoint: MotoKms, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[MangleProxy, KeyBackend]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    proxy = await MangleProxy(kms_endpoint.url).start()
    backend = AwsKmsBackend(kms_endpoint.key_arn, region=kms_endpoint.region, endpoint_url=proxy.url)
    yield proxy, backend
    await backend.aclose()
    await proxy.close()


@pytest.fixture
async def proxied_vault(openbao: OpenBao) -> AsyncIterator[tuple[MangleProxy, KeyBackend]]:  # noqa: F811
    proxy = await MangleProxy(openbao.url).start()
    backend = VaultTransitBackend(openbao.key_name, url=proxy.url, token=openbao.token)
    yield proxy, backend
    await backend.aclose()
    await proxy.close()


def assert_malformed(caught: pytest.ExceptionInfo[KeyBackendUnavailableError], backend: str) -> None:
    err = caught.value
    assert err.message.startswith(f"{backend} sent a malformed answer"), err.message
    assert err.metadata["backendError"] == "MalformedAnswer" and err.retry_after == 1.0


# A Decrypt answer has no CiphertextBlob to lose: that case is GenerateDataKey's alone.
KMS_CASES = {
    "cut-short": (cut_short, True),
    "html-page": (html_page, True),
    "no-plaintext": (without("Plaintext"), True),
    "no-ciphertext-blob": (without("CiphertextBlob"), False),
}
VAULT_CASES = {
    "html-page": html_page,
    "no-plaintext": without("plaintext", "data"),
    "no-data": without("data"),
    "not-base64": not_base64,
}


@pytest.mark.parametrize("case", KMS_CASES)
async def test_a_malformed_kms_answer_is_backend_unavailable(
    proxied_kms: tuple[MangleProxy, KeyBackend], case: str
) -> None:
    proxy, backend = proxied_kms
    _, wrapped = await backend.generate_data_key(ALICE)
    proxy.mangle, decrypt_too = KMS_CASES[case]
    proxy.only = "GenerateDataKey"
    with pytest.raises(KeyBackendUnavailableError) as caught:
        await backend.generate_data_key(ALICE)
    assert_malformed(caught, "AWS KMS")
    if decrypt_too:
        proxy.only = "TrentService.Decrypt"
        with pytest.raises(KeyBackendUnavailableError) as caught:
            await backend.decrypt_data_key(wrapped, ALICE)
        assert_malformed(caught, "AWS KMS")


@pytest.mark.parametrize("case", VAULT_CASES)
async def test_a_malformed_vault_answer_is_backend_unavailable(
    proxied_vault: tuple[MangleProxy, KeyBackend], case: str
) -> None:
    proxy, backend = proxied_vault
    _, wrapped = await backend.generate_data_key(ALICE)
    proxy.mangle = VAULT_CASES[case]
    proxy.only = "/datakey/"
    with pytest.raises(KeyBackendUnavailableError) as caught:
        await backend.generate_data_key(ALICE)
    assert_malformed(caught, "Vault")
    proxy.only = "/decrypt/"
    with pytest.raises(KeyBackendUnavailableError) as caught:
        await backend.decrypt_data_key(wrapped, ALICE)
    assert_malformed(caught, "Vault")


async def test_cold_decrypts_at_once_resolve_the_allowed_kms_keys_once(
    proxied_kms: tuple[MangleProxy, KeyBackend], kms_endpoint: MotoKms
) -> None:
    """The allow-list (key_id and previous_key_ids, as ARNs) was resolved by every decrypt that found
    it unresolved: 20 cold decrypts at once on a fresh sidecar made 40 DescribeKey calls, queued on
    the same 4 threads as the decrypts, instead of 2."""
    proxy, maker = proxied_kms
    owners = [KeyContext("acme", f"user-{i}", "openai", "default") for i in range(20)]
    wrapped = [(await maker.generate_data_key(owner))[1] for owner in owners]
    client = kms_endpoint.client()  # aliases: a key ARN needs no DescribeKey at all
    current, previous = f"alias/cold-{os.urandom(4).hex()}", f"alias/cold-{os.urandom(4).hex()}"
    client.create_alias(AliasName=current, TargetKeyId=kms_endpoint.key_arn)
    client.create_alias(AliasName=previous, TargetKeyId=kms_endpoint.create_key())
    fresh = AwsKmsBackend(
        current, region=kms_endpoint.region, endpoint_url=proxy.url, previous_key_ids=[previous]
    )
    try:
        proxy.calls.clear()
        await asyncio.gather(*(fresh.decrypt_data_key(w, o) for w, o in zip(wrapped, owners, strict=True)))
    finally:
        await fresh.aclose()
    assert proxy.calls == {"Decrypt": 20, "DescribeKey": 2}
