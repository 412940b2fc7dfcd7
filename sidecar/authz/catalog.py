"""The API's services and methods, read from the generated descriptors (the protos are the truth)."""

from __future__ import annotations

from functools import cache

from sidecar._gen.orchestrator.v1 import (
    admin_service_pb2,
    conversation_service_pb2,
    escalation_service_pb2,
    experiment_service_pb2,
    generation_service_pb2,
    key_service_pb2,
    quota_service_pb2,
)

PACKAGE = "orchestrator.v1"
DATA_PLANE_SERVICES = (
    "GenerationService",
    "ConversationService",
    "QuotaService",
    "KeyService",
    "EscalationService",
    "ExperimentService",
)
_FILES = (
    generation_service_pb2,
    conversation_service_pb2,
    quota_service_pb2,
    key_service_pb2,
    escalation_service_pb2,
    experiment_service_pb2,
    admin_service_pb2,
)


@cache
def services() -> dict[str, tuple[str, ...]]:
    """Short service name -> its method names."""
    out: dict[str, tuple[str, ...]] = {}
    for module in _FILES:
        for name, service in module.DESCRIPTOR.services_by_name.items():
            out[name] = tuple(m.name for m in service.methods)
    return out


def full_service(short: str) -> str:
    return f"{PACKAGE}.{short}"


def method_path(service: str, method: str) -> str:
    """The gRPC method path, `/orchestrator.v1.GenerationService/Generate`."""
    return f"/{PACKAGE}.{service}/{method}"


def expand(grant: str) -> frozenset[str]:
    """Method paths a grant names ('*', a service, or Service/Method); empty when it names nothing."""
    if grant == "*":
        return frozenset(method_path(s, m) for s, methods in services().items() for m in methods)
    service, _, method = grant.removeprefix(f"{PACKAGE}.").partition("/")
    methods = services().get(service, ())
    if method:
        return frozenset({method_path(service, method)}) if method in methods else frozenset()
    return frozenset(method_path(service, m) for m in methods)


def unknown_grants(grants: list[str]) -> list[str]:
    return [g for g in grants if not expand(g)]
