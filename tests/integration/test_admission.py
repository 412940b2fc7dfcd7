"""Admission control through the real server: capacity, priority queue, shedding with RetryInfo,
the caller's priority from metadata, the tier's cap, and the metrics."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import priority_pb2
from sidecar.config.load import ConfigError
from sidecar.core.priority import Priority
from tests.conftest import echo_policy, make_config, user
from tests.integration.helpers import rich
from tests.support.api import generate_request, stream_request, text_of

pytestmark = pytest.mark.integration
Serve = Callable[..., Any]


def config(**policy: Any) -> dict[str, Any]:
    # a running call lasts 1 s: room under load to queue and displace calls before it ends
    slow = {"provider": "echo", "model": "echo-1", "echo": {"first_token_delay_seconds": 1.0}}
    return {
        "policy": {
            **echo_policy(),
            "deployments": {"echo": slow},
            "admission": {"capacity": 1, "queue_size": 1, "retry_after_seconds": 3},
            **policy,
        }
    }


def request(priority: str | None = None, tenant: str = "acme", **kw: Any) -> gen.GenerateRequest:
    metadata = {"priority": priority} if priority is not None else {}
    return generate_request(
        messages=[user("hello there")], tenant_id=tenant, user_id="bob", metadata=metadata, **kw
    )


async def until(check: Callable[[], bool]) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_critical_call_displaces_a_queued_low_one_and_never_a_running_one(serve: Serve) -> None:
    running = await serve(config())
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request("LOW"), timeout=10))
    await until(lambda: queue.running == 1)
    low = asyncio.ensure_future(running.stub.Generate(request("low"), timeout=10))
    await until(lambda: queue.depth() == 1)
    critical = asyncio.ensure_future(running.stub.Generate(request("CRITICAL"), timeout=10))
    with pytest.raises(grpc.aio.AioRpcError) as shed:
        await low
    err = await rich(shed.value)
    assert err.code is grpc.StatusCode.UNAVAILABLE and err.reason == "OVERLOADED"
    assert err.retry is not None and err.retry.retry_delay.seconds == 3
    assert text_of(await first) and text_of(await critical)  # the running call finished untouched
    metrics = running.sidecar.deps.telemetry.metrics.registry
    assert metrics.get_sample_value("sidecar_admission_shed_total", {"priority": "low"}) == 1
    assert metrics.get_sample_value("sidecar_admission_wait_seconds_count", {"priority": "critical"}) == 1
    assert metrics.get_sample_value("sidecar_admission_queue_depth", {"priority": "critical"}) == 0
    assert metrics.get_sample_value("sidecar_admission_running_calls") == 0


async def test_a_full_queue_sheds_the_newcomer_of_no_higher_priority(serve: Serve) -> None:
    running = await serve(config())
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: queue.running == 1)
    waiting = asyncio.ensure_future(running.stub.Generate(request("HIGH"), timeout=10))
    await until(lambda: queue.depth() == 1)
    with pytest.raises(grpc.aio.AioRpcError) as shed:
        await running.stub.Generate(request("HIGH"), timeout=10)
    assert shed.value.code() is grpc.StatusCode.UNAVAILABLE
    await first
    await waiting


async def test_one_tenants_burst_gives_way_to_another_tenants_call_of_its_priority(serve: Serve) -> None:
    """The queue was first come, first served within a priority: a tenant whose burst filled it had
    every other tenant's call of the same priority shed at once (OVERLOADED) while the burst waited."""
    running = await serve(config(admission={"capacity": 1, "queue_size": 2, "retry_after_seconds": 3}))
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request(tenant="burst"), timeout=10))
    await until(lambda: queue.running == 1)
    burst = [asyncio.ensure_future(running.stub.Generate(request(tenant="burst"), timeout=10))]
    await until(lambda: queue.depth() == 1)
    burst.append(asyncio.ensure_future(running.stub.Generate(request(tenant="burst"), timeout=10)))
    await until(lambda: queue.depth() == 2)
    quiet = asyncio.ensure_future(running.stub.Generate(request(tenant="quiet"), timeout=10))
    with pytest.raises(grpc.aio.AioRpcError) as shed:
        await burst[1]  # the burst's latest gives way
    err = await rich(shed.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "OVERLOADED")
    metrics = running.sidecar.deps.telemetry.metrics.registry
    assert metrics.get_sample_value("sidecar_admission_queued_tenants", {"priority": "normal"}) == 2
    assert text_of(await first) and text_of(await burst[0]) and text_of(await quiet)
    assert metrics.get_sample_value("sidecar_admission_shed_total", {"priority": "normal"}) == 1
    assert metrics.get_sample_value("sidecar_admission_queued_tenants", {"priority": "normal"}) == 0


