"""A remembered conversation on a Gemini route, through the real server: the prompt that trimming
leaves starts with the previous answer, and Gemini reads `contents` by position (user, model,
user, ...), refusing a history that starts with a model turn or does not alternate."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.providers import gemini_wire
from tests.conftest import user
from tests.support.api import generate_request
from tests.support.upstream import Reply, Upstream

pytestmark = pytest.mark.integration

IDS = {"tenant_id": "t1", "user_id": "u1", "conversation_id": "c1"}
ENV = {"GEMINI_KEY": "AIzaSyTest-gemini-0123456789"}


def config(upstream: Upstream) -> dict[str, Any]:
    deployment = {
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "base_url": f"{upstream.url}/v1beta",
        "api_key": {"env": "GEMINI_KEY"},
    }
    return {
        "policy": {
            "default_route": "r",
            "deployments": {"d": deployment},
            "routes": {"r": {"deployments": ["d"], "retry": {"max_attempts": 1}}},
            "routing": {"probes": {"enabled": False}},
            "context": {"max_recent_messages": 2},
            "personas": {"sessions": {"memory": True}},
        }
    }


async def test_a_trimmed_remembered_conversation_starts_with_a_user_turn(
    serve: Any, upstream: Upstream
) -> None:
    s = await serve(config(upstream), ENV)
    upstream.default = Reply.json("gemini/generate_content.json")
    await s.stub.Generate(generate_request(messages=[user("Where is the Eiffel tower?")], **IDS))
    await s.stub.Generate(generate_request(messages=[user("And how tall is it?")], **IDS))
    contents = upstream.seen[-1].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[0]["parts"] == [{"text": gemini_wire.CONTINUED}]
    assert contents[1]["parts"] == [{"text": "Hello! How can I help you today?"}]
    assert contents[2]["parts"] == [{"text": "And how tall is it?"}]
