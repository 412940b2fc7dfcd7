"""What routing has observed of each deployment: in-flight calls, EWMA latencies, p95 to first token.

Written by the route layer as attempts start and end; read by strategies, hedging and ListModels.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

EWMA_ALPHA = 0.3  # weight of the newest sample
TTFT_SAMPLES = 128  # recent first-token times kept for the p95


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    in_flight: int
    ewma_ttft: float | None
    ewma_total: float | None
    p95_ttft: float | None
    last_error: str | None
    last_error_at: float | None


class DeploymentStats:
    def __init__(self) -> None:
        self.in_flight = 0
        self.ewma_ttft: float | None = None
        self.ewma_total: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._ttfts: deque[float] = deque(maxlen=TTFT_SAMPLES)

    def started(self) -> None:
        self.in_flight += 1

    def first_token(self, seconds: float) -> None:
        self.ewma_ttft = _ewma(self.ewma_ttft, seconds)
        self._ttfts.append(seconds)

    def no_first_token(self, seconds: float) -> None:
        """An attempt timed out after `seconds` with no first token: its time to first token is at
        least that, so the average moves as with a sample of it (a deployment that turned slow past
        the timeout no longer keeps the fast average it had). The p95 hedging waits for is of first
        tokens that came; a timeout is not one."""
        self.ewma_ttft = _ewma(self.ewma_ttft, seconds)

    def finished(self, seconds: float, *, ok: bool, error: str | None, at: float) -> None:
        """An attempt ended: successes feed the latency average; the deployment's own failures
        (not a caller's bad request, cancellation or key) become its last error."""
        self.in_flight -= 1
        if ok:
            self.ewma_total = _ewma(self.ewma_total, seconds)
        elif error is not None:
            self.last_error, self.last_error_at = error, at

    def p95_ttft(self) -> float | None:
        if len(self._ttfts) < 5:
            return None
        ordered = sorted(self._ttfts)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]

    def snapshot(self) -> StatsSnapshot:
        return StatsSnapshot(
            self.in_flight,
            self.ewma_ttft,
            self.ewma_total,
            self.p95_ttft(),
            self.last_error,
            self.last_error_at,
        )


class Stats:
    """One DeploymentStats per deployment name, created on first use."""

    def __init__(self) -> None:
        self._by_name: dict[str, DeploymentStats] = {}

    def get(self, deployment: str) -> DeploymentStats:
        stats = self._by_name.get(deployment)
        if stats is None:
            stats = self._by_name[deployment] = DeploymentStats()
        return stats


def _ewma(previous: float | None, sample: float) -> float:
    return sample if previous is None else EWMA_ALPHA * sample + (1 - EWMA_ALPHA) * previous
