"""The injector's webhook over real HTTPS: AdmissionReview v1 in, a patch or a refusal out, counted."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.core.clock import FakeClock
from sidecar.injector import server as server_module
from sidecar.injector.metrics import InjectorMetrics
from sidecar.injector.patch import apply_patch
from sidecar.injector.review import BODY_BYTES_IN_FLIGHT, BODY_READ_SECONDS, MAX_BODY_BYTES
from sidecar.injector.server import InjectorServer, TlsFiles
from sidecar.injector.settings import InjectorSettings
from tests.k8s.tls import Tls, make_tls
from tests.k8s.tools import ipv6_loopback

SETTINGS = InjectorSettings(image="registry.example/sidecar:1", config_map="orchestrator-sidecar")
ASKED = {"orchestrator.sidecar/inject": "true"}


class Webhook:
    def __init__(self, server: InjectorServer, tls: Tls, metrics: InjectorMetrics) -> None:
        self.server, self.tls, self.metrics = server, tls, metrics
        self.url = f"https://127.0.0.1:{server.port}"
        self.ssl = ssl.create_default_context(cadata=tls.ca_pem.decode())

    async def post(self, body: bytes | dict[str, Any]) -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        data = io.BytesIO(raw) if len(raw) > 1024 * 1024 else raw  # aiohttp warns of large raw bytes
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.url}/inject", data=data, ssl=self.ssl) as resp,
        ):
            return resp.status, await resp.json()

    def count(self, decision: str, reason: str, *, dry_run: bool = False) -> float:
        for family in text_string_to_metric_families(generate_latest(self.metrics.registry).decode()):
            for sample in family.samples:
                if sample.name == "sidecar_injector_decisions_total" and sample.labels == {
                    "decision": decision,
                    "reason": reason,
                    "dry_run": "true" if dry_run else "false",
                }:
                    return float(sample.value)
        return 0.0


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[Webhook]:
    tls = make_tls(tmp_path / "tls")
    metrics = InjectorMetrics()
    server = InjectorServer(SETTINGS, address="127.0.0.1:0", tls=TlsFiles(tls.cert, tls.key), metrics=metrics)
    await server.start()
    yield Webhook(server, tls, metrics)
    await server.stop()


def review(obj: object, *, kind: str = "Pod", operation: str = "CREATE") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "apps",
            "operation": operation,
            "object": obj,
        },
    }


def _deep(levels: int) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for _ in range(levels):
        nested = {"a": nested}
    return nested


def pod(annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "web-", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]},
    }


async def test_an_annotated_pod_gets_a_json_patch_that_injects_the_sidecar(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    request = review(pod(ASKED))
    with caplog.at_level(logging.INFO, logger="sidecar.injector"):
        status, body = await webhook.post(request)
    assert status == 200
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == request["request"]["uid"]
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    patched = apply_patch(request["request"]["object"], json.loads(base64.b64decode(response["patch"])))
    assert patched["spec"]["initContainers"][0]["name"] == "orchestrator-sidecar"
    assert patched["metadata"]["annotations"]["orchestrator.sidecar/status"] == "injected"
    assert webhook.count("injected", "injected") == 1
    line = next(r for r in caplog.records if r.getMessage() == "injection decision")
    assert (line.decision, line.reason, line.pod, line.namespace) == ("injected", "injected", "web-", "apps")  # type: ignore[attr-defined]


async def test_unannotated_and_non_pod_reviews_are_allowed_unchanged(webhook: Webhook) -> None:
    for request, reason in (
        (review(pod({})), "not_requested"),
        (review(pod(ASKED), operation="UPDATE"), "not_create"),
        (review({"kind": "Service"}, kind="Service"), "not_a_pod"),
    ):
        status, body = await webhook.post(request)
        assert status == 200
        assert body["response"] == {"uid": request["request"]["uid"], "allowed": True}
        assert webhook.count("skipped", reason) == 1


async def test_bad_annotations_and_conflicts_are_refused_with_a_message(webhook: Webhook) -> None:
    status, body = await webhook.post(review(pod({**ASKED, "orchestrator.sidecar/transport": "udp"})))
    assert status == 200
    response = body["response"]
    assert response["allowed"] is False and "patch" not in response
    assert response["status"]["code"] == 400
    assert "orchestrator.sidecar/transport: 'udp' is not one of unix, tcp" in response["status"]["message"]
    clash = pod(ASKED)
    clash["spec"]["containers"].append({"name": "orchestrator-sidecar", "image": "x"})
    _, body = await webhook.post(review(clash))
    assert body["response"]["allowed"] is False
    assert "already has a container named 'orchestrator-sidecar'" in body["response"]["status"]["message"]
    assert webhook.count("rejected", "invalid_annotation") == 1
    assert webhook.count("rejected", "name_conflict") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"request": ' + b"[" * 100_000, "nested too deeply"),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}).encode(),
            "apiVersion",
        ),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), "request"),
        (
            json.dumps(
                {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}
            ).encode(),
            "request.uid",
        ),
        # parsed, but nested deeper than any Pod (the API server prunes fields a Pod does not have):
        # copying it for the patch overflowed the stack, an HTTP 500 counted as an injector `error`
        # (the alert that says "a bug") with a traceback, for a body any pod in the cluster can send
        (
            json.dumps(
                review({**pod(ASKED), "spec": {"containers": [{"name": "a"}], "x": _deep(900)}})
            ).encode(),
            "nested too deeply",
        ),
        (
            json.dumps(review({**pod(ASKED), "metadata": {"labels": _deep(300)}})).encode(),
            "nested too deeply",
        ),
    ],
)
async def test_a_malformed_review_is_a_400_naming_the_problem(
    webhook: Webhook, body: bytes, field: str
) -> None:
    status, answer = await webhook.post(body)
    assert status == 400
    assert field in answer["error"]
    assert webhook.count("rejected", "malformed_review") == 1
    status, _ = await webhook.post(review(pod(ASKED)))  # and the server goes on serving
    assert status == 200


async def test_a_malformed_pod_inside_a_review_is_refused(webhook: Webhook) -> None:
    status, body = await webhook.post(
        review({"metadata": {"annotations": ASKED}, "spec": {"containers": "x"}})
    )
    assert status == 200
    assert body["response"]["allowed"] is False
    assert "spec.containers is missing or empty" in body["response"]["status"]["message"]


async def test_an_internal_failure_is_a_500_counted_as_error(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(pod: object, settings: InjectorSettings, namespace: str = "") -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(server_module, "decide", broken)
    status, body = await webhook.post(review(pod(ASKED)))
    assert status == 500 and "internal error" in body["error"]
    assert webhook.count("error", "RuntimeError") == 1


async def test_probes_and_metrics_are_served(webhook: Webhook) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/livez", "/readyz"):
            async with session.get(webhook.url + path, ssl=webhook.ssl) as resp:
                assert resp.status == 200
        async with session.get(webhook.url + "/metrics", ssl=webhook.ssl) as resp:
            assert "sidecar_injector_review_seconds" in await resp.text()


async def test_a_renewed_certificate_is_served_on_the_next_connection(
    webhook: Webhook, tmp_path: Path
) -> None:
    fresh = make_tls(tmp_path / "renewed", common="renewed")
    webhook.tls.cert.write_bytes(fresh.cert.read_bytes())
    webhook.tls.key.write_bytes(fresh.key.read_bytes())
    context = ssl.create_default_context(cadata=fresh.ca_pem.decode())
    async with aiohttp.ClientSession() as session, session.get(webhook.url + "/livez", ssl=context) as resp:
        assert resp.status == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):  # the old CA no longer verifies it
        await webhook.post(review(pod({})))


async def _partial_body(
    port: int, ssl_context: ssl.SSLContext, declared: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A review upload that declares `declared` bytes and stalls after sending most of them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_context)
    head = (
        "POST /inject HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    writer.write(head.encode() + b'{"a":"' + b"x" * (declared - 1024))
    await writer.drain()
    return reader, writer


async def _status(upload: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> int:
    try:
        return int((await upload[0].readline()).split()[1])
    finally:
        upload[1].close()


@pytest.fixture
async def clocked(tmp_path: Path) -> AsyncIterator[tuple[Webhook, FakeClock]]:
    tls = make_tls(tmp_path / "tls")
    metrics, clock = InjectorMetrics(), FakeClock()
    server = InjectorServer(
        SETTINGS, address="127.0.0.1:0", tls=TlsFiles(tls.cert, tls.key), metrics=metrics, clock=clock
    )
    await server.start()
    yield Webhook(server, tls, metrics), clock
    await server.stop()


async def test_review_bodies_read_at_once_are_bounded_in_bytes(clocked: tuple[Webhook, FakeClock]) -> None:
    """Any pod in the cluster can reach the injector's Service: 80 uploads of 3 MiB bodies left
    unfinished held 514 MB in one injector (its limit is 192Mi), so a few dozen connections got
    every injector pod OOM-killed, and the webhook failed open (or closed) for the whole cluster."""
    webhook, clock = clocked
    declared = MAX_BODY_BYTES - 10
    stalled = [
        await _partial_body(webhook.server.port, webhook.ssl, declared)
        for _ in range(BODY_BYTES_IN_FLIGHT // declared)
    ]
    refused = await _partial_body(webhook.server.port, webhook.ssl, declared)
    assert await asyncio.wait_for(_status(refused), 5) == 503  # at once, its body never read
    assert webhook.count("rejected", "busy") == 1
    status, body = await webhook.post(review(pod(ASKED)))  # a review of ordinary size still fits
    assert status == 200 and body["response"]["patch"]
    clock.advance(BODY_READ_SECONDS)  # the stalled uploads are cut, and their bytes given back
    assert [await asyncio.wait_for(_status(r), 5) for r in stalled] == [408] * len(stalled)
    assert webhook.count("rejected", "slow_body") == len(stalled)
    assert (await webhook.post(review(pod(ASKED))))[0] == 200


@pytest.mark.parametrize("address", [":0", "[::]:0"])
async def test_every_address_means_ipv6_and_ipv4(tmp_path: Path, address: str) -> None:
    """The chart ran the injector on 0.0.0.0, IPv4 only: on an IPv6 (single-stack) cluster the
    kubelet's probes and the API server's reviews reach the pod's IPv6 address, and found nothing."""
    tls = make_tls(tmp_path / "tls")
    server = InjectorServer(
        SETTINGS, address=address, tls=TlsFiles(tls.cert, tls.key), metrics=InjectorMetrics()
    )
    await server.start()
    try:
        context = ssl.create_default_context(cadata=tls.ca_pem.decode())
        context.check_hostname = False
        for host in ("127.0.0.1", *(["[::1]"] if ipv6_loopback() else [])):
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"https://{host}:{server.port}/readyz", ssl=context) as resp,
            ):
                assert resp.status == 200, host
    finally:
        await server.stop()


