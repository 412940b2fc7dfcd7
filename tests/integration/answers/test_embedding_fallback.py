"""The answer policy's embedding route falls back from a remote model to the local one while the
remote fails: the canonical answers' vectors were made by the remote model, and another model's
vector is not comparable with them (here not even of one size). A decision then degrades to the
model's answer (A, signals_unavailable) as for any embedding failure, and nothing is stored with a
vector no later search could compare (EMBEDDING_MODEL_UNAVAILABLE)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar._gen.orchestrator.v1 import answers_pb2 as ans
from tests.conftest import user
from tests.integration.answers.conftest import CANONICAL, TOKENS, answers_config, bearer
from tests.support.api import generate_request
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration
DOWN = Reply(status=503, body=b'{"error":{"message":"down"}}')


def vector(*values: float) -> Reply:
    return Reply(body=json.dumps({"data": [{"index": 0, "embedding": list(values)}]}).encode())


def remote(upstream: Upstream) -> dict[str, Any]:
    """An embedding route over a remote OpenAI-compatible model, falling back to the local one."""
    return {
        "default_route": "remote",
        "load": "start",
        "deployments": {
            "oai": {"kind": "openai", "model": "e", "base_url": f"{upstream.url}/v1"},
            "local": {"kind": "local"},
        },
        "routes": {"remote": {"deployments": ["oai", "local"]}},
    }


async def test_a_fallback_model_degrades_the_decision_and_stores_nothing(
    serve: Any, upstream: Upstream, tmp_path: Any
) -> None:
    raw = answers_config({"store": "sqlite", "sqlite_path": str(tmp_path / "answers.db")})
    raw["policy"]["embeddings"] = remote(upstream)
    upstream.push(*(vector(1.0, float(i), 0.0) for i in range(len(CANONICAL))))  # the seeds
    s = await serve(raw, environ=TOKENS)
    assert len(upstream.seen) == len(CANONICAL)

    async def ask(text: str) -> Any:
        req = generate_request(tenant_id="acme", user_id="ann", persona_id="maya", messages=[user(text)])
        return (await s.stub.Generate(req, metadata=bearer("APP"), timeout=30)).summary.answer_decision

    d = await ask("What flour do you use for sourdough bread?")  # a seed's question: its vector is cached
    assert (d.path, d.reason) == (ans.ANSWER_PATH_CANONICAL, "canonical_match")
    upstream.push(DOWN)
    d = await ask("Which flour do you use for sourdough bread?")  # the local model embeds this one
    assert (d.path, d.reason) == (ans.ANSWER_PATH_AUTO_ANSWER, "signals_unavailable")
    upstream.push(vector(1.0, 0.0, 0.0))
    d = await ask("What kind of flour do you use for sourdough bread?")
    assert (d.path, d.reason) == (ans.ANSWER_PATH_CANONICAL, "canonical_match")


async def test_seeds_embedded_by_a_fallback_model_are_not_stored(
    serve: Any, upstream: Upstream, tmp_path: Any
) -> None:
    """The remote model down while the sidecar starts: seeding with the local model's vectors left
    the agent's canonical answers of another size than every later question's, so every message to
    the agent failed INTERNAL for good. Now they are not stored (logged); questions are answered."""
    raw = answers_config({"store": "sqlite", "sqlite_path": str(tmp_path / "answers.db")})
    raw["policy"]["embeddings"] = remote(upstream)
    upstream.default = DOWN
    s = await serve(raw, environ=TOKENS)
    upstream.default = vector(1.0, 0.0, 0.0)
    req = generate_request(
        tenant_id="acme", user_id="ann", persona_id="maya", messages=[user("What flour do you use?")]
    )
    d = (await s.stub.Generate(req, metadata=bearer("APP"), timeout=30)).summary.answer_decision
    assert d.path != ans.ANSWER_PATH_CANONICAL and d.reason != "signals_unavailable"
