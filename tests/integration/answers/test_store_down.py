"""The answer store unreachable: the sidecar still starts and answers (path A, signals_unavailable,
after the tier and topic rules), and the escalation RPCs say UNAVAILABLE / ANSWER_STORE_UNAVAILABLE."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from sidecar._gen.orchestrator.v1 import escalation_pb2 as esc
from tests.conftest import free_port, user
from tests.integration.answers.conftest import TOKENS, answers_config, bearer
from tests.integration.helpers import rich
from tests.support.api import generate_request

pytestmark = pytest.mark.integration


async def test_a_dead_store_degrades_to_the_model(serve: Any) -> None:
    dead = {"store": "redis", "redis_url": f"redis://127.0.0.1:{free_port()}/0", "timeout_seconds": 0.5}
    s = await serve(answers_config(dead), environ=TOKENS)

    async def ask(text: str) -> Any:
        req = generate_request(tenant_id="acme", user_id="ann", persona_id="maya", messages=[user(text)])
        return (await s.stub.Generate(req, metadata=bearer("APP"))).summary.answer_decision

    d = await ask("Can I freeze fresh basil?")
    assert (d.path, d.reason) == (ans.ANSWER_PATH_AUTO_ANSWER, "signals_unavailable")
    d = await ask("And politics?")  # the rules need no store
    assert (d.path, d.reason) == (ans.ANSWER_PATH_REFUSE, "blocked_topic")
    registry = s.sidecar.deps.telemetry.metrics.registry
    assert registry.get_sample_value("sidecar_answer_errors_total", {"op": "signals"}) == 1.0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await s.stub.AcceptEscalation(
            esc.AcceptEscalationRequest(tenant_id="acme", user_id="ann", escalation_id="esc_abcdefghij"),
            metadata=bearer("APP"),
        )
    r = await rich(err.value)
    assert (r.code, r.reason) == (grpc.StatusCode.UNAVAILABLE, "ANSWER_STORE_UNAVAILABLE")
