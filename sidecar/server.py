"""The built server and its lifecycle: the gRPC servers (data plane, optional admin socket), health,
start, and stop with a drain."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health as health_module
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import _async as reflection_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2

from sidecar.api.decode import add_service
from sidecar.api.services import ADMIN_NAME, DATA_PLANE_NAMES, Servicers, add_admin, add_data_plane
from sidecar.config.schema import Config
from sidecar.core.clock import Clock
from sidecar.core.drain import Drain
from sidecar.deps import Deps, persona_prompts
from sidecar.telemetry.health import DrainingHealth
from sidecar.telemetry.logging import quiet_undelivered_answers
from sidecar.telemetry.memory import AllocatorTrimmer
from sidecar.telemetry.tracing import TraceContextInterceptor
from sidecar.unix_socket import SocketClaim, bind_unix_socket

if TYPE_CHECKING:
    from sidecar.answers.service import AnswerService
    from sidecar.answers.sweeper import ExpirySweeper


_log = logging.getLogger("sidecar")
CUT_WAIT_SECONDS = 1.0  # after the grace: how long cut calls and short RPCs get to send their status


class Sidecar:
    """A built server with its lifecycle: start, then stop with a grace period."""

    def __init__(self, cfg: Config, deps: Deps, build_servicers: Callable[[Drain], Servicers]) -> None:
        """`build_servicers`: makes every service's servicer around the drain (sidecar/app.py)."""
        self.cfg, self.deps = cfg, deps
        self.server = grpc.aio.server(
            interceptors=[TraceContextInterceptor()] if deps.telemetry.tracing.enabled else None,
            # Each RPC holds memory from its headers on, before any message (or none ever) arrives:
            # 20,000 header-only streams grew the process by 350 MB. The cap bounds it.
            maximum_concurrent_rpcs=cfg.settings.max_concurrent_rpcs,
            options=[
                ("grpc.max_receive_message_length", cfg.settings.max_receive_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.drain = Drain(deps.clock)
        self._stopping = False
        self.sweeper: ExpirySweeper | None = None  # the escalation expiry sweep, once started
        memory = cfg.settings.memory
        self.trimmer = AllocatorTrimmer(
            threshold_bytes=memory.trim_after_request_bytes,
            delay_seconds=memory.trim_delay_seconds,
            clock=deps.clock,
        )
        servicers = build_servicers(self.drain)
        # undecodable requests: INVALID_ARGUMENT; large ones: heap given back after
        add_data_plane(
            self.server,
            servicers,
            clock=deps.clock,
            on_request=self.trimmer.note,
            write_timeout=cfg.settings.stream_write_timeout_seconds,
        )
        admin = cfg.settings.admin
        if admin.mode == "listener":
            add_admin(self.server, servicers, clock=deps.clock)
        self.health = DrainingHealth()
        served = (*DATA_PLANE_NAMES, *((ADMIN_NAME,) if admin.mode == "listener" else ()))
        add_open_services(self.server, self.health, served, deps.clock)
        try:
            self.port = self.server.add_insecure_port(cfg.settings.listen.address)
        except RuntimeError as exc:  # grpc's way of saying the address cannot be bound
            raise RuntimeError(f"cannot listen on {cfg.settings.listen.address}: {exc}") from exc
        self.claims: list[SocketClaim] = []  # the Unix socket paths held, released once stopped
        if (path := cfg.settings.listen.unix_socket) is not None:
            self.claims.append(bind_unix_socket(self.server, path, mode=cfg.settings.listen.unix_socket_mode))
        self.admin_server: grpc.aio.Server | None = None
        if (admin_socket := build_admin_server(cfg, servicers, deps.clock)) is not None:
            self.admin_server, claim = admin_socket
            self.claims.append(claim)

    async def start(self) -> None:
        quiet_undelivered_answers()  # a caller gone before its answer is no server error
        await self.deps.telemetry.start()
        try:
            await self.server.start()
            if self.admin_server is not None:
                await self.admin_server.start()
        except BaseException:
            await self.deps.telemetry.stop()
            raise
        if self.deps.prober is not None:
            await self.deps.prober.start()
        if self.deps.keys is not None:
            self.deps.keys.start()  # Vault: renew its token ahead of expiry
        await self.deps.embeddings.start()
        if self.deps.answers is not None:
            await self._seed_answers()
            self.sweeper = self._answer_sweeper(self.deps.answers)
            self.sweeper.start()
        for name in ("", *DATA_PLANE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._set_ready(True)
        _log.info(
            "sidecar serving",
            extra={
                "address": self.cfg.settings.listen.address,
                "port": self.port,
                "metrics_port": self.metrics_port,
            },
        )
        if self.deps.experiments is not None:  # after SERVING: a slow ledger never delays readiness
            await self.deps.experiments.started()

    async def reload(self, cfg: Config, *, source: str) -> list[str]:
        """A policy reloaded without a restart: its experiments (promote, stop, weights) and its
        per-agent answer policies (sidecar/answers/reload.py). Routes, deployments, personas, tiers
        and credentials are not reloaded: experiments, or an answers section, naming ones the running
        sidecar lacks are refused whole (each on its own), and the problems returned (and logged)."""
        if changed := restart_only_changes(self.cfg, cfg):  # said once, not silently dropped
            _log.warning(
                "configuration changed where a reload does not apply; restart to apply it",
                extra={"sections": ", ".join(changed), "source": source},
            )
        problems = await self._reload_experiments(cfg, source)
        return problems + await self._reload_answers(cfg, source)

    async def _reload_experiments(self, cfg: Config, source: str) -> list[str]:
        running = self.cfg.policy
        routes = {alias: route.deployments for alias, route in running.routes.items()}
        personas = {p.id for p in running.personas.all()}
        new = cfg.policy.experiments
        problems = [p for name, exp in new.items() for p in exp.problems(name, routes, personas)]
        if problems:
            _log.error("experiments not reloaded", extra={"problems": "; ".join(problems), "source": source})
        elif self.deps.experiments is not None:
            await self.deps.experiments.apply(new, persona_prompts(cfg), source=source)
        return problems

    async def _reload_answers(self, cfg: Config, source: str) -> list[str]:
        from sidecar.answers import reload

        problems = reload.problems(self.cfg, cfg, self.deps.answers)
        if problems:
            why = {"problems": "; ".join(problems), "source": source}
            _log.error("answer policy not reloaded", extra=why)
            if self.deps.answers is not None:
                self.deps.answers.observer.on_reload("refused")
            return problems
        if self.deps.answers is not None and cfg.policy.answers is not None:
            await reload.apply(self.deps.answers, cfg.policy.answers, source=source)
            self.deps.answers.observer.on_reload("applied")
        return []

    @property
    def metrics_port(self) -> int | None:
        """The bound /metrics port once started; None when metrics are off."""
        server = self.deps.telemetry.server
        return server.port if server is not None else None

    async def stop(self, grace: float | None = None) -> None:
        """Drain: health says NOT_SERVING (Check is still answered) and new generation calls are
        refused; running ones get the grace to finish, then are cut with STREAM_INTERRUPTED and their
        partial usage. Then Watch streams are closed and the server stops (short RPCs still in flight
        get CUT_WAIT_SECONDS), and the dependencies are closed."""
        if self._stopping:
            return  # stopped already (or stopping): a second stop() has nothing left to do
        self._stopping = True
        grace = self.cfg.settings.shutdown_grace_seconds if grace is None else grace
        self._set_ready(False)
        started = self.deps.clock.monotonic()
        # what an operator reads when a pod takes its whole grace period to go, or calls were cut
        _log.info("sidecar stopping", extra={"running_calls": self.drain.running, "grace_seconds": grace})
        try:
            await self.health.enter_graceful_shutdown()
            cut = await self.drain.drain(grace, cut_wait=min(CUT_WAIT_SECONDS, max(grace, 0.1)))
            if cut:
                _log.warning(
                    "calls still running at the end of the grace were cut",
                    extra={"cut_calls": cut, "grace_seconds": grace},
                )
            self.health.close_watches()
            if self.admin_server is not None:
                await self.admin_server.stop(CUT_WAIT_SECONDS)
            await self.server.stop(CUT_WAIT_SECONDS)
            for claim in self.claims:
                claim.release()
        finally:
            await self._close_dependencies()
            _log.info("sidecar stopped", extra={"seconds": round(self.deps.clock.monotonic() - started, 3)})

    def _set_ready(self, ready: bool) -> None:
        """What the kubelet's readiness and startup probes see on the metrics port (`/readyz`)."""
        if (server := self.deps.telemetry.server) is not None:
            server.readiness.set(ready)

    async def _seed_answers(self) -> None:
        """The configured canonical answers, before the sidecar reports ready; a failing embedding
        route leaves them out (logged), the next start tries again."""
        assert self.deps.answers is not None
        from sidecar.answers.errors import RECOVERABLE

        try:
            n = await self.deps.answers.seed()
        except RECOVERABLE as exc:
            _log.error("canonical answers not seeded: %r", exc)
            return
        _log.info("canonical answers seeded", extra={"answers": n})

    def _answer_sweeper(self, answers: AnswerService) -> ExpirySweeper:
        from sidecar.answers.sweeper import ExpirySweeper

        a = answers.policy
        return ExpirySweeper(answers, interval=a.sweep_interval_seconds, batch=a.sweep_batch)

    async def _close_dependencies(self) -> None:
        """Close everything even if one close fails: probes, providers, the HTTP pool, the key service."""
        closers = [*(p.aclose for p in self.deps.providers.values()), self.deps.http.aclose]
        closers.append(self.deps.personas.aclose)
        closers.append(self.trimmer.aclose)
        if self.deps.prober is not None:
            closers.insert(0, self.deps.prober.stop)
        if self.deps.keys is not None:
            closers.append(self.deps.keys.aclose)
        if self.deps.cache is not None:
            closers.append(self.deps.cache.aclose)
        if self.deps.semantic is not None:
            closers.append(self.deps.semantic.aclose)
        closers.append(self.deps.embeddings.aclose)
        if self.deps.quota is not None:
            closers.append(self.deps.quota.aclose)
        if self.deps.idempotency is not None:
            closers.append(self.deps.idempotency.aclose)
        if self.sweeper is not None:
            closers.insert(0, self.sweeper.stop)  # before the store it sweeps is closed
        if self.deps.answers is not None:
            closers.append(self.deps.answers.aclose)  # after finishing answers whose caller left
        closers.append(self.deps.telemetry.stop)  # last: flushes the ledger records of the calls above
        for close in closers:
            try:
                await close()
            except Exception:
                _log.exception("shutdown step failed", extra={"step": getattr(close, "__qualname__", "?")})


def add_open_services(
    server: grpc.aio.Server, health: DrainingHealth, served: tuple[str, ...], clock: Clock
) -> None:
    """Health and reflection, which need no token, with the tolerant decoding of every other service
    (sidecar/api/decode.py): grpc's own answered an undecodable request UNKNOWN, with an ERROR line
    and its traceback each, for anyone reaching the port."""
    add_service(server, health, health_pb2.DESCRIPTOR.services_by_name["Health"], clock=clock)
    names = (*served, health_module.SERVICE_NAME, reflection.SERVICE_NAME)
    described = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
    add_service(server, reflection_aio.ReflectionServicer(names), described, clock=clock)


def build_admin_server(
    cfg: Config, servicers: Servicers, clock: Clock
) -> tuple[grpc.aio.Server, SocketClaim] | None:
    """The AdminService alone on its own Unix socket (settings.admin.mode unix_socket), and its claim."""
    admin = cfg.settings.admin
    if admin.mode != "unix_socket" or admin.unix_socket is None:
        return None
    server = grpc.aio.server()
    add_admin(server, servicers, clock=clock)
    return server, bind_unix_socket(server, admin.unix_socket, mode=admin.socket_mode)


RELOADED = frozenset({"experiments", "answers"})  # the policy sections a reload applies


def restart_only_changes(running: Config, new: Config) -> list[str]:
    """The sections of `new` that differ from the running configuration but only a restart applies
    (every setting, and the policy but its experiments and answer policies)."""
    changed = [
        f"settings.{name}"
        for name in type(running.settings).model_fields
        if getattr(running.settings, name) != getattr(new.settings, name)
    ]
    return changed + [
        f"policy.{name}"
        for name in type(running.policy).model_fields
        if name not in RELOADED and getattr(running.policy, name) != getattr(new.policy, name)
    ]
