"""orchestrator.v1.ConversationService: personas, Switch, the switch history, clearing a conversation."""

from __future__ import annotations

import asyncio
from typing import Protocol

from sidecar._gen.orchestrator.v1 import personas_pb2
from sidecar.api import personas as api_personas
from sidecar.api.convert import Tiers
from sidecar.api.gate import Context, Gate, rpc_failure
from sidecar.api.paging import PageTokens
from sidecar.config.schema import RequestLimits
from sidecar.core.errors import SidecarError
from sidecar.personas.service import PersonaService


class SwitchMetrics(Protocol):
    def persona_switched(self, outcome: str) -> None: ...


class ConversationServicer:
    """Implements orchestrator.v1.ConversationService (registered by the generated adder)."""

    def __init__(
        self,
        *,
        gate: Gate,
        personas: PersonaService,
        tiers: Tiers,
        limits: RequestLimits,
        pages: PageTokens,
        metrics: SwitchMetrics | None = None,
    ) -> None:
        self._gate, self._personas, self._tiers = gate, personas, tiers
        self._limits, self._pages, self._metrics = limits, pages, metrics

    async def ListPersonas(
        self, request: personas_pb2.ListPersonasRequest, context: Context
    ) -> personas_pb2.ListPersonasResponse:
        await self._gate.admit(context, "ListPersonas", None)
        try:
            at = self._pages.request(request)
            category, tier = api_personas.list_filter(request, self._tiers)
        except SidecarError as exc:
            await rpc_failure(context, exc, "ListPersonas")
        registry = self._personas.registry
        page, token = self._pages.page(registry.list(category=category, tier=tier), at)
        return personas_pb2.ListPersonasResponse(
            personas=[api_personas.to_persona(p) for p in page],
            default_persona_id=registry.default or "",
            next_page_token=token,
        )

    async def Switch(
        self, request: personas_pb2.SwitchRequest, context: Context
    ) -> personas_pb2.SwitchResponse:
        await self._gate.admit(context, "Switch", request.tenant_id)
        try:
            result = await self._personas.switch(
                api_personas.switch_command(request, self._tiers, self._limits)
            )
        except asyncio.CancelledError:
            self._switched("CANCELLED")
            raise
        except Exception as exc:
            self._switched(exc.reason if isinstance(exc, SidecarError) else "INTERNAL")
            await rpc_failure(context, exc, "Switch")
        self._switched("OK")
        return api_personas.to_switch_response(result)

    def _switched(self, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.persona_switched(outcome)

    async def ListSwitchHistory(
        self, request: personas_pb2.ListSwitchHistoryRequest, context: Context
    ) -> personas_pb2.ListSwitchHistoryResponse:
        await self._gate.admit(context, "ListSwitchHistory", request.tenant_id)
        try:
            at = self._pages.request(request)
            tenant, user, conversation = api_personas.history_query(request)
            records = await self._personas.switches(tenant, user, conversation, at.offset + at.size + 1)
        except Exception as exc:
            await rpc_failure(context, exc, "ListSwitchHistory")
        page, token = self._pages.page(records, at)
        return personas_pb2.ListSwitchHistoryResponse(
            switches=[api_personas.to_switch_record(r) for r in page], next_page_token=token
        )

    async def ClearConversation(
        self, request: personas_pb2.ClearConversationRequest, context: Context
    ) -> personas_pb2.ClearConversationResponse:
        await self._gate.admit(context, "ClearConversation", request.tenant_id)
        try:
            cleared = await self._personas.clear(api_personas.conversation_key(request))
        except Exception as exc:
            await rpc_failure(context, exc, "ClearConversation")
        return personas_pb2.ClearConversationResponse(cleared=cleared)
