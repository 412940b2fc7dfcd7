"""A listening TCP socket for a `host:port` the operator wrote: the health/metrics port and the
injector's webhook bind through here, so "every address" means the same on both.

"" or "::" is every address, IPv6 and IPv4 on one dual-stack socket (IPV6_V6ONLY off whatever the
host's default, so one port: on an IPv6 cluster the kubelet reaches the pod's IPv6 address, on an
IPv4 one its IPv4 address), or IPv4 alone ("0.0.0.0") where the kernel has no IPv6 (no IPv6
socket, or "::" cannot be bound). "0.0.0.0" is every IPv4 address only. Any other host is bound at
its first address.
"""

from __future__ import annotations

import errno
import socket

EVERY_ADDRESS = ("", "::")
_NO_IPV6 = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)


def split_address(address: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or `:port` -> (host without brackets, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def listening_socket(host: str, port: int, *, backlog: int = socket.SOMAXCONN) -> socket.socket:
    """A bound, listening, blocking socket with SO_REUSEADDR (port 0: any free one); OSError when
    the address cannot be bound."""
    if host in EVERY_ADDRESS:
        try:
            return _listen(socket.AF_INET6, ("::", port), backlog, dual_stack=True)
        except OSError as exc:  # no IPv6 in this kernel (or it is disabled): every IPv4 address
            if exc.errno not in _NO_IPV6:
                raise  # the port is taken, or not ours to bind: so it is on IPv4 too
            return _listen(socket.AF_INET, ("0.0.0.0", port), backlog)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, *_, sockaddr = infos[0]
    return _listen(family, sockaddr, backlog)


def _listen(
    family: int, where: tuple[object, ...], backlog: int, *, dual_stack: bool = False
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if dual_stack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(where)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock
