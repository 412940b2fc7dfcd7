"""An agent on a route that holds an experiment, through the real server: the calls the answer
policy answers itself (paths B, C, D and F: no model, no cost, no latency of any variant) are not
the variant's calls; only the model's answers (path A) are assigned, recorded and reported."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from tests.integration.answers.conftest import TOKENS, answers_config
from tests.integration.answers.test_lifecycle import NOVEL, ask

pytestmark = pytest.mark.integration

TONE = {
    "route": "echo",
    "control": "a",
    "variants": {"a": {"weight": 1}, "b": {"weight": 1, "system_prompt": "Be brief."}},
    "min_samples": 2,
}


async def test_calls_the_answer_policy_serves_are_no_variants_calls(serve: Any, tmp_path: Path) -> None:
    raw = answers_config({"store": "sqlite", "sqlite_path": str(tmp_path / "answers.db")})
    raw["policy"]["experiments"] = {"tone": TONE}
    s = await serve(raw, environ=TOKENS)
    served = {
        ans.ANSWER_PATH_CANONICAL: await ask(s, "Which flour do you use when you bake sourdough?"),
        ans.ANSWER_PATH_CLARIFY: await ask(s, "help?"),
        ans.ANSWER_PATH_OFFER_ESCALATION: await ask(s, NOVEL),
        ans.ANSWER_PATH_REFUSE: await ask(s, "What do you think about politics?"),
        ans.ANSWER_PATH_AUTO_ANSWER: await ask(s, "How much salt do you put in pasta water?"),
    }
    for path, reply in served.items():
        assert reply.summary.answer_decision.path == path
    model = served.pop(ans.ANSWER_PATH_AUTO_ANSWER).summary
    assert model.experiment == "tone" and model.experiment_variant in {"a", "b"}
    for reply in served.values():  # answered by the policy: no variant served it
        assert (reply.summary.experiment, reply.summary.experiment_variant) == ("", "")
    ledger = s.sidecar.deps.telemetry.ledger
    await ledger.flush()
    rows = await ledger.store.experiment_rows("tone", time.time() - 60, time.time() + 60, "acme")
    assert [r.variant for r in rows] == [model.experiment_variant]  # the report reads the model's call only
