"""The harness of the API fuzz tests (tests/integration/test_fuzz_*.py): one valid request per
method of orchestrator.v1, a sidecar serving every service with canaries in its secrets, and
`expect(...)`, which calls a method with raw bytes and checks what every hostile request must leave
true: never INTERNAL or UNKNOWN, a refusal naming its field, the server still serving, and no
record at ERROR, no traceback and no canary in the log.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sidecar._gen.orchestrator.v1 import (
    embed_pb2,
    escalation_pb2,
    experiments_pb2,
    keys_pb2,
    models_pb2,
    personas_pb2,
    quota_pb2,
    usage_pb2,
)
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.api.services import ADMIN, CONVERSATION, EXPERIMENTS, GENERATION, KEYS, QUOTA
from sidecar.api.services import ESCALATION as ESCALATIONS
from tests.conftest import make_config
from tests.support.fuzz import (
    LogTap,
    ThreadedSidecar,
    record_text,
)
from tests.support.keys import local_keys
from tests.support.prometheus import quiet_telemetry

EXPERIMENT = {
    "route": "chat",
    "control": "a",
    "variants": {"a": {"weight": 1, "deployments": ["one"]}, "b": {"weight": 1, "deployments": ["two"]}},
    "min_samples": 2,
}

APP_TOKEN = "app-tok-CANARY-7d1c0e55aa"
OPS_TOKEN = "ops-tok-CANARY-93be02f4cd"
WRONG_TOKEN = "wrong-tok-CANARY-5a5a11c0de"
API_KEY = "sk-CANARY-fuzz-0f9e8d7c6b5a49382716"
PROMPT = "PROMPT-CANARY-b3c2d1e0"
CANARIES = (APP_TOKEN, OPS_TOKEN, WRONG_TOKEN, API_KEY, PROMPT)
APP = (("authorization", f"Bearer {APP_TOKEN}"),)
OPS = (("authorization", f"Bearer {OPS_TOKEN}"),)
SERVICES = (GENERATION, CONVERSATION, QUOTA, KEYS, ESCALATIONS, EXPERIMENTS, ADMIN)
NEVER = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
ANSWERS = (  # what a random request may get: an answer or a classified refusal
    None,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # a random tenant may hit a real limit
)

TENANT, USER = "acme", "fuzz"
NOW = 1_780_000_000


def stamp(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def text(value: str) -> gen.Message:
    return gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text=value)])


def generation_input(**fields: Any) -> gen.GenerationInput:
    base: dict[str, Any] = {"messages": [text(PROMPT)], "tenant_id": TENANT, "user_id": USER}
    return gen.GenerationInput(**{**base, **fields})


# One valid request per method; the hostile cases are variations of it.
BASELINES: dict[str, Message] = {
    "Generate": gen.GenerateRequest(input=generation_input()),
    "StreamGenerate": gen.StreamGenerateRequest(input=generation_input()),
    "ListModels": models_pb2.ListModelsRequest(),
    "Embed": embed_pb2.EmbedRequest(tenant_id=TENANT, user_id=USER, texts=[PROMPT]),
    "ListPersonas": personas_pb2.ListPersonasRequest(),
    "Switch": personas_pb2.SwitchRequest(
        tenant_id=TENANT, user_id=USER, conversation_id="c1", persona_id="maya"
    ),
    "ListSwitchHistory": personas_pb2.ListSwitchHistoryRequest(
        tenant_id=TENANT, user_id=USER, conversation_id="c1"
    ),
    "ClearConversation": personas_pb2.ClearConversationRequest(
        tenant_id=TENANT, user_id=USER, conversation_id="c9"
    ),
    "GetQuota": quota_pb2.GetQuotaRequest(tenant_id=TENANT, user_id=USER),
    "RegisterKey": keys_pb2.RegisterKeyRequest(
        tenant_id=TENANT, user_id=USER, provider="openai", key_name="main", api_key=API_KEY
    ),
    "ListKeys": keys_pb2.ListKeysRequest(tenant_id=TENANT, user_id=USER),
    "DeleteKey": keys_pb2.DeleteKeyRequest(tenant_id=TENANT, user_id=USER, key_ref="key_0123456789abcdef"),
    "AcceptEscalation": escalation_pb2.AcceptEscalationRequest(
        tenant_id=TENANT, user_id=USER, escalation_id="esc_0123456789"
    ),
    "ListEscalations": escalation_pb2.ListEscalationsRequest(tenant_id=TENANT, agent_id="maya"),
    "AnswerEscalation": escalation_pb2.AnswerEscalationRequest(
        tenant_id=TENANT, agent_id="maya", escalation_id="esc_0123456789", answer="Use bread flour."
    ),
    "DeclineEscalation": escalation_pb2.DeclineEscalationRequest(
        tenant_id=TENANT, agent_id="maya", escalation_id="esc_0123456789", reason="busy"
    ),
    "GetAnswerReport": escalation_pb2.GetAnswerReportRequest(tenant_id=TENANT, agent_id="maya"),
    "Feedback": experiments_pb2.FeedbackRequest(tenant_id=TENANT, request_id="req-1", score=0.5),
    "GetExperimentReport": experiments_pb2.GetExperimentReportRequest(
        tenant_id=TENANT, experiment="tone", start_time=stamp(NOW - 3600), end_time=stamp(NOW)
    ),
    "RotateKeys": keys_pb2.RotateKeysRequest(),
    "ListTenantKeys": keys_pb2.ListTenantKeysRequest(tenant_id=TENANT),
    "GetUsage": usage_pb2.GetUsageRequest(
        tenant_id=TENANT,
        start_time=stamp(NOW - 3600),
        end_time=stamp(NOW),
        group_by=usage_pb2.USAGE_GROUP_BY_USER,
    ),
    "GetExperimentReportAcrossTenants": experiments_pb2.GetExperimentReportAcrossTenantsRequest(
        experiment="tone", start_time=stamp(NOW - 3600), end_time=stamp(NOW)
    ),
}
METHODS: dict[str, MethodDescriptor] = {m.name: m for s in SERVICES for m in s.methods}


def path_of(name: str) -> str:
    method = METHODS[name]
    return f"/{method.containing_service.full_name}/{name}"


def config(tmp: Path, redis_url: str | None = None) -> Any:
    """Every service on, echo deployments, an experiment, a persona with an answer policy; with
    `redis_url`, every state that can be shared lives in that Redis (under fresh prefixes)."""
    creds = [{"name": "ops", "token": {"env": "OPS"}, "allow": ["*"]}]
    deployments = {
        "one": {"provider": "echo", "model": "echo-one"},
        "two": {"provider": "echo", "model": "echo-two"},
    }
    policy = {
        "default_route": "chat",
        "deployments": deployments,
        "routes": {"chat": {"deployments": ["one", "two"]}},
        "experiments": {"tone": copy.deepcopy(EXPERIMENT)},
        "personas": {
            "personas": [{"id": "maya", "name": "Maya", "system_prompt": "You are Maya's assistant."}]
        },
        "answers": {"agents": {"maya": {"creators": ["ops"]}}},
        "tiers": {
            "free": {
                "requests_per_minute": 1_000_000,
                "limits": [{"name": "tokens-day", "metric": "tokens", "window": "day", "limit": 1e12}],
            }
        },
    }
    settings = {
        "listen": {"address": "127.0.0.1:0"},
        "auth": {"token": {"env": "APP"}, "credentials": creds},
        "admin": {"mode": "listener"},
        "keys": local_keys(tmp),
        "telemetry": quiet_telemetry(tmp),
    }
    if redis_url is not None:
        shared(policy, settings, redis_url)
    return make_config({"settings": settings, "policy": policy}, {"APP": APP_TOKEN, "OPS": OPS_TOKEN}, tmp)


def shared(policy: dict[str, Any], settings: dict[str, Any], url: str) -> None:
    """Quotas, conversations, answers, idempotent answers, keys and the response cache in Redis."""
    run = uuid.uuid4().hex[:10]
    policy["quota"] = {"store": "redis", "redis_url": url, "key_prefix": f"fz{run}:q"}
    policy["personas"]["sessions"] = {"store": "redis", "redis_url": url, "key_prefix": f"fz{run}:c"}
    policy["answers"].update(store="redis", redis_url=url, key_prefix=f"fz{run}:a")
    settings["idempotency"] = {"backend": "redis", "redis_url": url, "key_prefix": f"fz{run}:i:"}
    settings["keys"] = {**settings["keys"], "store": "redis", "redis_url": url}
    settings["cache"] = {"enabled": True, "backend": "redis", "redis_url": url, "namespace": f"fz{run}"}


@dataclass
class Fuzzed:
    """The served sidecar, a channel to it, and every log record since it started."""

    channel: grpc.Channel
    logs: LogTap

    def raw(
        self,
        name: str,
        data: bytes,
        metadata: Sequence[tuple[str, str | bytes]] | None = None,
        timeout: float = 30,
    ) -> grpc.RpcError | None:
        """Call `name` with these request bytes; the error, or None when it answered."""
        meta = OPS if metadata is None else metadata
        try:
            if METHODS[name].server_streaming:
                call = self.channel.unary_stream(
                    path_of(name), request_serializer=None, response_deserializer=None
                )
                for _ in call(data, metadata=meta, timeout=timeout):
                    pass
            else:
                call = self.channel.unary_unary(
                    path_of(name), request_serializer=None, response_deserializer=None
                )
                call(data, metadata=meta, timeout=timeout)
        except grpc.RpcError as err:
            return err
        return None

    def used(self, user: str = USER) -> list[tuple[str, int, int]]:
        """What a user of the fuzz tenant has used and holds reserved of every limit."""
        ask = quota_pb2.GetQuotaRequest(tenant_id=TENANT, user_id=user)
        reply = quota_pb2.GetQuotaResponse.FromString(
            self.channel.unary_unary(path_of("GetQuota"))(ask.SerializeToString(), metadata=OPS, timeout=30)
        )
        return [(limit.name, limit.used, limit.reserved) for limit in reply.limits]


@dataclass(frozen=True)
class Refusal:
    code: grpc.StatusCode
    reason: str
    fields: list[str]


def refusal(err: grpc.RpcError) -> Refusal:
    """The rich status a client decodes: exactly one ErrorInfo, the message equal to the details."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, f"no rich status on {err.code()}: {err.details()}"  # type: ignore[attr-defined]
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, "exactly one ErrorInfo"
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    fields: list[str] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return Refusal(err.code(), info.reason, fields)  # type: ignore[attr-defined]