APPS = {"APP_A": "token-of-app-a-0123456789", "APP_B": "token-of-app-b-0123456789"}


def two_apps(**admission: Any) -> dict[str, Any]:
    """Two applications, each with its own credential, neither naming a tenant."""
    credentials = [
        {"name": name.lower(), "token": {"env": name}, "allow": ["GenerationService"]} for name in APPS
    ]
    return {**config(admission=admission), "settings": {"auth": {"credentials": credentials}}}


def as_app(name: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {APPS[name]}")]


async def test_calls_without_a_tenant_take_turns_by_their_credential(serve: Serve) -> None:
    """Calls with no tenant_id all counted as one tenant: one application's burst (no tenant id)
    had another application's call, on its own credential, shed at once while the burst waited."""
    running = await serve(two_apps(capacity=1, queue_size=2, retry_after_seconds=3), APPS)
    queue = running.sidecar.deps.admission

    def ask(app: str) -> Any:
        req = request(tenant="")
        return asyncio.ensure_future(running.stub.Generate(req, timeout=10, metadata=as_app(app)))

    first = ask("APP_A")
    await until(lambda: queue.running == 1)
    burst = [ask("APP_A")]
    await until(lambda: queue.depth() == 1)
    burst.append(ask("APP_A"))
    await until(lambda: queue.depth() == 2)
    other = ask("APP_B")
    with pytest.raises(grpc.aio.AioRpcError) as shed:
        await burst[1]  # the burst's latest gives way
    assert (await rich(shed.value)).reason == "OVERLOADED"
    metrics = running.sidecar.deps.telemetry.metrics.registry
    assert metrics.get_sample_value("sidecar_admission_queued_tenants", {"priority": "normal"}) == 2
    assert text_of(await first) and text_of(await burst[0]) and text_of(await other)


async def test_a_tenant_id_and_a_credential_of_the_same_name_are_apart(serve: Serve) -> None:
    """A credential's calls without a tenant never share a turn with a tenant named like it."""
    running = await serve(two_apps(capacity=1, queue_size=2, retry_after_seconds=3), APPS)
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(
        running.stub.Generate(request(tenant="app_a"), timeout=10, metadata=as_app("APP_B"))
    )
    await until(lambda: queue.running == 1)
    named = asyncio.ensure_future(
        running.stub.Generate(request(tenant="app_a"), timeout=10, metadata=as_app("APP_B"))
    )
    await until(lambda: queue.depth() == 1)
    unnamed = asyncio.ensure_future(
        running.stub.Generate(request(tenant=""), timeout=10, metadata=as_app("APP_A"))
    )
    await until(lambda: queue.depth() == 2)
    metrics = running.sidecar.deps.telemetry.metrics.registry
    assert metrics.get_sample_value("sidecar_admission_queued_tenants", {"priority": "normal"}) == 2
    assert text_of(await first) and text_of(await named) and text_of(await unnamed)


async def test_a_waiter_past_its_deadline_gets_deadline_exceeded_and_is_not_charged(serve: Serve) -> None:
    running = await serve(config())
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: queue.running == 1)
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await running.stub.Generate(request("URGENT"), timeout=0.1)
    assert late.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    await first
    await until(lambda: queue.depth() == 0 and queue.running == 0)