async def test_a_dry_run_review_is_counted_apart_from_pods_created(webhook: Webhook) -> None:
    """`kubectl apply --dry-run=server` sends the review with dryRun: the pod is answered as any
    other, but no pod is created, so it is not one more injection on the dashboard."""
    dry = {**review(pod(ASKED)), "request": {**review(pod(ASKED))["request"], "dryRun": True}}
    status, answer = await webhook.post(dry)
    assert status == 200 and answer["response"]["allowed"] is True
    assert answer["response"]["patchType"] == "JSONPatch"
    assert webhook.count("injected", "injected", dry_run=True) == 1
    assert webhook.count("injected", "injected") == 0
    not_dry = {**review(pod(ASKED)), "request": {**review(pod(ASKED))["request"], "dryRun": "false"}}
    assert (await webhook.post(not_dry))[0] == 200  # only a JSON true is a dry run
    assert webhook.count("injected", "injected") == 1


async def test_a_huge_review_does_not_hold_up_the_others(webhook: Webhook) -> None:
    """A pod of 130,000 init containers (2.5 MiB, under the 3 MiB a body may have) takes seconds to
    read and patch; done on the injector's one event loop, every review sent meanwhile waited for it,
    past the API server's timeout (pods admitted without the sidecar, or refused under Fail), and any
    pod in the cluster can send one. Such a body is worked on aside; the others are answered at once."""
    huge = pod(ASKED)
    huge["spec"]["initContainers"] = [{"name": f"{i}"} for i in range(130_000)]
    body = json.dumps(review(huge)).encode()
    assert len(body) < MAX_BODY_BYTES
    loop = asyncio.get_running_loop()
    started = loop.time()
    slow = asyncio.create_task(webhook.post(body))
    waits = []
    while not slow.done():
        sent = loop.time()
        status, _ = await webhook.post(review(pod(ASKED)))
        assert status == 200
        waits.append(loop.time() - sent)
    took = loop.time() - started
    status, answer = await slow
    assert status == 200 and answer["response"]["allowed"] is True
    # one review waited for nearly all of it (5.2 s of 5.8 s); now each is answered between its slices
    assert len(waits) >= 3 and max(waits) < took / 2, (max(waits), took, len(waits))
