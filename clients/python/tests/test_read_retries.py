"""GetQuota, ListModels, Feedback and GetExperimentReport take a retry policy too, as Go's WithRetry
retries them: each is safe to repeat (reads, and a score whose repeat is `already_recorded`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import grpc.aio

import orchestrator_client as oc

POLICY = oc.RetryPolicy(max_backoff=timedelta(milliseconds=1), random=lambda: 0.0)


class _FailFirst:
    """Stands in for a stub: the first call of `name` fails UNAVAILABLE before reaching the sidecar."""

    def __init__(self, stub: Any, name: str, *, aio: bool) -> None:
        self._stub, self._name, self._aio, self.calls = stub, name, aio, 0

    def __getattr__(self, attr: str) -> Any:
        method = getattr(self._stub, attr)
        if attr != self._name:
            return method

        def call(request: Any, **kw: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                metadata = grpc.aio.Metadata()
                err = grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, metadata, metadata, "connecting")
                if not self._aio:
                    raise err

                async def failed() -> Any:
                    raise err

                return failed()
            return method(request, **kw)

        return call


async def test_async_reads_are_retried_with_a_policy(sidecar: str, contract: dict[str, Any]) -> None:
    async with oc.AsyncClient(sidecar, token=contract["token"]) as client:
        quota = client.quota = _FailFirst(client.quota, "GetQuota", aio=True)  # type: ignore[assignment]
        await client.get_quota("py-reads", "u", timeout=10, retry_policy=POLICY)
        models = client.generation = _FailFirst(client.generation, "ListModels", aio=True)  # type: ignore[assignment]
        assert (await client.list_models(timeout=10, retry_policy=POLICY)).routes
    assert (quota.calls, models.calls) == (2, 2)


def test_sync_reads_are_retried_with_a_policy_and_not_without(sidecar: str, contract: dict[str, Any]) -> None:
    with oc.Client(sidecar, token=contract["token"]) as client:
        stub = client.quota
        retried = client.quota = _FailFirst(stub, "GetQuota", aio=False)  # type: ignore[assignment]
        client.get_quota("py-reads", "u", timeout=10, retry_policy=POLICY)
        once = client.quota = _FailFirst(stub, "GetQuota", aio=False)  # type: ignore[assignment]
        try:
            client.get_quota("py-reads", "u", timeout=10)
            raise AssertionError("without a policy the first attempt's error is the call's")
        except oc.UnavailableError:
            pass
    assert (retried.calls, once.calls) == (2, 1)
