"""The edge's checks of a message's content parts (sidecar/api/content.py)."""

from __future__ import annotations

import pytest

from sidecar._gen.orchestrator.v1 import generate_pb2 as gen
from sidecar.api import content
from sidecar.api.convert import Violations
from sidecar.config.schema import RequestLimits

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


def checked(*messages: gen.Message) -> list[tuple[str, str]]:
    bad = Violations()
    content.messages(messages, RequestLimits(), bad)
    return [(v.field, v.description) for v in bad.items]


def text(*texts: str, role: int = gen.ROLE_USER) -> gen.Message:
    return gen.Message(role=role, content=[gen.ContentPart(text=t) for t in texts])  # type: ignore[arg-type]


@pytest.mark.parametrize("blank", [" ", "\n\n", "\t \r\n", "\u00a0", "\u3000"])
def test_a_user_message_of_whitespace_alone_is_refused_naming_its_parts(blank: str) -> None:
    """It went upstream: Anthropic and Bedrock answered 400 (PROVIDER_REJECTED) for what the
    caller could have been told at once, for every route alike."""
    assert checked(text("hi"), text("ok", role=gen.ROLE_ASSISTANT), text(blank, blank)) == [
        ("messages[2].content[0].text", "must contain non-whitespace text"),
        ("messages[2].content[1].text", "must contain non-whitespace text"),
    ]


def test_whitespace_beside_other_content_is_taken() -> None:
    image = gen.ContentPart(image=gen.Image(data=PNG, mime_type="image/png"))
    with_image = gen.Message(role=gen.ROLE_USER, content=[gen.ContentPart(text=" "), image])
    assert checked(text(" ", "hi")) == []
    assert checked(with_image) == []
    assert checked(text("hi"), text(" ", role=gen.ROLE_ASSISTANT), text("again")) == []
    assert checked(text("system", role=gen.ROLE_SYSTEM), text("hi")) == []
