"""/metrics on its own port: the text format of the server's own registry; a busy port fails clearly."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from sidecar.telemetry.metrics import Metrics
from sidecar.telemetry.server import MetricsServer


async def test_serves_its_registry_on_a_free_port() -> None:
    m = Metrics()
    m.cache_lookup(hit=True)
    server = MetricsServer(m.registry, "127.0.0.1:0")
    await server.start()
    try:
        assert server.port > 0
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{server.port}/metrics") as r,
        ):
            assert r.status == 200 and r.headers["content-type"].startswith("text/plain")
            assert 'sidecar_cache_lookups_total{result="hit"} 1.0' in await r.text()
            async with session.get(f"http://127.0.0.1:{server.port}/other") as missing:
                assert missing.status == 404
    finally:
        await server.stop()


async def test_a_busy_port_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = MetricsServer(Metrics().registry, f"127.0.0.1:{port}")
        with pytest.raises(RuntimeError, match=f"cannot serve /metrics on 127.0.0.1:{port}"):
            await server.start()
        await server.stop()
