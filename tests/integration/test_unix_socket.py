"""The Unix sockets of a real sidecar: an explicit mode (0660 by default) set with no moment wider than
it, a path that is never followed or deleted unless it is a stale socket, and a live one left alone."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import models_pb2
from sidecar.app import build_server
from sidecar.unix_socket import SocketPathError, bind_unix_socket, claim_socket_path
from tests.conftest import admin_socket, echo_policy, make_config
from tests.support.api import Stubs
from tests.support.prometheus import quiet_telemetry

pytestmark = pytest.mark.integration
Serve = Callable[..., Any]


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory (a socket path is limited to ~107 bytes; pytest's tmp_path can be longer)."""
    path = Path(tempfile.mkdtemp(prefix="sk"))
    yield path
    shutil.rmtree(path)


def mode_of(path: Path) -> int:
    found = os.lstat(path)
    assert stat.S_ISSOCK(found.st_mode)
    return stat.S_IMODE(found.st_mode)


async def list_models(path: Path) -> models_pb2.ListModelsResponse:
    async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
        reply: models_pb2.ListModelsResponse = await Stubs(channel).ListModels(
            models_pb2.ListModelsRequest(), timeout=10
        )
        return reply


def unix(path: Path, **listen: Any) -> dict[str, Any]:
    return {"policy": echo_policy(), "settings": {"listen": {"unix_socket": str(path), **listen}}}


async def test_the_socket_is_owner_and_group_by_default_and_serves(serve: Serve, sock_dir: Path) -> None:
    path = sock_dir / "sidecar.sock"
    await serve(unix(path))
    assert mode_of(path) == 0o660
    assert [r.alias for r in (await list_models(path)).routes] == ["echo"]


@pytest.mark.parametrize("written,mode", [(0o600, 0o600), ("0640", 0o640), ("0o666", 0o666)])
async def test_the_mode_is_configurable_in_octal(
    serve: Serve, sock_dir: Path, written: Any, mode: int
) -> None:
    path = sock_dir / "sidecar.sock"
    await serve(unix(path, unix_socket_mode=written))
    assert mode_of(path) == mode
    await list_models(path)


async def test_an_environment_override_is_octal_too(serve: Serve, sock_dir: Path) -> None:
    path = sock_dir / "sidecar.sock"
    await serve(unix(path), environ={"SIDECAR__SETTINGS__LISTEN__UNIX_SOCKET_MODE": "0640"})
    assert mode_of(path) == 0o640


async def test_the_admin_socket_gets_its_mode_the_same_way(serve: Serve) -> None:
    admin = admin_socket()
    running = await serve({"policy": echo_policy(), "settings": {"admin": admin}})
    assert mode_of(Path(admin["unix_socket"])) == 0o600
    assert running.admin_channel is not None


class Recording:
    """A real grpc.aio server that records the socket's mode the moment gRPC has bound it."""

    def __init__(self, path: Path) -> None:
        self.server = grpc.aio.server()
        self.path = path
        self.seen: int | None = None

    def add_insecure_port(self, address: str) -> int:
        port = self.server.add_insecure_port(address)
        self.seen = stat.S_IMODE(os.lstat(self.path).st_mode)
        return port


@pytest.mark.parametrize("mode", [0o660, 0o666, 0o600, 0o640, 0o000])
async def test_the_socket_is_never_wider_than_its_mode_not_even_while_it_is_bound(
    sock_dir: Path, mode: int
) -> None:
    path = sock_dir / "s.sock"
    old = os.umask(0)  # the widest umask a process could have: the socket would be 0777
    try:
        recording = Recording(path)
        claim = bind_unix_socket(recording, path, mode=mode)  # type: ignore[arg-type]
    finally:
        os.umask(old)
    assert recording.seen is not None and recording.seen & ~mode == 0, oct(recording.seen)
    assert recording.seen & ~0o600 == 0  # at most the owner, until the mode is set
    assert mode_of(path) == mode
    assert os.umask(old) == old  # the process's umask is back as it was
    await recording.server.stop(0)
    claim.release()


def refused(path: Path, tmp_path: Path) -> str:
    listen = {"address": "127.0.0.1:0", "unix_socket": str(path)}
    settings = {"listen": listen, "telemetry": quiet_telemetry(tmp_path)}
    cfg = make_config({"policy": echo_policy(), "settings": settings}, {}, tmp_path)
    with pytest.raises(SocketPathError) as info:
        build_server(cfg)
    return str(info.value)


