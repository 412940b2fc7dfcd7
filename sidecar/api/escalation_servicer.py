"""orchestrator.v1.EscalationService: users accept offers; creators list, answer and decline their own
agent's escalations and read its report. The gate authorizes the method and tenant; a creator action
also needs the credential to be one of the agent's `creators` (any credential the method is granted
to, when the agent names none)."""

from __future__ import annotations

import re
import struct
import unicodedata

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from sidecar.answers.errors import CreatorNotAllowedError, classified
from sidecar.answers.model import Escalation, State
from sidecar.answers.queue import EscalationQueue
from sidecar.answers.report import build_report
from sidecar.api.answers import STATE_OF, to_creator, to_escalation
from sidecar.api.convert import Violations
from sidecar.api.gate import Context, Gate, rpc_failure
from sidecar.api.paging import PageTokens
from sidecar.authz.policy import Principal
from sidecar.config.answers import LAYERS
from sidecar.core.clock import Clock, Deadline
from sidecar.core.errors import Code, SidecarError

_ESCALATION_ID = re.compile(r"^esc_[A-Za-z0-9_-]{8,64}$")
_AGENT = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_ANSWER_CHARS = 20_000
MAX_REASON_CHARS = 2_000


class AnswersDisabledError(SidecarError):
    code = Code.FAILED_PRECONDITION
    reason = "ANSWERS_DISABLED"


class EscalationServicer:
    """Implements orchestrator.v1.EscalationService (registered by the generic adder)."""

    def __init__(self, *, gate: Gate, queue: EscalationQueue | None, pages: PageTokens, clock: Clock) -> None:
        self._gate, self._queue, self._pages, self._clock = gate, queue, pages, clock

    async def AcceptEscalation(
        self, request: esc.AcceptEscalationRequest, context: Context
    ) -> esc.AcceptEscalationResponse:
        await self._gate.admit(context, "AcceptEscalation", request.tenant_id)
        try:
            bad = _ids(request.tenant_id, request.user_id, "user_id")
            _escalation_id(request.escalation_id, bad)
            bad.raise_if_any()
            queued = await self._enabled().accept(
                request.tenant_id, request.user_id, request.escalation_id,
                Deadline.after(context.time_remaining(), self._clock),
            )  # fmt: skip
        except Exception as exc:
            await rpc_failure(context, classified(exc), "AcceptEscalation")
        return esc.AcceptEscalationResponse(escalation=to_escalation(queued), path=ans.ANSWER_PATH_QUEUED)

    async def ListEscalations(
        self, request: esc.ListEscalationsRequest, context: Context
    ) -> esc.ListEscalationsResponse:
        principal = await self._gate.admit(context, "ListEscalations", request.tenant_id)
        try:
            bad = _creator_request(request.tenant_id, request.agent_id)
            if request.user_id:
                bad.check_id("user_id", request.user_id)
            states = set()
            for i, s in enumerate(request.states):
                if s not in STATE_OF:
                    bad.add(f"states[{i}]", "an EscalationState other than UNSPECIFIED")
                else:
                    states.add(STATE_OF[s])
            at = self._pages.request(request, keyed=True)
            bad.raise_if_any()
            queue = self._creator(principal, request.agent_id)
            found = await queue.list(
                request.tenant_id, request.agent_id, states or {State.QUEUED}, request.user_id
            )
            page, token = self._pages.page_after(found, at, _position)
        except Exception as exc:
            await rpc_failure(context, classified(exc), "ListEscalations")
        return esc.ListEscalationsResponse(escalations=[to_creator(e) for e in page], next_page_token=token)

    async def AnswerEscalation(
        self, request: esc.AnswerEscalationRequest, context: Context
    ) -> esc.AnswerEscalationResponse:
        principal = await self._gate.admit(context, "AnswerEscalation", request.tenant_id)
        try:
            bad = _creator_request(request.tenant_id, request.agent_id)
            _escalation_id(request.escalation_id, bad)
            if _blank(request.answer) or len(request.answer) > MAX_ANSWER_CHARS:
                bad.add("answer", f"1 to {MAX_ANSWER_CHARS} characters, not only spaces or invisible ones")
            if request.layer and request.layer not in LAYERS:
                bad.add("layer", "public, friends or intimate (empty: the escalation's layer)")
            bad.raise_if_any()
            queue = self._creator(principal, request.agent_id)
            done, canonical = await queue.answer(
                request.tenant_id, request.agent_id, request.escalation_id, request.answer, request.layer,
                Deadline.after(30.0, self._clock),
            )  # fmt: skip
        except Exception as exc:
            await rpc_failure(context, classified(exc), "AnswerEscalation")
        return esc.AnswerEscalationResponse(escalation=to_escalation(done), canonical_answer_id=canonical.id)

    async def DeclineEscalation(
        self, request: esc.DeclineEscalationRequest, context: Context
    ) -> esc.DeclineEscalationResponse:
        principal = await self._gate.admit(context, "DeclineEscalation", request.tenant_id)
        try:
            bad = _creator_request(request.tenant_id, request.agent_id)
            _escalation_id(request.escalation_id, bad)
            if len(request.reason) > MAX_REASON_CHARS:
                bad.add("reason", f"at most {MAX_REASON_CHARS} characters")
            bad.raise_if_any()
            queue = self._creator(principal, request.agent_id)
            done = await queue.decline(
                request.tenant_id, request.agent_id, request.escalation_id, request.reason
            )
        except Exception as exc:
            await rpc_failure(context, classified(exc), "DeclineEscalation")
        return esc.DeclineEscalationResponse(escalation=to_escalation(done))

    async def GetAnswerReport(
        self, request: esc.GetAnswerReportRequest, context: Context
    ) -> esc.GetAnswerReportResponse:
        principal = await self._gate.admit(context, "GetAnswerReport", request.tenant_id)
        try:
            _creator_request(request.tenant_id, request.agent_id).raise_if_any()
            queue = self._creator(principal, request.agent_id)
            r = await build_report(queue.store, queue, request.tenant_id, request.agent_id)
        except Exception as exc:
            await rpc_failure(context, classified(exc), "GetAnswerReport")
        return esc.GetAnswerReportResponse(
            messages=r.messages, paths=r.paths, users=r.users, auto_answer_rate=r.auto_answer_rate,
            escalations_per_100_users=r.escalations_per_100_users, reuse_rate=r.reuse_rate,
            queue_backlog=r.queue_backlog, decline_rate=r.decline_rate,
            median_seconds_to_answer=r.median_seconds_to_answer, canonical_answers=r.canonical_answers,
            canonical_reuses=r.canonical_reuses,
        )  # fmt: skip

    def _enabled(self) -> EscalationQueue:
        if self._queue is None:
            raise AnswersDisabledError("this sidecar has no answer policy (policy.answers)")
        return self._queue

    def _creator(self, principal: Principal, agent: str) -> EscalationQueue:
        """The queue, when the caller acts for the agent's creator."""
        queue = self._enabled()
        policy = queue.policy(agent)
        if policy.creators and principal.name not in policy.creators:
            raise CreatorNotAllowedError(
                "agent_id", f"credential {principal.name!r} does not act for agent {agent!r}"
            )
        return queue


