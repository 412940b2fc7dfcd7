"""Shared fixtures: a fake clock, loopback upstreams, and the real server on a free port."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.app import build_server
from sidecar.config.load import load_config
from sidecar.config.schema import Config
from sidecar.core.clock import FakeClock
from sidecar.server import Sidecar
from tests.support.prometheus import quiet_telemetry
from tests.support.upstream import Upstream


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = await Upstream().start()
    yield server
    await server.close()


@pytest.fixture
async def upstream2() -> AsyncIterator[Upstream]:
    server = await Upstream().start()
    yield server
    await server.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_config(
    raw: dict[str, Any], environ: dict[str, str] | None = None, tmp: Path | None = None
) -> Config:
    """A Config from a dict, through the real loader (so env overrides and secrets apply)."""
    import yaml

    assert tmp is not None
    path = tmp / "sidecar.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_config(path, environ or {})


def echo_policy(**extra: Any) -> dict[str, Any]:
    return {
        "default_route": "echo",
        "deployments": {"echo": {"provider": "echo", "model": "echo-1"}},
        "routes": {"echo": {"deployments": ["echo"]}},
        **extra,
    }


def admin_socket() -> dict[str, Any]:
    """settings.admin for the AdminService on its own Unix socket, in a short fresh directory (a
    socket path is limited to ~107 bytes; pytest's tmp_path can be longer)."""
    path = Path(tempfile.mkdtemp(prefix="adm")) / "admin.sock"
    return {"mode": "unix_socket", "unix_socket": str(path)}


class Running:
    """A started sidecar and a channel to it (and one to its admin socket, when it has one)."""

    def __init__(
        self, sidecar: Sidecar, channel: grpc.aio.Channel, admin: grpc.aio.Channel | None = None
    ) -> None:
        self.sidecar = sidecar
        self.channel = channel
        self.admin_channel = admin
        self.stub = Stubs(channel, admin=admin)


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """serve(raw_config, environ=None, clock=None) -> Running; everything started is stopped afterwards."""
    started: list[Running] = []

    async def start(
        raw: dict[str, Any], environ: dict[str, str] | None = None, clock: FakeClock | None = None
    ) -> Running:
        settings = raw.get("settings", {})
        raw = {
            "settings": {
                "listen": {"address": "127.0.0.1:0"},
                **settings,
                # /metrics on a free port and the ledger under tmp, unless the test says otherwise
                "telemetry": {**quiet_telemetry(tmp_path), **settings.get("telemetry", {})},
            },
            **{k: v for k, v in raw.items() if k != "settings"},
        }
        cfg = make_config(raw, environ, tmp_path)
        sidecar = build_server(cfg, clock)
        await sidecar.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{sidecar.port}")
        socket = cfg.settings.admin.unix_socket
        admin = grpc.aio.insecure_channel(f"unix:{socket}") if socket is not None else None
        running = Running(sidecar, channel, admin)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.channel.close()
        if running.admin_channel is not None:
            await running.admin_channel.close()
        await _stopped(running.sidecar)


async def _stopped(sidecar: Sidecar) -> None:
    """stop(0), bounded in real time: a stop that waits on something that never comes (a timer of a
    FakeClock no one advances) fails here naming what it waits on, instead of holding the test until
    pytest-timeout kills it and leaks its sockets into the next test's warnings."""
    stopping = asyncio.ensure_future(sidecar.stop(0))
    done, _ = await asyncio.wait({stopping}, timeout=30)
    if not done:
        waiting = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
        stacks = "\n".join(f"{t.get_name()}: {t.get_stack(limit=3)}" for t in waiting)
        raise AssertionError(f"the sidecar did not stop within 30 s; tasks still waiting:\n{stacks}")
    stopping.result()


def user(text: str) -> gen.Message:
    return gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text=text)])


def system(text: str) -> gen.Message:
    return gen.Message(role=gen.ROLE_SYSTEM, content=[gen.ContentPart(text=text)])


# Real key-encryption backends on loopback (session-scoped; started only by the tests that use them).
from tests.support.api import Stubs  # noqa: E402
from tests.support.context import encodings, encodings_dir, memory_store  # noqa: E402, F401
from tests.support.kms import kms_endpoint  # noqa: E402, F401
from tests.support.logs import json_logs  # noqa: E402, F401
from tests.support.openbao import openbao  # noqa: E402, F401
from tests.support.personas import conversation_store  # noqa: E402, F401
from tests.support.postgres import postgres_url  # noqa: E402, F401
from tests.support.quota import quota_store  # noqa: E402, F401
from tests.support.redis import redis_url  # noqa: E402, F401
