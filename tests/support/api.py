"""Test-side helpers for the orchestrator.v1 services: one object with every service's stub, and
request builders for the shared GenerationInput."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from sidecar._gen.orchestrator.v1 import admin_service_pb2_grpc as admin_svc
from sidecar._gen.orchestrator.v1 import conversation_service_pb2_grpc as conversation_svc
from sidecar._gen.orchestrator.v1 import escalation_service_pb2_grpc as escalation_svc
from sidecar._gen.orchestrator.v1 import experiment_service_pb2_grpc as experiment_svc
from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import generation_service_pb2_grpc as generation_svc
from sidecar._gen.orchestrator.v1 import key_service_pb2_grpc as key_svc
from sidecar._gen.orchestrator.v1 import quota_service_pb2_grpc as quota_svc


class Stubs:
    """Every service's stub; `stubs.Generate` is the GenerationService's method. The AdminService
    goes to `admin` (its own socket) when given, else to the same channel."""

    def __init__(self, channel: grpc.aio.Channel, admin: grpc.aio.Channel | None = None) -> None:
        self.generation = generation_svc.GenerationServiceStub(channel)
        self.conversation = conversation_svc.ConversationServiceStub(channel)
        self.quota = quota_svc.QuotaServiceStub(channel)
        self.keys = key_svc.KeyServiceStub(channel)
        self.escalation = escalation_svc.EscalationServiceStub(channel)
        self.admin = admin_svc.AdminServiceStub(admin or channel)
        self.experiments = experiment_svc.ExperimentServiceStub(channel)

    def __getattr__(self, name: str) -> Any:
        for stub in (
            self.generation,
            self.conversation,
            self.quota,
            self.keys,
            self.escalation,
            self.admin,
            self.experiments,
        ):
            if hasattr(stub, name):
                return getattr(stub, name)
        raise AttributeError(name)


def generate_request(**fields: Any) -> gen.GenerateRequest:
    return gen.GenerateRequest(input=gen.GenerationInput(**fields))


def stream_request(**fields: Any) -> gen.StreamGenerateRequest:
    return gen.StreamGenerateRequest(input=gen.GenerationInput(**fields))


def text_of(reply: gen.GenerateResponse) -> str:
    """The answer's text: every text part of the assistant message, joined."""
    return "".join(part.text for part in reply.message.content if part.WhichOneof("kind") == "text")


async def rpc_error(call: Callable[[], Any]) -> grpc.aio.AioRpcError:
    """The error a unary or server-streaming call ends with; a call that succeeds fails the test."""
    try:
        result = call()
        if isinstance(result, grpc.aio.UnaryStreamCall):
            async for _ in result:
                pass
        else:
            await result
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError("the call succeeded")
