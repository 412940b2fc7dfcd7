"""A key backend (or a proxy in front of it) that trickles its answer a byte at a time: the clients'
timeouts are per connect and per read, so they never trip. A decrypt then never ended: the cache's
flight for the key held every caller of it until their own deadline (a caller without one, forever),
RegisterKey likewise, and `aclose` (the sidecar's stop) waited for the thread without end. Each call
is now bounded as a whole (KEY_BACKEND_UNAVAILABLE with RetryInfo), and so is the wait at `aclose`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from sidecar.core.errors import KeyBackendUnavailableError
from sidecar.keys.aws_kms import AwsKmsBackend
from sidecar.keys.backend import KeyBackend, KeyContext, WrappedKey
from sidecar.keys.vault_transit import VaultTransitBackend

pytestmark = pytest.mark.integration
ALICE = KeyContext("acme", "alice", "openai", "default")
ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
LIMIT = 1.5


class Trickle:
    """Answers every request 200 with a long body sent one byte every 0.3 s, until it is closed."""

    def __init__(self) -> None:
        self.url = ""
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> Trickle:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            )
            while not writer.is_closing():
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.3)

    async def close(self) -> None:
        for writer in self._writers:  # the blocked threads get their EOF and end
            writer.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def trickle() -> AsyncIterator[Trickle]:
    server = await Trickle().start()
    yield server
    await server.close()


def backend_on(kind: str, url: str) -> KeyBackend:
    if kind == "aws-kms":
        return AwsKmsBackend(ARN, region="us-east-1", endpoint_url=url, call_limit_seconds=LIMIT)
    return VaultTransitBackend("k", url=url, token="t", call_limit_seconds=LIMIT)


@pytest.mark.parametrize("kind", ["aws-kms", "vault"])
async def test_a_trickled_answer_is_bounded_and_so_is_the_close(
    trickle: Trickle, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    backend = backend_on(kind, trickle.url)
    blob = b"vault:v1:AAAA" if kind == "vault" else b"wrapped"
    started = time.monotonic()
    with pytest.raises(KeyBackendUnavailableError) as caught:
        await asyncio.wait_for(
            backend.decrypt_data_key(WrappedKey(kind, "k" if kind == "vault" else ARN, blob), ALICE), 20
        )
    assert time.monotonic() - started < LIMIT + 2
    assert caught.value.metadata["backendError"] == "Timeout" and caught.value.retry_after == 1.0
    assert trickle.requests == 1  # the backend was reached: its answer never ended
    started = time.monotonic()
    await asyncio.wait_for(backend.aclose(), 20)  # its thread is still reading the trickle
    assert time.monotonic() - started < LIMIT + 2
