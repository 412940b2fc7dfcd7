"""The one listening-socket helper of the health/metrics port and the injector's webhook
(sidecar/core/listen.py): "" and "::" are every address, IPv6 and IPv4 on one port."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

import pytest

from sidecar.core.listen import listening_socket, split_address
from sidecar.telemetry.metrics import Metrics
from sidecar.telemetry.server import MetricsServer

pytestmark = pytest.mark.integration  # real sockets


def ipv6_loopback() -> bool:
    """Whether this machine has ::1 (a container may run without IPv6): the IPv6 half of the
    every-address checks needs it; their IPv4 half runs everywhere."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


LOOPBACKS = [("127.0.0.1", socket.AF_INET), *([("::1", socket.AF_INET6)] if ipv6_loopback() else [])]


def reaches(host: str, family: int, port: int) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        return client.connect_ex((host, port)) == 0


@pytest.fixture
def listening(request: pytest.FixtureRequest) -> Iterator[socket.socket]:
    sock = listening_socket(request.param, 0)
    try:
        yield sock
    finally:
        sock.close()


@pytest.mark.parametrize("listening", ["", "::"], indirect=True)
def test_every_address_is_ipv6_and_ipv4_on_one_port(listening: socket.socket) -> None:
    port = listening.getsockname()[1]
    assert [reaches(host, family, port) for host, family in LOOPBACKS] == [True] * len(LOOPBACKS)


@pytest.mark.parametrize("listening", ["127.0.0.1", "0.0.0.0"], indirect=True)
def test_an_ipv4_address_is_that_address_only(listening: socket.socket) -> None:
    assert listening.family == socket.AF_INET
    assert reaches("127.0.0.1", socket.AF_INET, listening.getsockname()[1])


def test_a_port_taken_on_ipv4_is_an_error_not_ipv6_alone() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as refused:
            listening_socket("::", port)
        assert refused.value.errno == errno.EADDRINUSE


def test_without_ipv6_in_the_kernel_every_address_is_every_ipv4_one(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.socket

    def no_ipv6(family: int = socket.AF_INET, *args: object) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real(family, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "socket", no_ipv6)
    sock = listening_socket("::", 0)
    monkeypatch.undo()
    with sock:
        assert sock.family == socket.AF_INET and sock.getsockname()[0] == "0.0.0.0"
        assert reaches("127.0.0.1", socket.AF_INET, sock.getsockname()[1])


def test_addresses_are_split_as_the_operator_writes_them() -> None:
    assert split_address("[::]:9090") == ("::", 9090)
    assert split_address(":9090") == ("", 9090)
    assert split_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert split_address("[fd00::1]:80") == ("fd00::1", 80)


@pytest.mark.parametrize("address", [":0", "[::]:0"])
async def test_the_metrics_port_on_every_address_answers_the_probes_on_both(address: str) -> None:
    server = MetricsServer(Metrics().registry, address)
    await server.start()
    try:
        for host, family in LOOPBACKS:
            with socket.socket(family, socket.SOCK_STREAM) as client:
                client.settimeout(5)
                client.connect((host, server.port))
                client.sendall(b"GET /readyz HTTP/1.0\r\n\r\n")
                assert client.recv(100).startswith(b"HTTP/1.0 503"), host  # answered: not serving yet
    finally:
        await server.stop()
