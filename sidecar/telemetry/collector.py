"""The gauges read at scrape time from the objects that own the state (breakers, probe health,
deployment capacities, the key cache, the ledger queue): nothing of it is pushed per call."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass(frozen=True, slots=True)
class DeploymentView:
    """What the collector reads of one deployment at scrape time."""

    breaker_state: str  # closed | open | half_open
    healthy: bool
    in_flight: int
    capacity: tuple[int, int] | None = None  # (holding a slot, waiting) when it has a capacity


BREAKER_STATES = ("closed", "open", "half_open")


class SidecarCollector(Collector):
    """Gauges read at scrape time from the objects that own the state: nothing on the hot path."""

    def __init__(
        self,
        deployments: Callable[[], Mapping[str, DeploymentView]],
        key_cache: Callable[[], tuple[int, int] | None],
        ledger_depth: Callable[[], int | None],
    ) -> None:
        self._deployments, self._key_cache, self._ledger_depth = deployments, key_cache, ledger_depth

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "sidecar_breaker_state", "1 for the breaker's current state, per deployment.",
            labels=("deployment", "state"),
        )  # fmt: skip
        healthy = GaugeMetricFamily(
            "sidecar_deployment_healthy", "1 when the health probes call the deployment healthy.",
            labels=("deployment",),
        )  # fmt: skip
        in_flight = GaugeMetricFamily(
            "sidecar_deployment_in_flight", "Upstream attempts in flight, per deployment.",
            labels=("deployment",),
        )  # fmt: skip
        running = GaugeMetricFamily(
            "sidecar_deployment_admission_running_calls",
            "Calls holding a slot of a deployment with a capacity (policy.admission.deployments).",
            labels=("deployment",),
        )
        waiting = GaugeMetricFamily(
            "sidecar_deployment_admission_queue_depth",
            "Calls waiting for a slot of a deployment with a capacity, all priorities.",
            labels=("deployment",),
        )
        for name, view in sorted(self._deployments().items()):
            for s in BREAKER_STATES:
                state.add_metric((name, s), 1.0 if view.breaker_state == s else 0.0)
            healthy.add_metric((name,), 1.0 if view.healthy else 0.0)
            in_flight.add_metric((name,), float(view.in_flight))
            if view.capacity is not None:
                running.add_metric((name,), float(view.capacity[0]))
                waiting.add_metric((name,), float(view.capacity[1]))
        yield from (state, healthy, in_flight, running, waiting)
        if (cache := self._key_cache()) is not None:
            lookups = CounterMetricFamily(
                "sidecar_key_cache_lookups", "Decrypted-key cache lookups, hit or miss.", labels=("result",)
            )
            lookups.add_metric(("hit",), float(cache[0]))
            lookups.add_metric(("miss",), float(cache[1]))
            yield lookups
        if (depth := self._ledger_depth()) is not None:
            yield GaugeMetricFamily(
                "sidecar_ledger_queue_depth", "Usage records waiting to be written.", value=float(depth)
            )