async def test_bad_priority_is_invalid_argument(serve: Serve) -> None:
    running = await serve(config())
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await running.stub.Generate(request("highest"), timeout=10)
    err = await rich(bad.value)
    assert err.code is grpc.StatusCode.INVALID_ARGUMENT and err.fields == ["input.metadata[priority]"]


async def test_the_tier_caps_the_priority(serve: Serve) -> None:
    tiers = {"free": {"max_priority": "LOW"}, "enterprise": {}}
    running = await serve(config(tiers=tiers, tier_assignment={"default": "free"}))
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: queue.running == 1)
    queued = asyncio.ensure_future(running.stub.Generate(request("LOW"), timeout=10))
    await until(lambda: queue.depth() == 1)
    with pytest.raises(grpc.aio.AioRpcError) as shed:  # CRITICAL asked, LOW given: no displacing
        await running.stub.Generate(request("CRITICAL"), timeout=10)
    assert shed.value.code() is grpc.StatusCode.UNAVAILABLE
    await first
    await queued


def field_request(level: int, **metadata: str) -> gen.GenerateRequest:
    req = request(**({"priority": metadata["priority"]} if "priority" in metadata else {}))
    req.input.priority = level
    return req


async def test_the_priority_field_orders_the_queue_and_the_tier_caps_it(serve: Serve) -> None:
    tiers = {"free": {"max_priority": "HIGH"}}
    running = await serve(config(tiers=tiers, tier_assignment={"default": "free"}))
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(field_request(priority_pb2.PRIORITY_LOW), timeout=10))
    await until(lambda: queue.running == 1)
    low = asyncio.ensure_future(running.stub.Generate(field_request(priority_pb2.PRIORITY_LOW), timeout=10))
    await until(lambda: queue.depth() == 1)
    # CRITICAL asked, HIGH given (the cap): still above the queued LOW call, which is displaced
    high = asyncio.ensure_future(
        running.stub.Generate(field_request(priority_pb2.PRIORITY_CRITICAL), timeout=10)
    )
    with pytest.raises(grpc.aio.AioRpcError) as shed:
        await low
    assert (await rich(shed.value)).reason == "OVERLOADED"
    await until(lambda: queue.depth() == 1)
    assert queue.depth(Priority.HIGH) == 1 and queue.depth(Priority.CRITICAL) == 0
    assert text_of(await first) and text_of(await high)


