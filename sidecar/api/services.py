"""The API's servicers, and which server serves which of them."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from sidecar._gen.orchestrator.v1 import (
    admin_service_pb2_grpc,
    conversation_service_pb2_grpc,
    generation_service_pb2_grpc,
    key_service_pb2_grpc,
    quota_service_pb2_grpc,
)
from sidecar.api.admin_servicer import AdminServicer
from sidecar.api.conversation_servicer import ConversationServicer
from sidecar.api.key_servicer import KeyServicer
from sidecar.api.quota_servicer import QuotaServicer
from sidecar.api.servicer import GenerationServicer
from sidecar.authz.catalog import DATA_PLANE_SERVICES, full_service

DATA_PLANE_NAMES = tuple(full_service(s) for s in DATA_PLANE_SERVICES)
ADMIN_NAME = full_service("AdminService")


@dataclass(frozen=True)
class Servicers:
    """One servicer per service of orchestrator.v1."""

    generation: GenerationServicer
    conversation: ConversationServicer
    quota: QuotaServicer
    keys: KeyServicer
    admin: AdminServicer


def add_data_plane(server: grpc.aio.Server, s: Servicers) -> None:
    generation_service_pb2_grpc.add_GenerationServiceServicer_to_server(s.generation, server)  # type: ignore[no-untyped-call]
    conversation_service_pb2_grpc.add_ConversationServiceServicer_to_server(s.conversation, server)  # type: ignore[no-untyped-call]
    quota_service_pb2_grpc.add_QuotaServiceServicer_to_server(s.quota, server)  # type: ignore[no-untyped-call]
    key_service_pb2_grpc.add_KeyServiceServicer_to_server(s.keys, server)  # type: ignore[no-untyped-call]


def add_admin(server: grpc.aio.Server, s: Servicers) -> None:
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(s.admin, server)  # type: ignore[no-untyped-call]
