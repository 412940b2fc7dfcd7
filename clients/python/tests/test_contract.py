"""Replays tests/contract/scenarios.yaml, in file order, through AsyncClient against a real sidecar."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

import orchestrator_client as oc
from orchestrator_client import (
    embed_pb2,
    escalation_pb2,
    experiments_pb2,
    generate_pb2,
    models_pb2,
    personas_pb2,
    quota_pb2,
)

ESCALATION_RPCS = {
    "AcceptEscalation", "ListEscalations", "AnswerEscalation", "DeclineEscalation", "GetAnswerReport",
}  # fmt: skip
SCENARIOS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "tests" / "contract" / "scenarios.yaml").read_text()
)["scenarios"]
RPCS = {
    "Generate",
    "StreamGenerate",
    "Switch",
    "GetQuota",
    "ListModels",
    "Embed",
    "Feedback",
    "GetExperimentReport",
    *ESCALATION_RPCS,
}


@dataclass
class Outcome:
    response: dict[str, Any] | None = None
    text: str | None = None
    events: list[str] = field(default_factory=list)
    error: oc.SidecarError | None = None


@pytest.fixture(scope="module")
def ran() -> set[str]:
    return set()


def _parse(message: Any, data: dict[str, Any]) -> Any:
    return json_format.ParseDict(data, message)


def _dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


async def _stream(client: oc.AsyncClient, sc: dict[str, Any], timeout: float | None, out: Outcome) -> None:
    stream = client.stream(_parse(generate_pb2.StreamGenerateRequest(), sc["request"]), timeout=timeout)
    cancel_after = sc.get("cancel_after_deltas")
    async for event in stream:
        kind = event.WhichOneof("event")
        out.events.append("final" if kind == "result" else "delta")
        if kind == "delta" and cancel_after is not None and stream.deltas >= cancel_after:
            stream.cancel()
    out.text = stream.text
    out.response = _dict(stream.result) if stream.result is not None else None


async def _experiments(client: oc.AsyncClient, rpc: str, request: dict[str, Any], timeout: float) -> Any:
    if rpc == "Feedback":
        f = _parse(experiments_pb2.FeedbackRequest(), request)
        return await client.feedback(f.tenant_id, f.request_id, f.score, f.label, timeout=timeout)
    r = _parse(experiments_pb2.GetExperimentReportRequest(), request)
    start, end = r.start_time.ToDatetime(timezone.utc), r.end_time.ToDatetime(timezone.utc)
    return await client.get_experiment_report(r.tenant_id, r.experiment, start, end, timeout=timeout)


async def replay(client: oc.AsyncClient, sc: dict[str, Any]) -> Outcome:
    """Run one scenario through the client wrapper; a typed error is part of the outcome."""
    out = Outcome()
    timeout = sc["deadline_ms"] / 1000 if "deadline_ms" in sc else 10.0
    rpc, request = sc["rpc"], sc.get("request", {})
    try:
        if rpc == "Generate":
            req = _parse(generate_pb2.GenerateRequest(), request)
            level = req.input.priority or None  # through the wrapper's option, not the message
            req.input.ClearField("priority")
            response = await client.generate(req, timeout=timeout, priority=level)
            out.text, out.response = oc.text_of(response), _dict(response)
        elif rpc == "StreamGenerate":
            await _stream(client, sc, timeout, out)
        elif rpc == "Switch":
            out.response = _dict(
                await client.switch(_parse(personas_pb2.SwitchRequest(), request), timeout=timeout)
            )
        elif rpc == "GetQuota":
            q = _parse(quota_pb2.GetQuotaRequest(), request)
            out.response = _dict(await client.get_quota(q.tenant_id, q.user_id, timeout=timeout))
        elif rpc == "ListModels":
            out.response = _dict(
                await client.list_models(_parse(models_pb2.ListModelsRequest(), request), timeout=timeout)
            )
        elif rpc == "Embed":
            out.response = _dict(
                await client.embed(_parse(embed_pb2.EmbedRequest(), request), timeout=timeout)
            )
        elif rpc in ESCALATION_RPCS:
            out.response = _dict(await _escalation(client, rpc, request, timeout))
        elif rpc in ("Feedback", "GetExperimentReport"):
            out.response = _dict(await _experiments(client, rpc, request, timeout))
        else:
            pytest.fail(f"{sc['id']}: unknown rpc {rpc!r} (one of {sorted(RPCS)})")
    except oc.SidecarError as err:
        out.error = err
    return out


async def _escalation(client: oc.AsyncClient, rpc: str, request: dict[str, Any], timeout: float) -> Any:
    """The EscalationService scenarios, through the client's escalation methods."""
    if rpc == "AcceptEscalation":
        a = _parse(escalation_pb2.AcceptEscalationRequest(), request)
        return await client.accept_escalation(a.tenant_id, a.user_id, a.escalation_id, timeout=timeout)
    if rpc == "GetAnswerReport":
        r = _parse(escalation_pb2.GetAnswerReportRequest(), request)
        return await client.get_answer_report(r.tenant_id, r.agent_id, timeout=timeout)
    if rpc == "ListEscalations":
        listing = _parse(escalation_pb2.ListEscalationsRequest(), request)
        return await client.list_escalations(listing, timeout=timeout)
    if rpc == "AnswerEscalation":
        answer = _parse(escalation_pb2.AnswerEscalationRequest(), request)
        return await client.answer_escalation(answer, timeout=timeout)
    decline = _parse(escalation_pb2.DeclineEscalationRequest(), request)
    return await client.decline_escalation(decline, timeout=timeout)


