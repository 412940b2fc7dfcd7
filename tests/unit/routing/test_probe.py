"""HealthProber: the streak state machine, jittered waits, clean shutdown, bounded probes.

The state machine runs on a FakeClock; the loops on a StepClock whose sleeps only record and
yield; the timeout that bounds a hanging probe fires on virtual time.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest

from sidecar.core.errors import (
    ProviderAuthError,
    ProviderRateLimitedError,
    ProviderUnavailableError,
    UpstreamBusyError,
)
from sidecar.routing.probe import HealthProber, Probe, ProbePolicy, ProbeStatus
from tests.conftest import FakeClock
from tests.support.clock import StepClock


def scripted(outcomes: Iterable[Exception | None]) -> Probe:
    """A probe that fails with the next exception of the script, or succeeds on None."""
    script = iter(outcomes)

    async def probe() -> None:
        outcome = next(script)
        if outcome is not None:
            raise outcome

    return probe


async def ok() -> None:
    return None


def prober(probes: dict[str, Probe], clock: FakeClock, **policy: Any) -> HealthProber:
    return HealthProber(probes, policy=ProbePolicy(**policy), clock=clock, rng=random.Random(7))


DOWN = ProviderUnavailableError("upstream HTTP 503: overloaded")


async def test_everything_starts_healthy_and_unknown_is_healthy(clock: FakeClock) -> None:
    p = prober({"a": ok}, clock)
    assert p.healthy("a") and p.healthy("never-configured")
    assert p.status("a") == ProbeStatus(True, 0, 0, None, None, 0)


async def test_unhealthy_after_k_consecutive_failures(clock: FakeClock) -> None:
    p = prober({"a": scripted([DOWN, DOWN, DOWN])}, clock, unhealthy_after=2)
    await p.probe_once("a")
    assert p.healthy("a")  # one failure is not a streak
    clock.advance(15)
    await p.probe_once("a")
    assert not p.healthy("a")
    await p.probe_once("a")
    s = p.status("a")
    assert (s.healthy, s.consecutive_failures, s.consecutive_successes, s.probes) == (False, 3, 0, 3)
    assert s.last_error == "PROVIDER_UNAVAILABLE: upstream HTTP 503: overloaded"
    assert s.last_probe_at == clock.wall()


async def test_healthy_again_only_after_three_successes(clock: FakeClock) -> None:
    p = prober({"a": scripted([DOWN, DOWN, None, None, None])}, clock)
    for _ in range(2):
        await p.probe_once("a")
    assert not p.healthy("a")
    for expected_successes in (1, 2):
        await p.probe_once("a")
        assert not p.healthy("a")
        assert p.status("a").consecutive_successes == expected_successes
    await p.probe_once("a")
    s = p.status("a")
    assert s.healthy and (s.consecutive_failures, s.consecutive_successes) == (0, 3)
    assert s.last_error is not None  # the last failure stays on record after recovery


async def test_a_success_resets_the_failure_streak(clock: FakeClock) -> None:
    p = prober({"a": scripted([DOWN, None, DOWN, None, DOWN])}, clock, unhealthy_after=2)
    for _ in range(5):
        await p.probe_once("a")
        assert p.healthy("a")
    assert p.status("a").consecutive_failures == 1


async def test_a_failure_resets_the_success_streak_while_unhealthy(clock: FakeClock) -> None:
    p = prober({"a": scripted([DOWN, DOWN, None, None, DOWN, None, None])}, clock)
    for _ in range(7):
        await p.probe_once("a")
    assert not p.healthy("a")
    assert p.status("a").consecutive_successes == 2


async def test_any_exception_is_state_and_foreign_text_is_dropped(clock: FakeClock) -> None:
    p = prober({"a": scripted([RuntimeError("token sk-live-abcdef0123456789")] * 2)}, clock)
    await p.probe_once("a")
    await p.probe_once("a")
    assert not p.healthy("a")
    assert p.status("a").last_error == "RuntimeError"


async def test_transitions_are_logged_once_each_without_secrets(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    down = ProviderUnavailableError("upstream HTTP 503: overloaded")
    p = prober({"a": scripted([down, down, down, None, None, None, None])}, clock)
    with caplog.at_level(logging.INFO, logger="sidecar.routing"):
        for _ in range(7):
            await p.probe_once("a")
    records = [r for r in caplog.records if r.name == "sidecar.routing"]
    assert [(getattr(r, "deployment", None), getattr(r, "healthy", None)) for r in records] == [
        ("a", False),
        ("a", True),
    ]
    assert records[0].levelno == logging.WARNING
    assert "PROVIDER_UNAVAILABLE" in records[0].getMessage()


async def test_refused_credentials_still_mean_reachable(clock: FakeClock) -> None:
    """A user-key-only deployment has no platform key to probe with: a 401 is an answer, not an outage."""
    auth = ProviderAuthError("upstream HTTP 401: credentials refused")
    p = prober({"a": scripted([auth, auth, auth])}, clock)
    for _ in range(3):
        await p.probe_once("a")
    assert p.healthy("a") and p.status("a").consecutive_failures == 0


async def test_a_rate_limited_probe_means_reachable(clock: FakeClock) -> None:
    """A 429 is the endpoint answering with the credential accepted: reachable, its rate limit the
    breaker's matter (it pauses generation traffic for the upstream's Retry-After). Two 429s in a row
    took the deployment out of every route until three probes succeeded, 45 s and more."""
    limited = ProviderRateLimitedError("upstream HTTP 429: slow down", retry_after=3.0)
    p = prober({"a": scripted([limited, DOWN, limited, limited])}, clock)
    for _ in range(4):
        await p.probe_once("a")
        assert p.healthy("a")
    s = p.status("a")
    assert (s.consecutive_failures, s.consecutive_successes, s.probes) == (0, 2, 4)

    down_then_limited = prober({"b": scripted([DOWN, DOWN, limited, limited, None])}, clock)
    for _ in range(4):
        await down_then_limited.probe_once("b")
    assert not down_then_limited.healthy("b")  # back only on the streak, as on successes
    await down_then_limited.probe_once("b")
    assert down_then_limited.healthy("b")


async def test_a_hanging_probe_is_bounded_by_the_timeout() -> None:
    async def hang() -> None:
        await asyncio.Event().wait()

    clock = FakeClock(auto_advance=True)
    p = prober({"a": hang}, clock, timeout_seconds=0.05)
    async with asyncio.timeout(5):
        await p.probe_once("a")
    s = p.status("a")
    assert (s.consecutive_failures, s.last_error) == (1, "probe timed out after 0.05s")


async def test_waits_are_jittered_within_bounds(clock: FakeClock) -> None:
    sleep = StepClock()
    p = prober({"a": ok, "b": ok}, sleep, interval_seconds=10.0, jitter_ratio=0.25)
    await p.start()
    await sleep.waited(400)
    await p.stop()
    waits = sleep.sleeps
    assert all(7.5 <= w <= 12.5 for w in waits)
    assert min(waits) < 8.0 and max(waits) > 12.0  # spread over the whole range
    assert len(set(waits)) == len(waits)  # no two loops share a schedule


async def test_first_wait_comes_before_the_first_probe(clock: FakeClock) -> None:
    calls: list[str] = []
    sleep = StepClock()

    async def probe() -> None:
        calls.append(f"probe after {len(sleep.sleeps)} waits")

    p = prober({"a": probe}, sleep, jitter_ratio=0.0)
    await p.start()
    await sleep.waited(3)
    await p.stop()
    assert calls[:2] == ["probe after 1 waits", "probe after 2 waits"]
    assert sleep.sleeps[:3] == [15.0, 15.0, 15.0]


async def test_run_probes_every_deployment_and_stop_leaves_no_tasks(clock: FakeClock) -> None:
    counts: Counter[str] = Counter()

    def counting(name: str) -> Probe:
        async def probe() -> None:
            counts[name] += 1

        return probe

    sleep = StepClock()
    p = prober({n: counting(n) for n in "abc"}, sleep)
    before = asyncio.all_tasks()
    await p.start()
    await sleep.waited(30)
    await p.stop()
    assert set(counts) == {"a", "b", "c"} and min(counts.values()) >= 5
    assert asyncio.all_tasks() == before
    assert all(p.status(n).probes == counts[n] for n in "abc")


async def test_stop_cancels_a_probe_in_flight(clock: FakeClock) -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    p = prober({"a": hang, "b": ok}, StepClock())
    before = asyncio.all_tasks()
    await p.start()
    await asyncio.wait_for(started.wait(), 5)
    await p.stop()
    assert cancelled.is_set()
    assert asyncio.all_tasks() == before
    assert p.status("a").probes == 0  # a cancelled probe is not an outcome


async def test_cancelling_run_directly_cancels_every_loop(clock: FakeClock) -> None:
    sleep = StepClock()
    p = prober({"a": ok, "b": ok}, sleep)
    before = asyncio.all_tasks()
    task = asyncio.create_task(p.run())
    await sleep.waited(6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert asyncio.all_tasks() == before


async def test_start_twice_runs_one_task_and_stop_twice_is_fine(clock: FakeClock) -> None:
    p = prober({"a": ok}, clock)
    before = asyncio.all_tasks()
    await p.start()
    await asyncio.sleep(0)  # let run() spawn its loop
    await p.start()
    await asyncio.sleep(0)
    assert sorted(t.get_name() for t in asyncio.all_tasks() - before) == ["health-prober", "probe:a"]
    await p.stop()
    await p.stop()
    assert asyncio.all_tasks() == before


async def test_stop_passes_on_its_own_cancellation(clock: FakeClock) -> None:
    async def slow_exit() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # unwinding takes a moment, during which stop() is cancelled

    p = prober({"a": slow_exit}, clock, jitter_ratio=0.0)
    await p.start()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    stopper = asyncio.create_task(p.stop())
    await asyncio.sleep(0)
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper


@pytest.mark.parametrize(
    "bad",
    [
        {"interval_seconds": 0},
        {"timeout_seconds": -1},
        {"jitter_ratio": 1.0},
        {"jitter_ratio": -0.1},
        {"unhealthy_after": 0},
        {"healthy_after": 0},
    ],
)
def test_policy_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ProbePolicy(**bad)


async def test_a_probe_that_found_every_connection_busy_is_no_verdict(clock: FakeClock) -> None:
    """The sidecar's own connection limit says nothing about the deployment: such a probe changes
    neither its streaks nor its health (it counted as a failure, so local overload took healthy
    deployments out)."""
    busy = UpstreamBusyError("every connection this sidecar may open to the upstream is in use; retry")
    p = prober({"a": scripted([DOWN, busy, busy, busy, DOWN])}, clock, unhealthy_after=2)
    await p.probe_once("a")
    for _ in range(3):
        await p.probe_once("a")
    s = p.status("a")
    assert (s.healthy, s.consecutive_failures, s.probes) == (True, 1, 1)
    await p.probe_once("a")
    assert not p.healthy("a")


async def test_a_deployment_with_probe_false_is_never_probed() -> None:
    """A server without the model list (a 404 on the probe) was taken for unhealthy and left out of
    every route while any other deployment was healthy; probes could only be turned off for all."""
    from sidecar.config.schema import Config
    from sidecar.deps import build_prober
    from sidecar.providers.echo import EchoProvider

    policy = {
        "default_route": "r",
        "deployments": {
            "listed": {"provider": "echo", "model": "a"},
            "unlisted": {"provider": "echo", "model": "b", "probe": False},
        },
        "routes": {"r": {"deployments": ["listed", "unlisted"]}},
        "routing": {"probes": {"enabled": True}},
    }
    cfg = Config.model_validate({"policy": policy})
    clock = FakeClock()
    providers = {n: EchoProvider(d, clock=clock) for n, d in cfg.policy.deployments.items()}
    prober = build_prober(cfg, providers, clock)
    assert prober is not None
    await prober.probe_once("listed")
    with pytest.raises(KeyError):
        await prober.probe_once("unlisted")
    assert prober.healthy("unlisted")