async def test_a_path_too_long_for_a_unix_socket_is_refused_naming_it(tmp_path: Path) -> None:
    """gRPC's own failure was reported as `cannot serve on 127.0.0.1:...`, the TCP address."""
    long_dir = tmp_path / ("d" * 100)
    long_dir.mkdir()
    assert "bytes long; a Unix socket path holds at most 107" in refused(long_dir / "sidecar.sock", tmp_path)
    assert not list(long_dir.iterdir())  # nothing made there, not even the lock file


async def test_a_regular_file_at_the_path_is_refused_and_left_alone(sock_dir: Path, tmp_path: Path) -> None:
    path = sock_dir / "sidecar.sock"
    path.write_text("precious")
    assert "not a socket" in refused(path, tmp_path)
    assert path.read_text() == "precious"


async def test_a_symlink_is_never_followed_or_removed(sock_dir: Path, tmp_path: Path) -> None:
    target = sock_dir / "target.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(target))  # a socket nobody listens on: would be removed if it were the path
    path = sock_dir / "sidecar.sock"
    path.symlink_to(target)
    assert "symbolic link" in refused(path, tmp_path)
    assert path.is_symlink() and os.readlink(path) == str(target)
    assert stat.S_ISSOCK(os.lstat(target).st_mode)
    dangling = sock_dir / "dangling.sock"
    dangling.symlink_to(sock_dir / "nowhere")
    assert "symbolic link" in refused(dangling, tmp_path)
    assert dangling.is_symlink()


async def test_a_directory_at_the_path_is_refused(sock_dir: Path, tmp_path: Path) -> None:
    path = sock_dir / "sidecar.sock"
    path.mkdir()
    assert "not a socket" in refused(path, tmp_path)
    assert path.is_dir()


async def test_a_socket_someone_listens_on_is_left_to_them(sock_dir: Path, tmp_path: Path) -> None:
    path = sock_dir / "sidecar.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as owner:
        owner.bind(str(path))
        owner.listen(8)
        assert "another process is listening" in refused(path, tmp_path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:  # the owner still has it
            client.connect(str(path))
            owner.settimeout(10)
            accepted = [owner.accept()[0] for _ in range(2)]  # the check's probe, then this client
            for conn in accepted:
                conn.close()


async def test_a_stale_socket_is_replaced(serve: Serve, sock_dir: Path) -> None:
    path = sock_dir / "sidecar.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))  # left behind by a sidecar that was killed: bound, nobody listening
    os.chmod(path, 0o777)
    await serve(unix(path))
    assert mode_of(path) == 0o660
    await list_models(path)


async def test_a_second_sidecar_on_the_same_socket_is_refused_and_the_first_keeps_serving(
    serve: Serve, sock_dir: Path, tmp_path: Path
) -> None:
    path = sock_dir / "sidecar.sock"
    await serve(unix(path))
    assert "another sidecar holds its lock file" in refused(path, tmp_path)
    await list_models(path)


async def test_two_sidecars_starting_at_once_cannot_both_take_the_path(
    sock_dir: Path, tmp_path: Path
) -> None:
    """The first holds the path's lock before it has bound anything: the second is refused even though
    nothing is at the path yet (without the lock it would pass the checks and replace the first's
    socket), and it creates nothing there."""
    path = sock_dir / "sidecar.sock"
    first = claim_socket_path(path)
    try:
        assert "another sidecar holds its lock file" in refused(path, tmp_path)
        assert not path.exists()
    finally:
        first.release()
    claim_socket_path(path).release()  # released: the path can be taken again


async def test_a_stopped_sidecar_gives_the_path_to_the_next_one(serve: Serve, sock_dir: Path) -> None:
    path = sock_dir / "sidecar.sock"
    first = await serve(unix(path))
    await first.sidecar.stop(0)
    await serve(unix(path))
    await list_models(path)


async def test_a_lock_file_that_is_a_symlink_is_refused_and_not_followed(
    sock_dir: Path, tmp_path: Path
) -> None:
    path, target = sock_dir / "sidecar.sock", tmp_path / "elsewhere"
    (sock_dir / "sidecar.sock.lock").symlink_to(target)
    assert "cannot be used as the socket's lock file" in refused(path, tmp_path)
    assert not target.exists() and not path.exists()
