"""Persona RPCs at the edge: validate ListPersonas/Switch/ListSwitchHistory/ClearConversation and the
persona fields of generation requests; domain -> proto."""

from __future__ import annotations

import dataclasses
import re

from google.protobuf import timestamp_pb2

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar._gen.orchestrator.v1 import personas_pb2 as pb
from sidecar.api.convert import NOT_PRINTABLE, Tiers, Violations, caller_tier, check_metadata
from sidecar.config.schema import RequestLimits
from sidecar.core.errors import InvalidRequestError
from sidecar.core.outcome import Outcome
from sidecar.core.types import Call
from sidecar.personas.registry import Persona
from sidecar.personas.service import SwitchCommand, SwitchResult
from sidecar.sessions.store import ConversationKey, SwitchRecord

PERSONA_ID = re.compile(r"[a-z0-9][a-z0-9._\-]{0,63}")
_CATEGORY = PERSONA_ID
MAX_COMMAND_CHARS = 256


def with_persona_fields(call: Call, req: gen.GenerationInput) -> Call:
    """Call + the request's persona_id and memory switch, validated."""
    bad = Violations("input.")
    if req.persona_id and not PERSONA_ID.fullmatch(req.persona_id):
        bad.add("persona_id", "a persona id: at most 64 of lowercase letters, digits and ._-")
    memory = req.memory if req.HasField("memory") else None
    if memory:
        for field in ("tenant_id", "user_id", "conversation_id"):
            if not getattr(req, field):
                bad.add(field, "required with memory: true")
    if bad.items:
        raise InvalidRequestError(bad.items)
    if not req.persona_id and memory is None:
        return call
    return dataclasses.replace(call, persona_id=req.persona_id, memory=memory)


def annotate_summary(summary: gen.GenerationSummary, record: Outcome) -> gen.GenerationSummary:
    summary.persona_id = record.persona
    summary.history_messages = record.history_messages
    return summary


def list_filter(req: pb.ListPersonasRequest, tiers: Tiers) -> tuple[str, str]:
    bad = Violations()
    if req.category and not _CATEGORY.fullmatch(req.category):
        bad.add("category", "a category: at most 64 of lowercase letters, digits and ._-")
    if req.tier and req.tier not in tiers.names:
        bad.add("tier", f"a tier this sidecar defines: one of {', '.join(tiers.names)}")
    if bad.items:
        raise InvalidRequestError(bad.items)
    return req.category, req.tier


def _readable(command: str) -> bool:
    return bool(command.strip()) and len(command) <= MAX_COMMAND_CHARS and not NOT_PRINTABLE.search(command)


def switch_command(req: pb.SwitchRequest, tiers: Tiers, limits: RequestLimits) -> SwitchCommand:
    """Validated Switch request, with the caller's tier resolved like a generation's."""
    bad = Violations()
    _ids(req, ("tenant_id", "user_id", "conversation_id"), bad)
    kind = req.WhichOneof("target")
    if kind is None:
        bad.add("persona_id", "set persona_id or command")
    elif kind == "persona_id" and not PERSONA_ID.fullmatch(req.persona_id):
        bad.add("persona_id", "a persona id: at most 64 of lowercase letters, digits and ._-")
    elif kind == "command" and not _readable(req.command):
        bad.add("command", f"1 to {MAX_COMMAND_CHARS} printable characters, not only spaces")
    check_metadata(req.metadata, limits, bad)
    tier = caller_tier(tiers, req.tenant_id, req.user_id, req.metadata, bad)
    if bad.items:
        raise InvalidRequestError(bad.items)
    key = ConversationKey(req.tenant_id, req.user_id, req.conversation_id)
    if kind == "persona_id":
        return SwitchCommand(key, tier, persona_id=req.persona_id)
    return SwitchCommand(key, tier, command=req.command)


def history_query(req: pb.ListSwitchHistoryRequest) -> tuple[str, str, str]:
    bad = Violations()
    _ids(req, ("tenant_id", "user_id"), bad)
    bad.check_id("conversation_id", req.conversation_id)
    if bad.items:
        raise InvalidRequestError(bad.items)
    return req.tenant_id, req.user_id, req.conversation_id


def conversation_key(req: pb.ClearConversationRequest) -> ConversationKey:
    bad = Violations()
    _ids(req, ("tenant_id", "user_id", "conversation_id"), bad)
    if bad.items:
        raise InvalidRequestError(bad.items)
    return ConversationKey(req.tenant_id, req.user_id, req.conversation_id)


def to_persona(p: Persona) -> pb.Persona:
    return pb.Persona(
        id=p.id,
        display_name=p.name,
        aliases=p.aliases,
        category=p.category,
        tiers=sorted(p.tiers),
        default_route=p.default_route or "",
        prompt_tokens=p.prompt_tokens,
    )


def to_switch_response(result: SwitchResult) -> pb.SwitchResponse:
    return pb.SwitchResponse(
        persona=to_persona(result.persona), previous_persona_id=result.previous, version=result.version
    )


def to_switch_record(r: SwitchRecord) -> pb.SwitchRecord:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(r.at * 1e9))
    return pb.SwitchRecord(
        conversation_id=r.conversation_id,
        from_persona_id=r.from_persona,
        to_persona_id=r.to_persona,
        command=r.command,
        success=r.success,
        error_reason=r.error,
        time=stamp,
        version=r.version,
    )


def _ids(req: object, fields: tuple[str, ...], bad: Violations) -> None:
    for field in fields:
        bad.check_id(field, getattr(req, field), required=True)
