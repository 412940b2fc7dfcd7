"""The mutating admission webhook: AdmissionReview v1 over HTTPS (aiohttp), one decision per pod.

POST /inject answers every well-formed review: a patch, an unchanged pod, or a refusal with a
message. A body that is not an AdmissionReview gets HTTP 400; an unexpected failure gets HTTP 500,
so the API server applies the webhook's failurePolicy. Each decision is counted
(`sidecar_injector_decisions_total{decision,reason}`) and logged as one structured line.
GET /metrics, /livez and /readyz serve Prometheus and the kubelet on the same port.

On SIGTERM the injector first drains (`drain`): /readyz answers 503 while reviews are still answered
for a few seconds, because the API server keeps sending them to a terminating pod until the
Service's endpoints catch up; an injector that stopped at once made them fail, and with
failurePolicy Ignore every pod created meanwhile (any rollout of the injector) was admitted
without the sidecar.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sidecar.core.clock import Clock, SystemClock
from sidecar.core.listen import listening_socket, split_address
from sidecar.injector.metrics import InjectorMetrics
from sidecar.injector.mutate import Decision, decide
from sidecar.injector.patch import make_patch
from sidecar.injector.review import (
    BODY_BYTES_IN_FLIGHT,
    BODY_READ_SECONDS,
    INLINE_BODY_BYTES,
    MAX_BODY_BYTES,
    ReviewError,
    ReviewRequest,
    allow,
    deny,
    parse_review,
)
from sidecar.injector.settings import InjectorSettings

_log = logging.getLogger("sidecar.injector")
Json = dict[str, object]


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


class CertReloader:
    """A server TLS context that picks up a renewed certificate (cert-manager rotates the files in
    place) on the next handshake after the files change."""

    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self._stamp = self._mtimes()
        self.context = self._load()
        self.context.sni_callback = self._on_hello

    def _mtimes(self) -> tuple[float, float]:
        return self._files.cert.stat().st_mtime, self._files.key.stat().st_mtime

    def _load(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._files.cert, self._files.key)
        return context

    def _on_hello(self, sock: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        try:
            stamp = self._mtimes()
            if stamp != self._stamp:
                fresh = self._load()
                fresh.sni_callback = self._on_hello
                self.context, self._stamp = fresh, stamp
                _log.info("webhook certificate reloaded", extra={"cert": str(self._files.cert)})
        except (OSError, ssl.SSLError):  # a rotation caught halfway: keep the certificate in use
            _log.warning("webhook certificate reload failed; keeping the current one", exc_info=True)
        sock.context = self.context


class InjectorServer:
    """The webhook on `address` (host:port; port 0 = any free), over TLS unless `tls` is None."""

    def __init__(
        self,
        settings: InjectorSettings,
        *,
        address: str,
        tls: TlsFiles | None,
        metrics: InjectorMetrics,
        clock: Clock | None = None,
    ) -> None:
        self._settings, self._metrics = settings, metrics
        self._clock = clock or SystemClock()
        self._ready = True
        self._body_bytes = 0  # declared lengths of the review bodies being read now
        self._host, self._port = split_address(address)  # "" or "::": every address
        self._ssl = CertReloader(tls).context if tls is not None else None
        self._runner: web.AppRunner | None = None
        # one large review worked on at a time, off the event loop (BODY_BYTES_IN_FLIGHT bounds the
        # ones waiting); its Python work still shares the interpreter, a slice at a time
        self._aside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="injector-large-review")
        self.port = 0

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post("/inject", self._inject)
        app.router.add_get("/metrics", self._metrics_page)
        app.router.add_get("/livez", self._ok)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = listening_socket(self._host, self._port)  # "" or "::": every address, IPv6 and IPv4
        sock.setblocking(False)
        site = web.SockSite(self._runner, sock, ssl_context=self._ssl)
        await site.start()
        self.port = int(sock.getsockname()[1])
        _log.info("injector serving", extra={"port": self.port, "tls": self._ssl is not None})

    async def drain(self, seconds: float) -> None:
        """Not ready (/readyz 503) but still answering reviews for `seconds`, before `stop()`."""
        self._ready = False
        _log.info("injector draining", extra={"seconds": seconds})
        await self._clock.sleep(seconds)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._aside.shutdown(wait=False, cancel_futures=True)

    async def _inject(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        size = min(request.content_length or MAX_BODY_BYTES, MAX_BODY_BYTES)
        if self._body_bytes + size > BODY_BYTES_IN_FLIGHT:
            busy = Decision("rejected", "busy", "too many review bytes being read; retry")
            self._record(busy, None, started)
            return web.json_response({"error": busy.message}, status=503)
        self._body_bytes += size  # until answered: a large body waiting for its turn holds memory too
        try:
            try:
                body = await self._read_body(request)
            except _Unread as exc:
                self._record(exc.decision, None, started)
                return web.json_response({"error": exc.decision.message}, status=exc.status)
            except web.HTTPRequestEntityTooLarge:
                self._record(Decision("rejected", "too_large", "body too large"), None, started)
                raise
            if len(body) <= INLINE_BODY_BYTES:
                outcome = self._review(body)
            else:  # seconds of work: aside, so the reviews sent meanwhile are answered at once
                outcome = await asyncio.get_running_loop().run_in_executor(self._aside, self._review, body)
        finally:
            self._body_bytes -= size
        self._record(outcome.decision, outcome.review, started)
        return web.json_response(outcome.answer, status=outcome.status)

    def _review(self, body: bytes) -> _Outcome:
        """The answer to one review body (on the event loop, or on the thread for large bodies)."""
        try:
            review = parse_review(body)
        except ReviewError as exc:
            answer: Json = {"error": f"not an AdmissionReview v1 request: {exc}"}
            return _Outcome(400, answer, Decision("rejected", "malformed_review", str(exc)), None)
        try:
            decision = self._decide(review)
            return _Outcome(200, _answer(review, decision), decision, review)
        except Exception as exc:  # never a crash: the API server applies the failurePolicy
            _log.exception("injection failed", extra={"uid": review.uid, "namespace": review.namespace})
            error = Decision("error", type(exc).__name__, "internal error")
            return _Outcome(500, {"error": "internal error; see the injector's log"}, error, review)

    async def _read_body(self, request: web.Request) -> bytes:
        """The body, read within BODY_READ_SECONDS; a body over MAX_BODY_BYTES is refused by aiohttp
        (413). BODY_BYTES_IN_FLIGHT bounds what all the reviews read or worked on at once may hold."""
        try:
            async with self._clock.timeout(BODY_READ_SECONDS):
                return await request.read()
        except TimeoutError:
            message = f"body not received within {BODY_READ_SECONDS:g}s"
            raise _Unread(408, Decision("rejected", "slow_body", message)) from None

    def _decide(self, review: ReviewRequest) -> Decision:
        if review.kind != "Pod":
            return Decision("skipped", "not_a_pod", f"kind {review.kind!r} is not Pod")
        if review.operation != "CREATE":
            return Decision("skipped", "not_create", f"operation {review.operation!r} is not CREATE")
        return decide(review.object, self._settings, review.namespace)

    def _record(self, decision: Decision, review: ReviewRequest | None, started: float) -> None:
        dry_run = review.dry_run if review else False
        self._metrics.decided(decision.kind, decision.reason, time.perf_counter() - started, dry_run=dry_run)
        level = logging.WARNING if decision.kind in ("rejected", "error") else logging.INFO
        _log.log(
            level,
            "injection decision",
            extra={
                "decision": decision.kind,
                "reason": decision.reason,
                "detail": decision.message,
                "uid": review.uid if review else "",
                "namespace": review.namespace if review else "",
                "pod": _pod_name(review.object) if review else "",
                "dry_run": dry_run,
            },
        )

    async def _metrics_page(self, request: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _ok(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._ready:
            return web.Response(text="ok\n")
        return web.Response(status=503, text="draining\n")


@dataclass(frozen=True)
class _Outcome:
    status: int
    answer: Json
    decision: Decision
    review: ReviewRequest | None


class _Unread(Exception):
    """A review body not read: refused (busy) or not received in time; answered with `status`."""

    def __init__(self, status: int, decision: Decision) -> None:
        super().__init__(decision.message)
        self.status, self.decision = status, decision


def _answer(review: ReviewRequest, decision: Decision) -> Json:
    if decision.kind == "rejected":
        return deny(review.uid, f"orchestrator sidecar injection: {decision.message}")
    if decision.kind == "injected" and decision.pod is not None and isinstance(review.object, dict):
        return allow(review.uid, make_patch(review.object, decision.pod))
    return allow(review.uid)


def _pod_name(pod: object) -> str:
    """The pod's name, or its generateName prefix (a Deployment's pods have no name yet)."""
    metadata = pod.get("metadata") if isinstance(pod, dict) else None
    if not isinstance(metadata, dict):
        return ""
    return str(metadata.get("name") or metadata.get("generateName") or "")