def assert_quiet(fuzzed: Fuzzed, mark: int, what: str) -> None:
    """No record at ERROR or above, no traceback, no canary since `mark`."""
    for record in fuzzed.logs.since(mark):
        written = record_text(record)
        assert record.levelno < logging.ERROR, f"{what}: logged {record.levelname}: {written[:2000]}"
        assert "Traceback" not in written, f"{what}: a traceback was logged: {written[:2000]}"
        for canary in CANARIES:
            assert canary not in written, f"{what}: {canary} reached the log: {written[:2000]}"


def still_serving(fuzzed: Fuzzed, what: str) -> None:
    reply = fuzzed.channel.unary_unary(path_of("ListModels"))(b"", metadata=OPS, timeout=30)
    assert models_pb2.ListModelsResponse.FromString(reply).routes, f"after {what}: no routes"


def expect(
    fuzzed: Fuzzed,
    name: str,
    data: bytes,
    *,
    field: str | None = None,
    reason: str | None = None,
    codes: tuple[grpc.StatusCode, ...] = (grpc.StatusCode.INVALID_ARGUMENT,),
    metadata: Sequence[tuple[str, str | bytes]] | None = None,
    what: str = "",
) -> Refusal | None:
    """Call, then check everything a hostile request must leave true. `field`: a path the refusal
    must name (a prefix of one of its violations); `codes`: what it may answer (OK is None)."""
    what = f"{name} {what}".strip()
    mark = fuzzed.logs.mark()
    err = fuzzed.raw(name, data, metadata)
    got = None if err is None else refusal(err)
    if got is not None:
        assert got.code not in NEVER, f"{what}: {got}"
        assert got.code in codes, f"{what}: {got}"
        if got.code == grpc.StatusCode.INVALID_ARGUMENT:
            assert got.fields, f"{what}: INVALID_ARGUMENT naming no field: {got}"
        if field is not None:
            assert any(f.startswith(field) for f in got.fields), f"{what}: {field} not named: {got}"
        if reason is not None:
            assert got.reason == reason, f"{what}: {got}"
    else:
        assert None in codes, f"{what}: answered OK, expected one of {codes}"
    still_serving(fuzzed, what)
    assert_quiet(fuzzed, mark, what)
    return got


def with_fields(name: str, **fields: Any) -> bytes:
    request = type(BASELINES[name])()
    request.CopyFrom(BASELINES[name])
    for key, value in fields.items():
        if isinstance(value, Message):
            getattr(request, key).CopyFrom(value)
        elif isinstance(value, (list, dict)):
            getattr(request, key).extend(value) if isinstance(value, list) else getattr(request, key).update(
                value
            )
        else:
            setattr(request, key, value)
    return request.SerializeToString()


@contextlib.contextmanager
def fuzzed_sidecar(tmp: Path, redis_url: str | None = None) -> Iterator[Fuzzed]:
    """A sidecar on its own thread, a channel to it and the log tap, for one test module."""
    with (
        LogTap() as logs,
        ThreadedSidecar(config(tmp, redis_url)) as served,
        grpc.insecure_channel(served.target) as channel,
    ):
        yield Fuzzed(channel, logs)