def subset(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` does not contain `expected` (dict keys, list elements by index, equal scalars)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '.'}: expected an object, got {actual!r}"]
        return [p for k, v in expected.items() for p in (
            subset(v, actual[k], f"{path}.{k}") if k in actual else [f"{path}.{k}: missing"])]  # fmt: skip
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) < len(expected):
            return [f"{path}: expected at least {len(expected)} elements, got {actual!r}"]
        return [p for i, v in enumerate(expected) for p in subset(v, actual[i], f"{path}[{i}]")]
    return [] if expected == actual else [f"{path}: expected {expected!r}, got {actual!r}"]


def events_match(pattern: list[str], events: list[str]) -> bool:
    regex = "".join({"delta": "d", "delta+": "d+", "final": "f"}[p] for p in pattern)
    return re.fullmatch(regex, "".join("f" if e == "final" else "d" for e in events)) is not None


def check(sc: dict[str, Any], out: Outcome) -> list[str]:
    exp = sc["expect"]
    if exp.get("ok"):
        if out.error is not None:
            return [f"expected success, got {out.error!r}"]
        problems = (
            [] if "text" not in exp or exp["text"] == out.text else [f"text {out.text!r} != {exp['text']!r}"]
        )
        if "events" in exp and not events_match(exp["events"], out.events):
            problems.append(f"events {out.events} do not match {exp['events']}")
        return problems + subset(exp.get("response", {}), out.response or {}, "response")
    err = out.error
    if err is None:
        return [f"expected {exp['code']}, got success {out.response}"]
    return _check_error(exp, err)


def _check_error(exp: dict[str, Any], err: oc.SidecarError) -> list[str]:
    problems = [] if err.code.name == exp["code"] else [f"code {err.code.name} != {exp['code']} ({err})"]
    if "reason" in exp and err.reason != exp["reason"]:
        problems.append(f"reason {err.reason!r} != {exp['reason']!r}")
    problems += [
        f"metadata key {k} missing from {dict(err.metadata)}"
        for k in exp.get("metadata_keys", [])
        if k not in err.metadata
    ]
    fields = {v.field for v in err.field_violations}
    problems += [
        f"field violation {f} missing from {fields}"
        for f in exp.get("field_violations", [])
        if f not in fields
    ]
    if "retry_info" in exp and (err.retry_delay is not None) != exp["retry_info"]:
        problems.append(f"retry_info expected {exp['retry_info']}, retry_delay={err.retry_delay}")
    if exp.get("quota_failure") and not err.quota_violations:
        problems.append("no QuotaFailure")
    if exp.get("quota_failure") and not isinstance(err, oc.QuotaExceededError):
        problems.append(f"the caller's quota is not a QuotaExceededError: {err!r}")
    if err.deltas_received < exp.get("deltas_before_error", 0):
        problems.append(
            f"{err.deltas_received} deltas before the error, expected >= {exp['deltas_before_error']}"
        )
    if exp.get("partial_usage") and not (isinstance(err, oc.StreamInterruptedError) and err.partial_usage):
        problems.append(f"no partial usage on {err!r}")
    if exp.get("cancelled") and not isinstance(err, oc.CancelledError):
        problems.append(f"expected a local cancellation, got {err!r}")
    return problems  # fmt: skip


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
async def test_scenario(
    scenario: dict[str, Any], sidecar: str, contract: dict[str, Any], ran: set[str]
) -> None:
    token = contract["token"] if scenario.get("auth", True) else ""
    async with oc.AsyncClient(sidecar, token=token) as client:
        outcome = await replay(client, scenario)
    ran.add(scenario["id"])
    assert not check(scenario, outcome), check(scenario, outcome)


def test_every_scenario_ran(ran: set[str]) -> None:
    ids = [s["id"] for s in SCENARIOS]
    assert len(ids) == len(set(ids)), "scenario ids must be unique"
    assert set(ids) <= ran, f"not run: {sorted(set(ids) - ran)}"