async def test_a_bad_or_contradicted_priority_field_is_invalid_argument(serve: Serve) -> None:
    running = await serve(config())
    for req in (
        field_request(priority_pb2.PRIORITY_HIGH, priority="low"),
        field_request(99),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await running.stub.Generate(req, timeout=10)
        err = await rich(bad.value)
        assert err.code is grpc.StatusCode.INVALID_ARGUMENT and err.fields == ["input.priority"]
    agreeing = field_request(priority_pb2.PRIORITY_HIGH, priority="high")
    assert text_of(await running.stub.Generate(agreeing, timeout=10))


def per_deployment() -> dict[str, Any]:
    slow = {"provider": "echo", "echo": {"first_token_delay_seconds": 1.0}}
    return {
        "policy": {
            **echo_policy(),
            "deployments": {"one": {**slow, "model": "echo-1"}, "two": {**slow, "model": "echo-2"}},
            "routes": {"echo": {"deployments": ["one", "two"]}},
            "admission": {"deployments": {"one": 1, "two": 1}, "queue_size": 1, "retry_after_seconds": 3},
        }
    }


async def test_a_full_deployment_is_skipped_then_calls_queue_by_priority(serve: Serve) -> None:
    running = await serve(per_deployment())
    slots = running.sidecar.deps.deployment_slots
    assert running.sidecar.deps.admission is None  # no sidecar-wide capacity configured
    one, two = slots.queue("one"), slots.queue("two")
    first = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: one.running == 1)
    second = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: two.running == 1)  # one is full: the route took two
    normal = asyncio.ensure_future(running.stub.Generate(request("NORMAL"), timeout=10))
    await until(lambda: one.depth() == 1 and two.depth() == 1)  # it waits for whichever frees first
    scraped = running.sidecar.deps.telemetry.metrics.registry
    for name in ("one", "two"):  # read at scrape time from the deployments' queues
        labels = {"deployment": name}
        assert scraped.get_sample_value("sidecar_deployment_admission_running_calls", labels) == 1
        assert scraped.get_sample_value("sidecar_deployment_admission_queue_depth", labels) == 1
    high = asyncio.ensure_future(running.stub.Generate(field_request(priority_pb2.PRIORITY_HIGH), timeout=10))
    with pytest.raises(grpc.aio.AioRpcError) as shed:
        await normal
    err = await rich(shed.value)
    assert (err.code, err.reason) == (grpc.StatusCode.UNAVAILABLE, "OVERLOADED")
    assert err.info.metadata["deployment"] == "one"
    assert err.retry is not None and err.retry.retry_delay.seconds == 3
    models = [(await c).summary.served_by.deployment for c in (first, second, high)]
    assert models == ["one", "two", "one"]
    await until(lambda: one.running == 0 and two.running == 0)
    metrics = running.sidecar.deps.telemetry.metrics.registry
    assert metrics.get_sample_value("sidecar_admission_shed_total", {"priority": "normal"}) == 1
    idle = {"deployment": "one"}
    assert metrics.get_sample_value("sidecar_deployment_admission_running_calls", idle) == 0
    assert metrics.get_sample_value("sidecar_deployment_admission_queue_depth", idle) == 0


async def test_admission_names_only_known_deployments() -> None:
    raw = per_deployment()
    raw["policy"]["admission"]["deployments"] = {"three": 1}
    with pytest.raises(ConfigError, match=r"admission\.deployments: unknown deployment 'three'"):
        make_config(raw, None, Path(tempfile.mkdtemp()))


async def test_a_stream_takes_its_priority_from_the_field_too(serve: Serve) -> None:
    running = await serve(config())
    bad = stream_request(messages=[user("hi")], tenant_id="acme", priority=priority_pb2.PRIORITY_HIGH,
                         metadata={"priority": "low"})  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in running.stub.StreamGenerate(bad, timeout=10):
            pass
    assert (await rich(refused.value)).fields == ["input.priority"]
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: queue.running == 1)
    ok = stream_request(messages=[user("hi")], tenant_id="acme", priority=priority_pb2.PRIORITY_URGENT)
    streamed = asyncio.ensure_future(_drain(running.stub.StreamGenerate(ok, timeout=10)))
    await until(lambda: queue.depth(Priority.URGENT) == 1)
    await first
    assert await streamed > 0


async def _drain(call: Any) -> int:
    return len([event async for event in call])


async def test_a_variant_no_experiment_has_is_invalid_argument_even_at_capacity(serve: Serve) -> None:
    """A request naming a variant the route's experiment lacks can never succeed: it is
    INVALID_ARGUMENT at once, also when the sidecar is full. Checked after admission, it waited in
    the queue (or was shed with a retryable OVERLOADED) before being refused."""
    variants = {"route": "echo", "control": "a", "variants": {"a": {}, "b": {}}}
    running = await serve(config(experiments={"tone": variants}))
    queue = running.sidecar.deps.admission
    first = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: queue.running == 1)
    queued = asyncio.ensure_future(running.stub.Generate(request(), timeout=10))
    await until(lambda: queue.depth() == 1)  # the queue (of one) is full
    labelled = request()
    labelled.input.metadata["experiment_variant"] = "c"
    for bad in (request(experiment_variant="c"), labelled):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await running.stub.Generate(bad, timeout=10)
        err = await rich(refused.value)
        assert err.code is grpc.StatusCode.INVALID_ARGUMENT, (err.code, err.reason)
    assert text_of(await first) and text_of(await queued)
