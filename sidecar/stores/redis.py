"""The one Redis client factory, and the one place Redis errors are classified.

`RedisEndpoint` is a store's resolved connection settings (URL, ACL user and password, TLS files,
timeouts); `connect()` builds a `redis.asyncio.Redis` from it (imported lazily: the `redis` extra
costs nothing unless a store uses it). `RedisOps` runs each operation of a store with a timeout of
min(the store's per-operation timeout, the call's remaining deadline) and turns every failure into
a `StoreError` subclass (see `stores/errors.py`), counting it through an optional observer.

Retries: the client retries a failed connection at most `retries` times (0 for stores whose
operations are not idempotent, such as quota reservations); a timeout is never retried, because the
command may have run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from sidecar.config.redis import RedisConnectionConfig
from sidecar.config.secrets import SecretRef
from sidecar.core.clock import Clock, Deadline, SystemClock
from sidecar.stores.errors import (
    StoreAuthError,
    StoreCommandError,
    StoreError,
    StoreFullError,
    StoreReadOnlyError,
    StoreTimeoutError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

T = TypeVar("T")
ErrorObserver = Callable[[str], None]  # called with the operation that failed
# Error replies redis-py has no class for, by their first word (the error code); the rest are
# StoreCommandError.
_REPLY_KINDS: dict[str, type[StoreError]] = {
    "READONLY": StoreReadOnlyError,
    "OOM": StoreFullError,
    "NOAUTH": StoreAuthError,
    "WRONGPASS": StoreAuthError,
    "NOPERM": StoreAuthError,
    "LOADING": StoreUnavailableError,
    "BUSY": StoreUnavailableError,
    "MASTERDOWN": StoreUnavailableError,
    "TRYAGAIN": StoreUnavailableError,
    "CLUSTERDOWN": StoreUnavailableError,
    "MOVED": StoreUnavailableError,
    "ASK": StoreUnavailableError,
}


@dataclass(frozen=True, slots=True)
class RedisEndpoint:
    """Everything needed to connect; `password` is resolved from its secret reference."""

    url: str
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    check_hostname: bool = True
    connect_timeout: float = 2.0
    timeout: float = 1.0
    max_connections: int = 128

    def __repr__(self) -> str:  # the URL may hold a password
        return f"RedisEndpoint(host={_host(self.url)!r})"

    @classmethod
    def of(
        cls,
        url: str,
        options: RedisConnectionConfig,
        secret: Callable[[SecretRef | None], SecretStr | None],
        *,
        default_timeout: float,
    ) -> RedisEndpoint:
        tls = options.tls
        if tls is not None:
            _check_tls_files(tls.ca_file, tls.cert_file, tls.key_file)
        return cls(
            url=url,
            username=options.username,
            password=secret(options.password),
            ca_file=tls.ca_file if tls else None,
            cert_file=tls.cert_file if tls else None,
            key_file=tls.key_file if tls else None,
            check_hostname=tls.check_hostname if tls else True,
            connect_timeout=options.connect_timeout_seconds,
            timeout=options.timeout_seconds or default_timeout,
            max_connections=options.max_connections,
        )


def _check_tls_files(ca_file: Path | None, cert_file: Path | None, key_file: Path | None) -> None:
    """Load a store's TLS files once when the store is built (serve's start): one that cannot be
    loaded is a RuntimeError naming it. They were first read at the first connection, so every store
    operation failed as 'unavailable (ConnectionError)' and a quota store's failures let calls
    through (on_store_error: fail_open), the file named nowhere."""
    import ssl

    path = ca_file
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if cert_file is not None:
            path = cert_file
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        why = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise RuntimeError(f"redis.tls: {path}: cannot load ({why})") from None


def connect(endpoint: RedisEndpoint, *, decode_responses: bool = False, retries: int = 0) -> Redis:
    """A pooled client for `endpoint` (connections are made on first use). With every connection
    busy, an operation waits for one, at most the operation's timeout: more calls in flight than
    `max_connections` while Redis is slow are a wait, not a store that is down."""
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    kwargs: dict[str, Any] = {
        "socket_timeout": endpoint.timeout,
        "socket_connect_timeout": endpoint.connect_timeout,
        "retry_on_timeout": False,
        "retry": Retry(NoBackoff(), retries),
        "decode_responses": decode_responses,
        "max_connections": endpoint.max_connections,
        "timeout": endpoint.timeout,  # the wait for a free connection
    }
    if endpoint.username is not None:
        kwargs["username"] = endpoint.username
    if endpoint.password is not None:
        kwargs["password"] = endpoint.password.get_secret_value()
    if endpoint.url.startswith("rediss://"):
        kwargs.update(ssl_cert_reqs="required", ssl_check_hostname=endpoint.check_hostname)
        for name, path in (
            ("ssl_ca_certs", endpoint.ca_file),
            ("ssl_certfile", endpoint.cert_file),
            ("ssl_keyfile", endpoint.key_file),
        ):
            if path is not None:
                kwargs[name] = str(path)
    pool = BlockingConnectionPool.from_url(endpoint.url, **kwargs)
    client: Redis = Redis.from_pool(pool)  # the client owns the pool: aclose() closes it
    return client


def classify(exc: BaseException) -> StoreError:
    """The StoreError for a redis-py exception, an OSError or a timeout."""
    from redis import exceptions as rx

    kind: type[StoreError]
    if isinstance(exc, rx.TimeoutError | TimeoutError):
        kind = StoreTimeoutError
    elif isinstance(
        exc, rx.AuthenticationError | rx.AuthenticationWrongNumberOfArgsError | rx.NoPermissionError
    ):
        kind = StoreAuthError
    elif isinstance(exc, rx.ReadOnlyError):
        kind = StoreReadOnlyError
    elif isinstance(exc, rx.OutOfMemoryError):
        kind = StoreFullError
    elif isinstance(exc, rx.ConnectionError | rx.BusyLoadingError | OSError):
        kind = StoreUnavailableError
    elif isinstance(exc, rx.ResponseError):
        kind = _REPLY_KINDS.get(str(exc).split(" ", 1)[0].upper(), StoreCommandError)
    else:
        kind = StoreCommandError
    return kind(f"Redis: {kind.kind} ({type(exc).__name__})")


class RedisOps:
    """One store's client: runs its operations bounded and classified."""

    def __init__(
        self,
        endpoint: RedisEndpoint,
        *,
        decode_responses: bool = False,
        retries: int = 0,
        observer: ErrorObserver | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.client: Redis = connect(endpoint, decode_responses=decode_responses, retries=retries)
        self._observer, self._clock = observer, clock or SystemClock()

    async def run(self, op: str, work: Callable[[], Awaitable[T]], *, deadline: Deadline | None = None) -> T:
        """`work()` within min(timeout, the deadline's remaining time); failures as StoreError."""
        async with self.bounded(op, deadline=deadline):
            return await work()
        raise AssertionError("unreachable: bounded() re-raises")  # pragma: no cover

    @asynccontextmanager
    async def bounded(self, op: str, *, deadline: Deadline | None = None) -> AsyncIterator[None]:
        """The block within min(timeout, the deadline's remaining time); failures as StoreError."""
        from redis.exceptions import RedisError

        budget = self.endpoint.timeout
        remaining = deadline.remaining() if deadline is not None else None
        if remaining is not None:
            budget = max(0.0, min(budget, remaining))
        try:
            async with self._clock.timeout(budget):
                yield
        except (RedisError, OSError, TimeoutError) as exc:
            err = classify(exc)
            if self._observer is not None:
                self._observer(op)
            raise err from exc

    async def aclose(self) -> None:
        await self.client.aclose()


def _host(url: str) -> str:
    return url.partition("://")[2].rpartition("@")[2].partition("/")[0]
