"""Where the sidecar is, which token to send, and the channel options for a localhost peer."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_ADDRESS = "127.0.0.1:50051"
ADDRESS_ENV = "ORCHESTRATOR_SIDECAR_ADDRESS"
TOKEN_ENV = "ORCHESTRATOR_SIDECAR_TOKEN"

# The largest reply a call accepts, the same in every client: the largest the sidecar may be set to
# send (embeddings.max_reply_bytes and settings.max_receive_message_bytes go up to 256 MiB, and an
# upstream's answer is relayed up to 64 MiB), so no reply of a valid configuration is refused.
DEFAULT_MAX_REPLY_BYTES = 256 * 1024 * 1024
MAX_REPLY_OPTION = "grpc.max_receive_message_length"
MAX_REPLY_LIMIT = 2**31 - 1  # the largest any client can be set to: a gRPC channel argument is an int32

# The sidecar runs next to the application (same pod or host): reconnect quickly after it restarts,
# and ping a silent connection no more often than a gRPC server allows by default (5 minutes), so a
# half-open connection is noticed without the server ever answering with GOAWAY "too_many_pings".
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
)


def channel_options(max_reply_bytes: int, extra: Sequence[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The client's channel options, then the caller's: one of the caller's replaces the client's of
    the same name (gRPC keeps the first of two, so appending it would not). `max_reply_bytes` must be
    an int from 1 to MAX_REPLY_LIMIT (ValueError naming it otherwise)."""
    if (
        isinstance(max_reply_bytes, bool)
        or not isinstance(max_reply_bytes, int)
        or not 1 <= max_reply_bytes <= MAX_REPLY_LIMIT
    ):
        raise ValueError(f"max_reply_bytes must be 1 to {MAX_REPLY_LIMIT} bytes, not {max_reply_bytes!r}")
    given = {name for name, _ in extra}
    ours = [*CHANNEL_OPTIONS, (MAX_REPLY_OPTION, max_reply_bytes)]
    return [*(o for o in ours if o[0] not in given), *extra]


@dataclass(frozen=True, slots=True)
class Connection:
    """A resolved gRPC target (host:port or unix:///path) and the bearer token, if any."""

    target: str
    token: str | None


def resolve(
    address: str | None = None, token: str | None = None, environ: Mapping[str, str] | None = None
) -> Connection:
    """Explicit arguments win, then ORCHESTRATOR_SIDECAR_ADDRESS / _TOKEN, then 127.0.0.1:50051.

    `token=""` sends no token even when the environment has one; surrounding whitespace is dropped.
    """
    env = os.environ if environ is None else environ
    chosen = address or env.get(ADDRESS_ENV) or DEFAULT_ADDRESS
    secret = env.get(TOKEN_ENV) if token is None else token
    return Connection(target=target(chosen), token=header_token(secret))


def header_token(secret: str | None) -> str | None:
    """The token as sent: without surrounding whitespace (a secret file's trailing newline), None
    when blank; a ValueError (never showing it) when a header cannot carry it, as in every client."""
    secret = (secret or "").strip()
    if any(not " " <= ch <= "~" for ch in secret):
        raise ValueError("the sidecar token has characters an HTTP header cannot carry (controls, non-ASCII)")
    return secret or None


# host:port or [v6]:port, the same forms the TypeScript and Java clients take
_HOST_PORT = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[^:\s/\[\]]+):(\d{1,5})$")


def target(address: str) -> str:
    """A gRPC target for an address: `unix:///run/s.sock` and `unix:/run/s.sock` stay as they are,
    `host:port` too; a bare absolute path is taken as a Unix socket. Anything else is a ValueError
    naming it: gRPC would take a host without a port as port 443, and every call would fail
    UNAVAILABLE as if the sidecar were down."""
    address = address.strip()
    if address.startswith("/"):
        return f"unix://{address}"
    if address.startswith("unix:"):
        path = address.removeprefix("unix:")
        if path.removeprefix("//").startswith("/"):
            return address
    elif (m := _HOST_PORT.match(address)) is not None and 1 <= int(m.group(1)) <= 65535:
        return address
    raise ValueError(f"sidecar address {address!r}: expected host:port, unix:///path or an absolute path")
