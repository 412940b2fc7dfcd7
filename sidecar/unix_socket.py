"""A gRPC server's Unix socket, bound safely: an explicit file mode with no moment where the socket is
more permissive than it, and a path that is never followed, never a file we delete by mistake.

    claim = bind_unix_socket(server, Path("/run/sidecar/sidecar.sock"), mode=0o660)
    ...  # serve; after the server has stopped:
    claim.release()

First the sidecar takes an exclusive lock on `<path>.lock` beside the socket and holds it until
`release()` (or its exit: the kernel drops the lock of a process that dies), so two sidecars started
at once on one path cannot both pass the checks below and the second replace the first one's socket.
Then the path must be free: nothing there; or a socket that nobody listens on (left by a
sidecar that was killed), which is removed. A socket that answers belongs to a running process and
a regular file, a directory or a symbolic link is someone else's: the server refuses to start
(`SocketPathError`) and leaves the path as it found it. gRPC itself would remove any socket there, a
live one too, and follows a symbolic link to find out: the checks here run first.

The socket is created under a umask that leaves at most the owner's read and write bits of `mode`
(the process's other threads create nothing more permissive meanwhile), then set to `mode` exactly.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import grpc

_OWNER_RW = 0o600
MAX_PATH_BYTES = 107  # sun_path holds 108 bytes with the terminating NUL (Linux)


class SocketPathError(RuntimeError):
    """The Unix socket path cannot be used: another process's socket, or not a socket at all."""


class SocketClaim:
    """The lock on a socket path, held while a server may use it: `release()` after the server stopped.
    Dropped unreleased (a server that failed to build), its file closes and the lock goes with it."""

    def __init__(self, lock: io.FileIO) -> None:
        self._lock = lock

    def release(self) -> None:
        self._lock.close()


def claim_socket_path(path: Path) -> SocketClaim:
    """The exclusive lock on `<path>.lock` (created owner-only, never through a symbolic link), or
    SocketPathError when another sidecar holds it or it cannot be a lock file."""
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, _OWNER_RW)
    except OSError as err:
        raise SocketPathError(f"{lock}: cannot be used as the socket's lock file ({err.strerror})") from None
    handle = io.FileIO(fd, "r+")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SocketPathError(f"{path}: another sidecar holds its lock file {lock}") from None
    return SocketClaim(handle)


def bind_unix_socket(server: grpc.aio.Server, path: Path, *, mode: int) -> SocketClaim:
    """Add `unix:<path>` to `server` with file mode `mode` (before the server starts); the claim on the
    path is the caller's to release once the server has stopped."""
    if (size := len(os.fsencode(path))) > MAX_PATH_BYTES:  # gRPC's own error named the TCP address
        raise SocketPathError(
            f"{path} is {size} bytes long; a Unix socket path holds at most {MAX_PATH_BYTES}"
        )
    claim = claim_socket_path(path)
    try:
        free_socket_path(path)
        with _umask(0o777 & ~(mode & _OWNER_RW)):
            server.add_insecure_port(f"unix:{path}")
        if not stat.S_ISSOCK(os.lstat(path).st_mode):  # replaced between bind and here: not ours to touch
            raise SocketPathError(f"{path} is no longer the socket just bound")
        os.chmod(path, mode)
    except BaseException:
        claim.release()
        raise
    return claim


def free_socket_path(path: Path) -> None:
    """Nothing at `path` afterwards, or SocketPathError (and `path` untouched)."""
    try:
        found = os.lstat(path)  # the link itself, never its target
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode):
        raise SocketPathError(f"{path} is a symbolic link: refusing to follow or remove it")
    if not stat.S_ISSOCK(found.st_mode):
        raise SocketPathError(f"{path} exists and is not a socket: refusing to remove it")
    if listening(path):
        raise SocketPathError(f"{path}: another process is listening on this socket")
    path.unlink(missing_ok=True)  # a stale socket: its server is gone


def listening(path: Path) -> bool:
    """Whether the socket at `path` may have a listener: only a refused connection (or a socket gone
    meanwhile) says it has none; success, a full backlog or no permission to try all count as one."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        code = probe.connect_ex(str(path))
    return code not in (errno.ECONNREFUSED, errno.ENOENT)


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)
