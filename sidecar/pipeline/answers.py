"""The answer policy layer: every message to an agent with a policy (policy.answers) is decided before
any model is called (sidecar/answers/decide.py). Path A passes the call on to the model; B, C, D and
F are answered here with the decision's text and cost nothing (no provider, no quota, no cache). The
decision goes on the call's outcome: the response's summary, the usage record and the metrics read it.

Placed after the persona layer (so the exchange is remembered whatever the path) and before the
context, quota, cache and route layers.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from sidecar.answers.model import Path
from sidecar.answers.service import AnswerService, Message
from sidecar.core.layer import Handler, inner_stream
from sidecar.core.types import Call, Chunk, FinishReason, Role, Usage


class AnswerPolicyLayer:
    def __init__(self, inner: Handler, *, answers: AnswerService | None) -> None:
        self._inner, self._answers = inner, answers

    def __call__(self, call: Call) -> AsyncGenerator[Chunk, None]:
        message = self._message(call)
        if message is None:
            return self._inner(call)  # no policy for this call: no generator hop
        return self._decided(call, message)

    def _message(self, call: Call) -> Message | None:
        if self._answers is None or call.plan is None or not call.plan.persona:
            return None
        policy = self._answers.agent(call.plan.persona)  # the snapshot this call is decided by
        if policy is None:
            return None
        if not call.messages or call.messages[-1].role is not Role.USER or not call.messages[-1].text.strip():
            return None  # a tool result or an empty turn: nothing for the policy to judge
        before = tuple(
            (m.role.value, m.text) for m in call.messages[:-1] if m.role is not Role.SYSTEM and m.text
        )
        return Message(
            tenant=call.tenant_id,
            user=call.user_id,
            conversation=call.conversation_id,
            agent=call.plan.persona,
            tier=call.tier,
            layer=call.audience_layer,
            text=call.messages[-1].text,
            context=before,
            deadline=call.deadline,
            policy=policy,
        )

    async def _decided(self, call: Call, message: Message) -> AsyncGenerator[Chunk, None]:
        assert self._answers is not None
        decision = await self._answers.decide(message)
        call.record.answer_decided(decision)
        if decision.path is Path.AUTO_ANSWER:
            async with inner_stream(self._inner, call) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        usage = Usage()
        call.record.upstream_finished(FinishReason.STOP, usage)
        yield Chunk(text=decision.text)
        yield Chunk(finish_reason=FinishReason.STOP, usage=usage)
