"""The API's servicers, and which server serves which of them (each with tolerant decoding)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from sidecar._gen.orchestrator.v1 import (
    admin_service_pb2,
    conversation_service_pb2,
    escalation_service_pb2,
    experiment_service_pb2,
    generation_service_pb2,
    key_service_pb2,
    quota_service_pb2,
)
from sidecar.api.admin_servicer import AdminServicer
from sidecar.api.conversation_servicer import ConversationServicer
from sidecar.api.decode import add_service
from sidecar.api.escalation_servicer import EscalationServicer
from sidecar.api.experiment_servicer import ExperimentServicer
from sidecar.api.key_servicer import KeyServicer
from sidecar.api.quota_servicer import QuotaServicer
from sidecar.api.servicer import GenerationServicer
from sidecar.core.clock import Clock

GENERATION = generation_service_pb2.DESCRIPTOR.services_by_name["GenerationService"]
CONVERSATION = conversation_service_pb2.DESCRIPTOR.services_by_name["ConversationService"]
QUOTA = quota_service_pb2.DESCRIPTOR.services_by_name["QuotaService"]
KEYS = key_service_pb2.DESCRIPTOR.services_by_name["KeyService"]
ESCALATION = escalation_service_pb2.DESCRIPTOR.services_by_name["EscalationService"]
ADMIN = admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]
EXPERIMENTS = experiment_service_pb2.DESCRIPTOR.services_by_name["ExperimentService"]
DATA_PLANE_NAMES = tuple(
    s.full_name for s in (GENERATION, CONVERSATION, QUOTA, KEYS, ESCALATION, EXPERIMENTS)
)
ADMIN_NAME = ADMIN.full_name


@dataclass(frozen=True)
class Servicers:
    """One servicer per service of orchestrator.v1."""

    generation: GenerationServicer
    conversation: ConversationServicer
    quota: QuotaServicer
    keys: KeyServicer
    escalation: EscalationServicer
    admin: AdminServicer
    experiments: ExperimentServicer


def add_data_plane(
    server: grpc.aio.Server,
    s: Servicers,
    *,
    clock: Clock,
    on_request: Callable[[int], None] | None = None,
    write_timeout: float | None = None,
) -> None:
    """`write_timeout`: how long one response of a server stream may wait for a caller that does
    not read (settings.stream_write_timeout_seconds)."""
    pairs: tuple[tuple[object, ServiceDescriptor], ...] = (
        (s.generation, GENERATION),
        (s.conversation, CONVERSATION),
        (s.quota, QUOTA),
        (s.keys, KEYS),
        (s.escalation, ESCALATION),
        (s.experiments, EXPERIMENTS),
    )
    for servicer, descriptor in pairs:
        malformed = s.generation.malformed if descriptor is GENERATION else None
        add_service(
            server,
            servicer,
            descriptor,
            clock=clock,
            on_request=on_request,
            on_malformed=malformed,
            write_timeout=write_timeout,
        )


def add_admin(server: grpc.aio.Server, s: Servicers, *, clock: Clock) -> None:
    add_service(server, s.admin, ADMIN, clock=clock)
