"""Generation calls the edge refuses are in the metrics: a refusal by the gate (no token, a wrong
token, a credential that may not call the method or act for the tenant) counts in
`sidecar_requests_total` and `sidecar_errors_total` with empty route labels, like a refused field,
so an operator sees a broken token roll-out instead of no traffic at all."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from tests.conftest import echo_policy, user
from tests.support.api import generate_request, rpc_error

pytestmark = pytest.mark.integration

TOKENS = {"APP": "app-token-0123", "QUOTA": "quota-token-4567", "ACME": "acme-token-89ab"}


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the series of `name` with exactly these labels (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        series, value = line.rsplit(" ", 1)
        got = ",".join(sorted(series[len(name) + 1 : -1].split(",")))
        if got == want:
            return float(value)
    return 0.0


def bearer(name: str | None, token: str | None = None) -> list[tuple[str, str]]:
    if name is None and token is None:
        return []
    return [("authorization", f"Bearer {token if token is not None else TOKENS[name or '']}")]


@pytest.fixture
async def s(serve: Any) -> Any:
    auth = {
        "token": {"env": "APP"},
        "credentials": [
            {"name": "quota", "token": {"env": "QUOTA"}, "allow": ["QuotaService"]},
            {"name": "acme", "token": {"env": "ACME"}, "allow": ["*"], "tenants": ["acme"]},
        ],
    }
    return await serve({"policy": echo_policy(), "settings": {"auth": auth}}, TOKENS)


async def refused(call: Any) -> grpc.StatusCode:
    code: grpc.StatusCode = (await rpc_error(call)).code()
    return code


async def test_gate_refusals_of_generation_calls_are_counted(s: Any) -> None:
    request = generate_request(messages=[user("hi")], tenant_id="globex", user_id="u")
    stream_request = gen.StreamGenerateRequest(input=request.input)
    cases = [
        (lambda: s.stub.Generate(request), grpc.StatusCode.UNAUTHENTICATED),
        (lambda: s.stub.Generate(request, metadata=bearer(None, "wrong")), grpc.StatusCode.UNAUTHENTICATED),
        (lambda: s.stub.StreamGenerate(stream_request), grpc.StatusCode.UNAUTHENTICATED),
        (lambda: s.stub.Generate(request, metadata=bearer("QUOTA")), grpc.StatusCode.PERMISSION_DENIED),
        (
            lambda: s.stub.StreamGenerate(stream_request, metadata=bearer("ACME")),
            grpc.StatusCode.PERMISSION_DENIED,
        ),
    ]
    for call, code in cases:
        assert await refused(call) == code
    ok = generate_request(messages=[user("hi")], tenant_id="acme", user_id="u")
    await s.stub.Generate(ok, metadata=bearer("APP"))

    text = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    edge = {"route": "", "provider": "", "model": ""}
    total = "sidecar_requests_total"
    assert sample(text, total, **edge, stream="false", code="UNAUTHENTICATED") == 2
    assert sample(text, total, **edge, stream="true", code="UNAUTHENTICATED") == 1
    assert sample(text, total, **edge, stream="false", code="PERMISSION_DENIED") == 1
    assert sample(text, total, **edge, stream="true", code="PERMISSION_DENIED") == 1
    errors = "sidecar_errors_total"
    assert sample(text, errors, route="", code="UNAUTHENTICATED", reason="MISSING_CREDENTIALS") == 2
    assert sample(text, errors, route="", code="UNAUTHENTICATED", reason="INVALID_CREDENTIALS") == 1
    assert sample(text, errors, route="", code="PERMISSION_DENIED", reason="METHOD_NOT_ALLOWED") == 1
    assert sample(text, errors, route="", code="PERMISSION_DENIED", reason="TENANT_NOT_ALLOWED") == 1
    assert sample(text, total, route="echo", provider="echo", model="echo-1", stream="false", code="OK") == 1
    assert "globex" not in text and TOKENS["QUOTA"] not in text


async def test_undecodable_generation_requests_are_counted(s: Any) -> None:
    """Bytes that are not the request (MALFORMED_REQUEST) are a refused field too; other methods'
    are not generation calls and stay out of the generation metrics."""
    auth = bearer("APP")
    garbage = b"\xff\xff\xff\xff"
    not_utf8 = b"\x0a\x03\x22\x01\xff"  # input.model = b"\xff"
    for method, codes in (("Generate", (garbage, not_utf8)), ("StreamGenerate", (garbage,))):
        path = f"/orchestrator.v1.GenerationService/{method}"
        for data in codes:
            if method == "Generate":
                call = s.channel.unary_unary(path)
                assert (
                    await refused(lambda c=call, d=data: c(d, metadata=auth))
                    == grpc.StatusCode.INVALID_ARGUMENT
                )
            else:
                call = s.channel.unary_stream(path)
                assert (
                    await refused(lambda c=call, d=data: c(d, metadata=auth))
                    == grpc.StatusCode.INVALID_ARGUMENT
                )
    quota = s.channel.unary_unary("/orchestrator.v1.QuotaService/GetQuota")
    assert await refused(lambda: quota(garbage, metadata=auth)) == grpc.StatusCode.INVALID_ARGUMENT

    text = await asyncio.to_thread(scrape, s.sidecar.metrics_port)
    edge = {"route": "", "provider": "", "model": ""}
    assert sample(text, "sidecar_requests_total", **edge, stream="false", code="INVALID_ARGUMENT") == 2
    assert sample(text, "sidecar_requests_total", **edge, stream="true", code="INVALID_ARGUMENT") == 1
    reason = {"route": "", "code": "INVALID_ARGUMENT", "reason": "MALFORMED_REQUEST"}
    assert sample(text, "sidecar_errors_total", **reason) == 3


async def test_refused_and_rejected_calls_log_at_most_a_line_a_minute(
    serve: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller can send refused or invalid calls at will: one line a minute says so (with how many
    were left out), while the metrics above count every one."""
    from tests.conftest import FakeClock

    clock = FakeClock()
    auth = {"token": {"env": "APP"}}
    s = await serve({"policy": echo_policy(), "settings": {"auth": auth}}, TOKENS, clock)
    request = generate_request(messages=[user("hi")])
    invalid = generate_request(messages=[user("hi")], tenant_id="bad id")

    def lines() -> list[Any]:
        return [r for r in caplog.records if r.getMessage() in ("call refused", "rejected request")]

    with caplog.at_level("INFO", logger="sidecar.api"):
        for _ in range(10):
            await refused(lambda: s.stub.Generate(request))
            await refused(lambda: s.stub.Generate(invalid, metadata=bearer("APP")))
        assert len(lines()) == 1
        clock.advance(61)
        await refused(lambda: s.stub.Generate(invalid, metadata=bearer("APP")))
    first, second = lines()
    assert first.getMessage() == "call refused" and first.__dict__["suppressed"] == 0
    assert second.getMessage() == "rejected request" and second.__dict__["suppressed"] == 19
