"""What a store failure is, whatever the client library said: one class per way it can fail.

Callers decide what each means for them (a quota store that is down fails open or closed, a history
write that fails after the answer is a warning); `kind` is a low-cardinality label for metrics and logs.
"""

from __future__ import annotations

from typing import ClassVar


class StoreError(Exception):
    """A store operation failed. The message names the failure, never keys or values."""

    kind: ClassVar[str] = "error"
    transient: ClassVar[bool] = False  # trying again later may succeed


class StoreUnavailableError(StoreError):
    """Cannot connect, connection lost, the server is loading or a cluster slot is moving."""

    kind = "unavailable"
    transient = True


class StoreTimeoutError(StoreUnavailableError):
    """No answer within the operation's timeout (or the call's deadline): it may still have run."""

    kind = "timeout"


class StoreReadOnlyError(StoreUnavailableError):
    """READONLY: the server is a replica (a failover in progress, or a wrong URL)."""

    kind = "readonly"


class StoreFullError(StoreError):
    """OOM: the server is at maxmemory and its eviction policy refuses writes."""

    kind = "full"
    transient = True


class StoreAuthError(StoreError):
    """NOAUTH, WRONGPASS or NOPERM: the configured ACL user or password is wrong or lacks a right."""

    kind = "auth"


class StoreCommandError(StoreError):
    """Any other error reply (NOSCRIPT after a flush, WRONGTYPE, a script error): a bug or a foreign key."""

    kind = "command"
