"""Active health probes: one background loop per deployment, a health verdict request code reads.

Each loop waits a jittered interval, then probes (a zero-cost call such as a model listing: no
tokens, no quota). Health changes only on streaks: `unhealthy_after` consecutive failures mark a
deployment down, `healthy_after` consecutive successes bring it back. Everything starts healthy.
A probe answers reachability: an upstream that answers, even refusing the credential or rate-limiting
the call, is reachable (its rate limits are the breaker's, which generation traffic informs).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import (
    ProviderAuthError,
    ProviderRateLimitedError,
    SidecarError,
    UpstreamBusyError,
)
from sidecar.core.tasks import cancel_and_wait
from sidecar.providers.base import Provider

_log = logging.getLogger("sidecar.routing")

Probe = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ProbePolicy:
    interval_seconds: float = 15.0
    jitter_ratio: float = 0.2  # each wait is interval * uniform(1 - j, 1 + j)
    timeout_seconds: float = 5.0
    unhealthy_after: int = 2  # consecutive failures -> unhealthy
    healthy_after: int = 3  # consecutive successes -> healthy again

    def __post_init__(self) -> None:
        if self.interval_seconds <= 0 or self.timeout_seconds <= 0:
            raise ValueError("probe interval and timeout must be positive")
        if not 0 <= self.jitter_ratio < 1:
            raise ValueError("probe jitter_ratio must be in [0, 1)")
        if self.unhealthy_after < 1 or self.healthy_after < 1:
            raise ValueError("probe thresholds must be at least 1")


@dataclass(frozen=True, slots=True)
class ProbeStatus:
    """One deployment's probe record. `last_error` is the most recent failure, kept after recovery."""

    healthy: bool = True
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    last_error: str | None = None
    last_probe_at: float | None = None  # wall time
    probes: int = 0


class HealthProber:
    """Probes every deployment in the background; `healthy(name)` is the verdict, never blocking."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        policy: ProbePolicy,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self._probes = dict(probes)
        self._policy, self._clock, self._rng = policy, clock, rng
        self._status = {name: ProbeStatus() for name in self._probes}
        self._task: asyncio.Task[None] | None = None

    def healthy(self, deployment: str) -> bool:
        """Unknown or not yet probed counts as healthy: probes only ever take a deployment out."""
        return self.status(deployment).healthy

    def status(self, deployment: str) -> ProbeStatus:
        return self._status.get(deployment, ProbeStatus())

    async def probe_once(self, deployment: str) -> None:
        """Probe one deployment (bounded by the policy's timeout) and record the outcome.

        A failed probe is recorded, never raised; only a name it was not given raises (KeyError).
        """
        probe, timeout = self._probes[deployment], self._policy.timeout_seconds
        error: str | None = None
        try:
            async with self._clock.timeout(timeout):
                await probe()
        except TimeoutError:
            error = f"probe timed out after {timeout:g}s"
        except ProviderAuthError:
            pass  # it answered: reachable. Credentials are a configuration matter (and user-key-only
            # deployments have no platform key to probe with), not the health of the endpoint
        except ProviderRateLimitedError:
            pass  # a 429 answered with the credential accepted: reachable. Its limit (often the model
            # list's own) is not a health verdict; the breaker pauses generation on generation's 429s
        except UpstreamBusyError:  # the sidecar's own connections are all in use: no verdict on it
            return
        except SidecarError as exc:  # classified, and its message already redacted
            error = f"{exc.reason}: {exc.message}"
        except Exception as exc:  # a failure is state; only the type is kept, never foreign text
            error = type(exc).__name__
        self._record(deployment, error)

    async def run(self) -> None:
        """Probe every deployment until cancelled; cancelling stops every loop before this returns.

        With nothing to probe it returns at once.
        """
        async with asyncio.TaskGroup() as group:
            for name in self._probes:
                group.create_task(self._loop(name), name=f"probe:{name}")

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="health-prober")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self, deployment: str) -> None:
        while True:
            await self._clock.sleep(self._next_wait())
            await self.probe_once(deployment)

    def _next_wait(self) -> float:
        j = self._policy.jitter_ratio
        return self._policy.interval_seconds * self._rng.uniform(1 - j, 1 + j)

    def _record(self, deployment: str, error: str | None) -> None:
        old = self._status[deployment]
        if error is None:
            failures, successes = 0, old.consecutive_successes + 1
            healthy = old.healthy or successes >= self._policy.healthy_after
        else:
            failures, successes = old.consecutive_failures + 1, 0
            healthy = old.healthy and failures < self._policy.unhealthy_after
        self._status[deployment] = ProbeStatus(
            healthy=healthy,
            consecutive_failures=failures,
            consecutive_successes=successes,
            last_error=error if error is not None else old.last_error,
            last_probe_at=self._clock.wall(),
            probes=old.probes + 1,
        )
        if healthy and not old.healthy:
            _log.info("deployment healthy again", extra={"deployment": deployment, "healthy": True})
        elif old.healthy and not healthy:
            fields = {"deployment": deployment, "healthy": False, "error": error}
            _log.warning("deployment unhealthy: %s", error, extra=fields)


def provider_probes(
    providers: Mapping[str, Provider], *, policy: ProbePolicy, clock: Clock
) -> Mapping[str, Probe]:
    """Each provider's `probe`, with a fresh Deadline of the policy's timeout per probe."""

    def bind(provider: Provider) -> Probe:
        async def probe() -> None:
            await provider.probe(deadline=Deadline.after(policy.timeout_seconds, clock))

        return probe

    return {name: bind(provider) for name, provider in providers.items()}
