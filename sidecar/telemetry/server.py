"""`/metrics` on its own HTTP port (aiohttp, on the server's event loop): the registry in text format,
and the kubelet's probes, which cannot reach the loopback gRPC port: `/livez` (the event loop
answers), `/readyz` and `/healthz` (200 only while the sidecar serves: not before it started, not
while it drains)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Readiness:
    """Whether the sidecar serves calls: set by its lifecycle, read by `/readyz`."""

    def __init__(self) -> None:
        self._ready = False

    def set(self, ready: bool) -> None:
        self._ready = ready

    def __bool__(self) -> bool:
        return self._ready


class MetricsServer:
    """Serves GET /metrics for one registry and the probes; `port` is the bound port once started
    (0 = any free)."""

    def __init__(self, registry: CollectorRegistry, address: str) -> None:
        self._registry = registry
        self.readiness = Readiness()
        host, _, port = address.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/livez", self._live)
        app.router.add_get("/readyz", self._ready)
        app.router.add_get("/healthz", self._ready)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise RuntimeError(f"cannot serve /metrics on {self._host}:{self._port}: {exc}") from exc
        server = site._server
        sockets = getattr(server, "sockets", None) or ()
        self.port = int(sockets[0].getsockname()[1]) if sockets else self._port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _live(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _ready(self, request: web.Request) -> web.Response:
        if self.readiness:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="not serving\n")