def _position(e: Escalation) -> bytes:
    """An escalation's place in its agent's list, oldest first then by id, as bytes that sort the
    same way: the next page starts after the last one given, however many have been answered (and
    left the pending list) since."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", e.created_at))
    bits = bits ^ 0xFFFF_FFFF_FFFF_FFFF if bits >> 63 else bits | 1 << 63  # IEEE order as unsigned
    return struct.pack(">Q", bits) + e.id.encode()


def _ids(tenant: str, other: str, field: str) -> Violations:
    bad = Violations()
    bad.check_id("tenant_id", tenant, required=True)
    bad.check_id(field, other, required=True)
    return bad


def _creator_request(tenant: str, agent: str) -> Violations:
    bad = Violations()
    bad.check_id("tenant_id", tenant, required=True)
    if not _AGENT.fullmatch(agent):
        bad.add("agent_id", "required: a persona id (lowercase letters, digits and ._-)")
    return bad


def _blank(text: str) -> bool:
    """Nothing a reader would see: spaces and invisible format characters (zero-width spaces, word
    joiners, a byte order mark). Such an answer, made canonical, was served as an empty reply."""
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


def _escalation_id(value: str, bad: Violations) -> None:
    if not _ESCALATION_ID.fullmatch(value):
        bad.add("escalation_id", "required: an escalation id (esc_ and 8 to 64 url-safe characters)")
