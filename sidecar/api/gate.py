"""The door of every RPC: authenticate the caller, authorize the method (and tenant), and turn an
RPC's failure into its status. Nothing runs for a caller the gate refuses."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, NoReturn

import grpc

from sidecar.api.convert import credentials_from
from sidecar.api.errors import abort, internal
from sidecar.authz.catalog import method_path
from sidecar.authz.policy import Authorizer, Principal
from sidecar.core.errors import Code, SidecarError
from sidecar.telemetry.logging import RateLimitedLog

_log = logging.getLogger("sidecar.api")
# failures of the sidecar or what it depends on (a store, a key backend), not of the caller's request
_OURS = frozenset({Code.UNAVAILABLE, Code.INTERNAL, Code.DEADLINE_EXCEEDED})
Context = grpc.aio.ServicerContext[Any, Any]


class Gate:
    """Authentication and authorization for one service's methods."""

    def __init__(
        self, authorizer: Authorizer, service: str, *, refusals: RateLimitedLog | None = None
    ) -> None:
        """`refusals`: where refused and rejected calls are logged, at most a line a minute (a
        caller can send them at will; the metrics count every one); each one is logged without it."""
        self._authorizer = authorizer
        self._service = service
        self._refusals = refusals

    def refusal(self, message: str, **fields: object) -> None:
        """Log a call refused here or rejected by its servicer (a field, an undecodable request)."""
        if self._refusals is None:
            _log.info(message, extra=fields)
        else:
            self._refusals.info(message, extra=fields)

    async def admit(
        self,
        context: Context,
        method: str,
        tenant: str | None,
        on_refused: Callable[[SidecarError], None] | None = None,
    ) -> Principal:
        """The caller, or the call aborted with UNAUTHENTICATED / PERMISSION_DENIED (told to
        `on_refused` first: the generation servicer counts it in the metrics)."""
        try:
            principal = self._authorizer.authenticate(credentials_from(context.invocation_metadata()))
            self._authorizer.authorize(principal, method_path(self._service, method), tenant)
        except SidecarError as err:
            self.refusal("call refused", reason=err.reason, rpc=method)
            if on_refused is not None:
                on_refused(err)
            await abort(context, err)
        return principal


async def rpc_failure(context: Context, exc: BaseException, rpc: str) -> NoReturn:
    """The failure of an RPC other than a generation: classified errors go out as they are (those of
    the sidecar's side, a store or key backend unavailable, logged as a warning: otherwise only the
    caller saw them); anything else (a store I/O error, a bug) is INTERNAL, logged with the RPC's name."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc
    if isinstance(exc, SidecarError):
        if exc.code in _OURS:  # the operator's to see too, not only the caller's
            _log.warning("%s failed: %s", rpc, exc.message, extra={"reason": exc.reason, "rpc": rpc})
        await abort(context, exc)
    request_id = os.urandom(16).hex()
    _log.error("%s crashed", rpc, exc_info=exc, extra={"request_id": request_id})
    await abort(context, internal(request_id))
