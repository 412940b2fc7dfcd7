"""Images: each provider's token rule, and both wire formats for URL and inline images."""

from __future__ import annotations

import base64

from sidecar.config.schema import DeploymentConfig
from sidecar.core.types import GenerationParams, Image, Message, Role
from sidecar.providers import anthropic, openai
from sidecar.providers.base import ProviderRequest
from sidecar.providers.images import ANTHROPIC_MAX, OPENAI_MAX, anthropic_tokens, openai_tokens

PNG = b"\x89PNG\r\n\x1a\n0000"


def test_openai_rule_tiles_after_scaling() -> None:
    assert openai_tokens(Image(url="https://x/a.png", width=1024, height=1024)) == 85 + 170 * 4  # 768 x 768
    assert openai_tokens(Image(url="https://x/a.png", width=4096, height=2048)) == 85 + 170 * 6  # 1536 x 768
    assert openai_tokens(Image(url="https://x/a.png", width=100, height=100)) == 85 + 170
    assert openai_tokens(Image(url="https://x/a.png")) == OPENAI_MAX  # unknown size: the maximum


def test_anthropic_rule_is_area_over_750_capped() -> None:
    assert anthropic_tokens(Image(data=PNG, mime_type="image/png", width=200, height=200)) == 54
    assert anthropic_tokens(Image(data=PNG, mime_type="image/png", width=5000, height=5000)) == ANTHROPIC_MAX
    assert anthropic_tokens(Image(data=PNG, mime_type="image/png")) == ANTHROPIC_MAX


def request(*images: Image) -> ProviderRequest:
    return ProviderRequest((Message(Role.USER, "What is this?", images=images),), GenerationParams(), False)


def deployment(provider: str) -> DeploymentConfig:
    return DeploymentConfig(provider=provider, model="m")  # type: ignore[arg-type]


def test_openai_wire_sends_image_parts() -> None:
    body = openai.to_wire(
        request(Image(url="https://example.com/a.png"), Image(data=PNG, mime_type="image/png")),
        deployment("openai"),
    )
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "image_url", "image_url": {"url": data_url}},
    ]


def test_anthropic_wire_sends_image_blocks_before_the_text() -> None:
    images = (Image(url="https://example.com/a.png"), Image(data=PNG, mime_type="image/png"))
    body = anthropic.to_wire(request(*images), deployment("anthropic"))
    assert body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
        },
        {"type": "text", "text": "What is this?"},
    ]
